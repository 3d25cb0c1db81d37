"""The event log: one versioned schema for every event, and the write-behind queue.

Wins are produced on the hot path and must never wait for Redis: the hot path appends
one auction's wins (WinEvent structs) to an in-process bounded queue, and a background task
encodes and writes them to the ``ex:events`` stream every ``event_flush_ms``, one Lua
call per batch. A stream entry holds either one event (field ``e``: a JSON object) or
all the wins of one auction (field ``b``: a JSON array of events); every event keeps
its own id. Grouping an auction's wins cuts the stream entries and the client's
encoding work per request by ~4x. :func:`decode_entry` reads both forms. Billed events
(impressions, clicks) are not queued: they are written by the ledger's Lua script in
the same atomic step that moves the money, so the ledger always equals the log.
Shutdown drains the queue before Redis is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from importlib import resources
from typing import Literal

import msgspec
import redis.asyncio as aioredis

SCHEMA_VERSION = 1
EventType = Literal["win", "impression", "click", "invalid", "conversion"]
log = logging.getLogger("endcap.events")


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    v: int = SCHEMA_VERSION
    id: str                       # unique: impression id hex + ":" + type letter
    type: EventType
    ts: int                       # ms since epoch
    request_id: str = ""
    placement: str = ""
    campaign_id: int = 0
    sku: str = ""
    price_micros: int = 0
    slot: int = -1
    shopper_id: str = ""
    reason: str = ""              # invalid events: why (docs/invalid-traffic.md)
    of: str = ""                  # invalid events: what was invalid (ad_request, click...)
    query: str = ""               # wins on a search page: the normalised query (<= 80 chars)
    # conversions (purchase lines, POST /v1/signals/purchases); price_micros = unit price
    order_id: str = ""
    quantity: int = 0             # negative: a return
    store_id: str = ""            # "" = online


encoder = msgspec.json.Encoder()
decoder = msgspec.json.Decoder(Event)

class WinEvent(msgspec.Struct, tag_field="type", tag="win", gc=False):
    """A win as the hot path builds it: positional (cheap), encoding to the same JSON
    object as ``Event(type="win", ...)`` so readers decode both with ``Event``."""

    id: str
    ts: int
    request_id: str
    placement: str
    campaign_id: int
    sku: str
    price_micros: int
    slot: int
    shopper_id: str
    query: str = ""  # added after v1 shipped: absent from older entries, decoded as ""
    v: int = SCHEMA_VERSION


_batch_decoder = msgspec.json.Decoder(list[Event])


def decode_entry(fields: dict[bytes, bytes]) -> list[Event]:
    """The events of one ``ex:events`` entry: a single one (``e``) or a batch (``b``)."""
    if b"e" in fields:
        return [decoder.decode(fields[b"e"])]
    if b"b" in fields:
        return _batch_decoder.decode(fields[b"b"])
    return []


class EventLog:
    """Bounded write-behind queue in front of the ``ex:events`` stream."""

    def __init__(
        self, client: aioredis.Redis, *, stream: str, maxlen: int, flush_ms: int, queue_max: int
    ) -> None:
        self._client = client
        self._stream = stream
        self._maxlen = maxlen
        self._interval = flush_ms / 1000
        self._queue: deque[list[WinEvent] | Event] = deque()
        self._queue_max = queue_max
        self._append = client.register_script(
            resources.files("exchange").joinpath("append.lua").read_text())
        self._task: asyncio.Task[None] | None = None
        # Held while a batch is off the queue but not yet in Redis, so a caller's
        # flush() returns only once everything queued before it is written.
        self._writing = asyncio.Lock()
        self.written = 0
        self.dropped = 0
        self.failures = 0

    def add_wins(self, wins: list[WinEvent]) -> None:
        """Queue the wins of one auction (one stream entry)."""
        if len(self._queue) >= self._queue_max:
            self.dropped += len(wins)
            return
        self._queue.append(wins)

    def add(self, event: Event) -> None:
        if len(self._queue) >= self._queue_max:
            self.dropped += 1
            return
        self._queue.append(event)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-log")

    async def _run(self) -> None:
        # A plain sleep, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # races its timeout, and shutdown would then hang.
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # keep the loop alive; Redis may come back
                self.failures += 1
                log.exception("event flush failed; %d events pending", len(self._queue))
                await asyncio.sleep(min(1.0, self._interval * 10))

    async def flush(self, batch: int = 1000) -> None:
        async with self._writing:
            await self._flush(batch)

    async def _flush(self, batch: int) -> None:
        while self._queue:
            n = min(batch, len(self._queue))
            items = [self._queue.popleft() for _ in range(n)]
            args: list[bytes | int | str] = [self._maxlen]
            for item in items:
                if isinstance(item, Event):
                    args += (b"e", encoder.encode(item))
                else:
                    args += (b"b", encoder.encode(item))
            try:
                await self._append(keys=[self._stream], args=args)
            except Exception:
                # Put them back in order; they are retried on the next flush.
                self._queue.extendleft(reversed(items))
                raise
            self.written += n

    async def close(self) -> None:
        """Stop the background task and write out everything still queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
