"""The streaming segment intake: the loyalty system writes, the shopper's next auction reads.

The retailer's loyalty platform appends to the Redis Stream ``ex:signals:segments`` one
entry per shopper change::

    XADD ex:signals:segments MAXLEN ~ 1000000 * shopper_id L0001
         add "gamer,coupon_user" remove "new_parent"

(``add`` / ``remove``: comma-separated segment names, either may be absent). A consumer
of the ``segments`` group applies each batch in stream order as one pipelined round trip
(the same writes as ``POST /v1/signals/segments``) and acknowledges it. Applying a change
twice is harmless (set semantics), so at-least-once delivery is enough. An entry that is
not a valid change is acknowledged, counted in ``rejected`` and logged, never retried.

Runs in the background process beside the report rollup (``python -m exchange rollup``),
or in each request worker when ``rollup`` is ``"worker"`` or ``"off"`` (segments must
flow even when reports do not). Several consumers share the group;
a shopper's changes are applied in order as long as one consumer holds the stream (the
default), and the last write wins otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import redis.asyncio as aioredis

from exchange import keys
from exchange.consumer import Entry, StreamConsumer
from exchange.resp import RespClient
from exchange.signals import SegmentChange, apply_segments

BATCH = 2_000


def parse_entry(fields: dict[bytes, bytes]) -> SegmentChange:
    """One stream entry as a change; ``ValueError`` if it is not one."""
    def names(raw: bytes | None) -> list[str]:
        return [s for s in raw.decode().split(",") if s] if raw else []
    try:
        return msgspec.convert({
            "shopper_id": fields.get(b"shopper_id", b"").decode(),
            "add": names(fields.get(b"add")),
            "remove": names(fields.get(b"remove")),
        }, SegmentChange)
    except (UnicodeDecodeError, msgspec.ValidationError) as exc:
        raise ValueError(str(exc)) from None


class SegmentIntake(StreamConsumer):
    name = "segment-intake"

    def __init__(self, client: aioredis.Redis, url: str, *, stream: str = keys.SEGMENT_INTAKE,
                 group: str = keys.SEGMENT_GROUP, consumer: str | None = None,
                 claim_idle_ms: int = 30_000) -> None:
        super().__init__(client, stream=stream, group=group, consumer=consumer, batch=BATCH,
                         claim_idle_ms=claim_idle_ms)
        self._url = url
        self.resp: RespClient | None = None  # set before start(): the writes go through it
        self.applied = 0   # segment adds + removes written
        self.rejected = 0  # entries that were not valid changes

    async def apply(self, entries: Sequence[Entry]) -> None:
        changes: list[SegmentChange] = []
        for entry_id, fields in entries:
            if not fields:  # trimmed while pending
                continue
            try:
                changes.append(parse_entry(fields))
            except ValueError as exc:
                self.rejected += 1
                self._log.error("segment intake: entry %s rejected: %s", entry_id, exc)
        if changes:
            if self.resp is None:
                self.resp = await RespClient.connect(self._url)
            self.applied += await apply_segments(self.resp, changes)
        await self._client.xack(self._stream, self._group, *[e for e, _ in entries])

    async def stop(self) -> None:
        await super().stop()
        if self.resp is not None:
            await self.resp.close()
            self.resp = None
