"""The report rollup: the event log folded, as it arrives, into per-campaign day aggregates.

Every worker runs one consumer of the ``rollup`` consumer group on ``ex:events``. It
reads up to 500 entries (``XREADGROUP ... BLOCK 250``), sends one pipelined round trip of
``rollup.lua`` calls (one per event; each touches only keys tagged with its campaign,
``{c<id>}``, so it runs unchanged on Redis Cluster), then acknowledges the entries.

Delivery is at least once (a worker may die between the scripts and the XACK; the
claimer below hands its entries to another worker); the script makes it exactly once by
``SET NX``-ing a marker per event id before it adds anything, so a redelivered event
counts nothing. Entries left pending for more than ``consumer.CLAIM_IDLE_MS`` (a crashed worker's
batch, or a batch whose round trip failed) are taken over with ``XAUTOCLAIM``.

The group is created at id ``0``, not ``$``: a fresh deployment (or one upgraded to this
version) counts the history still in the stream, once; after that the group's position
persists in Redis. Events trimmed from the stream (``MAXLEN``) before the group read them
are not counted: the rollup must not lag by more than ``event_stream_maxlen`` entries
(``endcap_rollup_pending`` shows delivered-but-unacknowledged entries).

Stop is cooperative, like the change feed's: a flag checked between short blocking reads,
so redis-py is never cancelled mid-call and the current batch is finished and acked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from exchange import keys
from exchange.consumer import CLAIM_IDLE_MS, Entry, StreamConsumer
from exchange.events import Event, decode_entry

log = logging.getLogger("endcap.rollup")

BATCH = 500
SEEN_TTL_S = 3 * 86_400    # a redelivery later than this would count twice
AGGREGATE_TTL_S = 400 * 86_400
TERM_MARGIN_S = 3_600      # a search term outlives the token it was won with by this
SCRIPT = resources.files("exchange").joinpath("rollup.lua").read_text()
_KINDS = {"win": "w", "impression": "i", "click": "c", "invalid": "v"}

def script_args(event: Event, fields: dict[bytes, bytes], zone: ZoneInfo, term_ttl_s: int,
                search: frozenset[str] = frozenset()
                ) -> tuple[list[str], list[str | int]] | None:
    """KEYS and ARGV of ``rollup.lua`` for one event; None if it belongs to no campaign.
    ``search``: the placements on search pages (their beacons are counted by term)."""
    kind = _KINDS.get(event.type)
    cid = event.campaign_id
    if kind is None or cid <= 0:
        return None
    at = datetime.fromtimestamp(event.ts / 1000, tz=zone)
    # Billed entries carry the campaign's budget day (``d``) and what was charged (``c``).
    raw_day = fields.get(b"d")
    day = raw_day.decode() if raw_day else at.strftime("%Y%m%d")
    spend = int(fields.get(b"c") or 0) if kind == "c" else 0
    imp_id = event.id.split(":", 1)[0]
    if kind == "w":
        term = event.query
    elif kind in ("i", "c") and event.placement in search:
        term = "?"
    else:
        term = ""
    return (
        [keys.rollup_seen(cid, event.id), keys.rollup_day(cid, day),
         keys.rollup_term(cid, imp_id), keys.rollup_wait(cid, imp_id)],
        [kind, f"{at.hour:02d}", event.sku, event.placement,
         term, spend,
         event.slot + 1 if kind == "i" and event.slot >= 0 else 0,
         event.reason if kind == "v" else "",
         SEEN_TTL_S, AGGREGATE_TTL_S, term_ttl_s],
    )


class Rollup(StreamConsumer):
    """One consumer of the ``rollup`` group; ``zone_of`` gives a campaign's day zone."""

    name = "rollup"

    def __init__(self, client: aioredis.Redis, *, zone_of: Callable[[int], ZoneInfo],
                 term_ttl_s: int, search_placements: Iterable[str] = (),
                 stream: str = keys.EVENTS, group: str = keys.ROLLUP_GROUP,
                 consumer: str | None = None, claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        super().__init__(client, stream=stream, group=group, consumer=consumer, batch=BATCH,
                         claim_idle_ms=claim_idle_ms)
        self._zone_of = zone_of
        self._term_ttl = term_ttl_s + TERM_MARGIN_S
        self._search = frozenset(search_placements)
        self._sha = ""
        self.counted = 0      # events this consumer added to aggregates
        self.duplicates = 0   # redelivered events the markers turned away

    async def apply(self, entries: Sequence[Entry]) -> None:
        """Count the entries' events (one pipelined round trip), then XACK them."""
        calls: list[tuple[list[str], list[str | int]]] = []
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending (Redis 6.2)
                continue
            try:
                events = decode_entry(fields)
            except msgspec.DecodeError:
                log.error("rollup: undecodable entry %s skipped", entry_id)
                continue
            for event in events:
                call = script_args(event, fields, self._zone_of(event.campaign_id),
                                   self._term_ttl, self._search)
                if call is not None:
                    calls.append(call)
        if calls:
            results = await self._run_scripts(calls)
            for r in results:
                if isinstance(r, Exception):
                    log.error("rollup: event not counted: %s", r)
                elif r:
                    self.counted += 1
                else:
                    self.duplicates += 1
        await self._client.xack(self._stream, self._group, *[e for e, _ in entries])

    async def _run_scripts(self, calls: list[tuple[list[str], list[str | int]]]
                           ) -> list[Any]:
        if not self._sha:
            self._sha = await self._client.script_load(SCRIPT)
        for attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for k, a in calls:
                pipe.evalsha(self._sha, len(k), *k, *a)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                # The server lost its script cache: load and redo the batch (the markers
                # make the calls that did run count nothing the second time).
                self._sha = await self._client.script_load(SCRIPT)
                continue
            return results
        return results
