"""The change feed: how an edit reaches the index of every worker within a second.

Writers append ``{t: kind, ids: "1,2,3"}`` to the ``ex:changes`` stream; every worker
tails it with a blocking XREAD and patches its index. A stream rather than plain
pub/sub because a worker that reconnects resumes from its last id instead of silently
missing edits, and a new worker notes the feed position *before* loading its snapshot,
so nothing written during the load is lost (patches are idempotent). If the feed was
trimmed past a worker's position it rebuilds from the store.

Kinds: ``campaign`` (ids), ``product`` (pids), ``budget`` (campaign ids whose spend
crossed a limit), ``reload`` (rebuild everything, e.g. after a bulk demo load).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from exchange import keys

FEED_MAXLEN = 100_000
BLOCK_MS = 250  # also bounds how long stop() waits
log = logging.getLogger("endcap.changes")

Handler = Callable[[str, list[int]], Awaitable[None]]


async def publish(client: aioredis.Redis, kind: str, ids: Iterable[int] = ()) -> None:
    await client.xadd(
        keys.CHANGES,
        {"t": kind, "ids": ",".join(str(i) for i in ids)},
        maxlen=FEED_MAXLEN,
        approximate=True,
    )


async def position(client: aioredis.Redis) -> str:
    """The id of the newest entry (``0-0`` if none): where a fresh snapshot starts from."""
    last = await client.xrevrange(keys.CHANGES, count=1)
    return last[0][0].decode() if last else "0-0"


def _parse_ids(raw: bytes | None) -> list[int]:
    if not raw:
        return []
    return [int(x) for x in raw.split(b",") if x.strip().isdigit()]


class ChangeFeed:
    """Tails ``ex:changes`` from ``start`` and hands each entry to ``handler``."""

    def __init__(self, client: aioredis.Redis, handler: Handler, start: str) -> None:
        self._client = client
        self._handler = handler
        self.last_id = start
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.applied = 0

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="change-feed")

    async def stop(self) -> None:
        """Stop after the current read: cancelling redis-py inside a blocking XREAD can
        leave the task stuck, so the loop checks a flag between short blocking reads."""
        if self._task is None:
            return
        self._stopping = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), BLOCK_MS / 1000 * 4 + 1)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _trimmed_past_us(self) -> bool:
        first = await self._client.xrange(keys.CHANGES, count=1)
        if not first or self.last_id == "0-0":
            return False
        first_id = first[0][0].decode()
        return _id_tuple(first_id) > _id_tuple(self.last_id) and not await self._client.xrange(
            keys.CHANGES, min=self.last_id, max=self.last_id
        )

    async def poll_once(self, block_ms: int | None = None) -> int:
        """Read and apply one batch; returns how many entries were applied."""
        resp = await self._client.xread({keys.CHANGES: self.last_id}, count=500,
                                        block=BLOCK_MS if block_ms is None else block_ms)
        if not resp:
            return 0
        entries = resp[0][1]
        if await self._trimmed_past_us():
            await self._handler("reload", [])
        for entry_id, fields in entries:
            kind = fields.get(b"t", b"").decode()
            try:
                await self._handler(kind, _parse_ids(fields.get(b"ids")))
            except Exception:
                log.exception("change %s (%s) failed; rebuilding", entry_id, kind)
                await self._handler("reload", [])
            self.last_id = entry_id.decode()
            self.applied += 1
        return len(entries)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                await self.poll_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                log.warning("change feed: Redis unavailable, retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
