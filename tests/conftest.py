"""Test fixtures: one real ``redis-server`` for the whole session, flushed between tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from exchange.embedded import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: ``ENDCAP_TEST_REDIS_URL`` if set, else an embedded one started here."""
    external = os.environ.get("ENDCAP_TEST_REDIS_URL")
    if external:
        yield external
        return
    data_dir: Path = tmp_path_factory.mktemp("redis")
    server = EmbeddedRedis(data_dir, appendonly=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_sync(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def redis_async(redis_url: str, redis_sync: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on a flushed database (``redis_sync`` does the flush)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
