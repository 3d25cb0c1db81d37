"""A consumer-group reader of one Redis Stream: the loop the stream workers share.

Subclasses say what to do with a batch (``apply``: do the work, then ``XACK``). The base
reads up to ``batch`` new entries with a short blocking ``XREADGROUP``, takes over
entries another consumer left pending longer than ``claim_idle_ms`` (``XAUTOCLAIM``: that
consumer is presumed dead), keeps the pending count as a gauge, backs off while Redis is
away, and stops cooperatively: a flag checked between short reads, so redis-py is never
cancelled mid-call and the batch in hand is finished and acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

Entry = tuple[bytes, dict[bytes, bytes] | None]
BLOCK_MS = 250             # also bounds how long stop() waits
CLAIM_IDLE_MS = 30_000     # pending longer than this: the consumer is presumed dead
CLAIM_EVERY_S = 5.0        # also how often the pending gauge is refreshed


def consumer_name() -> str:
    """Unique per process start: a restarted worker never inherits a dead one's entries
    by name (the claimer hands them over instead)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class StreamConsumer:
    name = "consumer"  # for logs and the task name

    def __init__(self, client: aioredis.Redis, *, stream: str, group: str,
                 consumer: str | None = None, batch: int = 500,
                 claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self._client = client
        self._stream = stream
        self._group = group
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self.consumer = consumer or consumer_name()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.pending = 0      # the group's delivered-but-unacknowledged entries (gauge)
        self._log = logging.getLogger(f"endcap.{self.name}")

    async def apply(self, entries: Sequence[Entry]) -> None:
        raise NotImplementedError

    async def ensure_group(self) -> None:
        try:
            await self._client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the current batch (work and XACK), then stop."""
        if self._task is None:
            return
        self._stopping = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), BLOCK_MS / 1000 * 4 + 5)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def request_stop(self) -> None:
        """Raise the flag without waiting (lets several tailers wind down together)."""
        self._stopping = True

    async def poll_once(self, block_ms: int | None = None) -> int:
        """Read, apply and acknowledge one batch of new entries; returns how many."""
        try:
            resp: Any = await self._client.xreadgroup(
                self._group, self.consumer, {self._stream: ">"}, count=self._batch,
                block=BLOCK_MS if block_ms is None else block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # the stream or group was deleted under us
            return 0
        if not resp:
            return 0
        entries: list[Entry] = resp[0][1]
        await self.apply(entries)
        return len(entries)

    async def claim_once(self) -> int:
        """Take over entries pending longer than the claim idle time and apply them."""
        start = "0-0"
        claimed = 0
        for _ in range(20):  # bounded: at most 20 batches per call
            reply = await self._client.xautoclaim(
                self._stream, self._group, self.consumer, self._claim_idle_ms,
                start_id=start, count=self._batch)
            start = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            entries: list[Entry] = reply[1]
            if entries:
                await self.apply(entries)
                claimed += len(entries)
            if start == "0-0":
                break
        summary = await self._client.xpending(self._stream, self._group)
        self.pending = int(summary["pending"])
        return claimed

    async def _run(self) -> None:
        backoff = 0.1
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while not self._stopping:
            try:
                if loop.time() >= next_claim:
                    next_claim = loop.time() + CLAIM_EVERY_S
                    await self.claim_once()
                await self.poll_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                self._log.warning("%s: Redis unavailable, retrying in %.1fs", self.name,
                                  backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
