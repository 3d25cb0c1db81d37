"""RespClient against a real redis-server: replies, pipelines, concurrency, failures."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import hiredis
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from exchange.embedded import free_port, redis_server_binary
from exchange.resp import (
    Address,
    ReplyError,
    RespClient,
    encode_command,
    encode_commands,
    parse_url,
)


@pytest.fixture
async def rc(redis_url: str, redis_sync: redis.Redis) -> AsyncIterator[RespClient]:
    """A RespClient on the session's (flushed) Redis."""
    client = await RespClient.connect(redis_url)
    try:
        yield client
    finally:
        await client.close()


class PrivateRedis:
    """A redis-server of this test's own, to stop, restart and configure at will."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.sock = workdir / "r.sock"
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def unix_url(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--unixsocket", str(self.sock), "--save", "", "--appendonly", "no",
             "--dir", str(self.sock.parent), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.sock.unlink(missing_ok=True)


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    # A short directory: unix socket paths are limited to ~100 bytes.
    server = PrivateRedis(tmp_path_factory.mktemp("resp"), "--requirepass", "s3cr:t")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- replies --------------------------------------------------------------------------------


async def test_reply_types(rc: RespClient) -> None:
    binary = b"a\r\nb\x00\xff$3\r\n*1\r\n"
    assert await rc.execute("PING") == b"PONG"
    assert await rc.execute("SET", "k", binary) == b"OK"
    assert await rc.execute(b"GET", b"k") == binary
    assert await rc.execute("GET", "missing") is None
    assert await rc.execute("INCRBY", "n", 41) == 41
    assert await rc.execute("INCR", "n") == 42
    assert await rc.execute("HSET", "h", "f1", "v1", "f2", 2, "f3", "") == 3
    assert await rc.execute("HGETALL", "h") == [b"f1", b"v1", b"f2", b"2", b"f3", b""]
    assert await rc.execute("HGETALL", "missing") == []
    assert await rc.execute("LRANGE", "missing", 0, -1) == []


async def test_error_reply_raises(rc: RespClient) -> None:
    await rc.execute("SET", "s", "text")
    with pytest.raises(ReplyError, match="not an integer"):
        await rc.execute("INCR", "s")
    with pytest.raises(ReplyError, match="WRONGTYPE"):
        await rc.execute("HGETALL", "s")
    assert await rc.execute("GET", "s") == b"text"  # the connection is still in sync


async def test_pipeline_keeps_order_around_an_error(rc: RespClient) -> None:
    replies = await rc.pipeline([
        ["SET", "a", "1"],
        ["SET", "b", "not a number"],
        ["INCR", "a"],
        ["INCR", "b"],
        ["INCR", "a"],
        ["GET", "b"],
        ["GET", "nothing"],
    ])
    assert replies[:3] == [b"OK", b"OK", 2]
    assert isinstance(replies[3], ReplyError)
    assert "not an integer" in str(replies[3])
    assert replies[4:] == [3, b"not a number", None]
    assert await rc.pipeline([]) == []


async def test_many_concurrent_callers_get_their_own_replies(rc: RespClient) -> None:
    async def caller(i: int) -> tuple[object, object]:
        await rc.execute("SET", f"key:{i}", f"value:{i}")
        single = await rc.execute("GET", f"key:{i}")
        piped = await rc.pipeline([["INCRBY", f"n:{i}", i], ["GET", f"key:{i}"]])
        return single, piped

    results = await asyncio.gather(*(caller(i) for i in range(200)))
    for i, (single, piped) in enumerate(results):
        assert single == f"value:{i}".encode()
        assert piped == [i, f"value:{i}".encode()]


async def test_large_reply_split_across_reads(rc: RespClient) -> None:
    big = os.urandom(1 << 20) + b"\r\n$-1\r\n" + os.urandom(1000)
    assert await rc.execute("SET", "big", big) == b"OK"
    small, got, also = await asyncio.gather(
        rc.execute("GET", "missing"), rc.execute("GET", "big"), rc.execute("STRLEN", "big")
    )
    assert small is None
    assert got == big
    assert also == len(big)


# --- deadlines ------------------------------------------------------------------------------


async def test_timeout_does_not_desynchronise_the_fifo(
    rc: RespClient, redis_sync: redis.Redis
) -> None:
    await rc.execute("SET", "k", "mine")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await rc.execute("BLPOP", "queue", 5, timeout_s=0.05)
    assert time.monotonic() - started < 1
    # Queued behind the still-blocked BLPOP on the same connection.
    later = asyncio.gather(rc.execute("GET", "k"), rc.pipeline([["INCR", "n"], ["GET", "k"]]))
    await asyncio.sleep(0.02)
    assert not later.done()
    redis_sync.rpush("queue", "for-blpop")  # BLPOP answers now; its late reply is dropped
    assert list(await asyncio.wait_for(later, 2)) == [b"mine", [1, b"mine"]]
    assert redis_sync.llen("queue") == 0


async def test_pipeline_timeout(rc: RespClient, redis_sync: redis.Redis) -> None:
    with pytest.raises(TimeoutError):
        await rc.pipeline([["INCR", "n"], ["BLPOP", "queue", 5], ["INCR", "n"]], timeout_s=0.05)
    redis_sync.rpush("queue", "x")
    assert await rc.execute("INCR", "n", timeout_s=2) == 3
    assert await rc.execute("GET", "n", timeout_s=2) == b"3"


# --- connection loss ------------------------------------------------------------------------


async def test_killed_connection_fails_pending_then_reconnects(
    rc: RespClient, redis_sync: redis.Redis
) -> None:
    first_id = await rc.execute("CLIENT", "ID")
    blocked = asyncio.ensure_future(rc.execute("BLPOP", "queue", 5))
    queued = asyncio.ensure_future(rc.execute("PING"))
    await asyncio.sleep(0.02)
    assert redis_sync.client_kill_filter(_id=str(first_id)) == 1
    for pending in (blocked, queued):
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(pending, 2)
    # A failed connection is not a failed connect: the next call reconnects at once.
    assert await rc.execute("SET", "after", "kill") == b"OK"
    assert await rc.execute("CLIENT", "ID") != first_id
    assert redis_sync.get("after") == b"kill"


async def test_server_down_backs_off_and_fails_fast(private_redis: PrivateRedis) -> None:
    rc = await RespClient.connect(f"unix://:s3cr:t@{private_redis.sock}", retry_min_s=0.3)
    try:
        assert await rc.execute("SET", "k", "v") == b"OK"
        blocked = asyncio.ensure_future(rc.execute("BLPOP", "queue", 5))
        await asyncio.sleep(0.01)
        private_redis.stop()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(blocked, 2)
        with pytest.raises(ConnectionError, match="cannot connect"):
            await rc.execute("GET", "k")  # one real attempt, refused: back-off starts
        t0 = time.monotonic()
        with pytest.raises(ConnectionError, match="back-off"):
            await rc.execute("GET", "k")  # no attempt inside the window
        assert time.monotonic() - t0 < 0.05
        private_redis.start()
        await asyncio.sleep(0.35)
        # Many callers at once after the window: one connect attempt, everyone served.
        server = redis.Redis(unix_socket_path=str(private_redis.sock), password="s3cr:t")
        before = server.info("stats")["total_connections_received"]
        replies = await asyncio.gather(*(rc.execute("INCR", "n") for _ in range(50)))
        assert sorted(int(r) for r in replies) == list(range(1, 51))  # type: ignore[call-overload]
        # redis-py's own connection was opened by the first INFO, so only ours counts.
        assert server.info("stats")["total_connections_received"] - before == 1
        server.close()
    finally:
        await rc.close()


async def test_tcp_url_with_password_and_db(private_redis: PrivateRedis) -> None:
    url = f"redis://:s3cr%3At@127.0.0.1:{private_redis.port}/3"
    rc = await RespClient.connect(url)
    try:
        assert await rc.execute("SET", "where", "db3") == b"OK"
        db3 = redis.Redis(port=private_redis.port, password="s3cr:t", db=3)
        assert db3.get("where") == b"db3"
        # After a reconnect, AUTH and SELECT are sent again.
        db3.client_kill_filter(_id=str(await rc.execute("CLIENT", "ID")))
        await asyncio.sleep(0.02)
        assert await rc.execute("GET", "where") == b"db3"
        db3.close()
    finally:
        await rc.close()


async def test_connect_failures_raise_connection_error(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    with pytest.raises(ConnectionError, match=r"WRONGPASS|invalid password"):
        await RespClient.connect(f"redis://:wrong@127.0.0.1:{private_redis.port}")
    with pytest.raises(ConnectionError, match=r"NOAUTH|Authentication required"):
        await RespClient.connect(f"redis://127.0.0.1:{private_redis.port}/1")
    with pytest.raises(ConnectionError):
        await RespClient.connect(f"unix://{tmp_path / 'no.sock'}")


async def test_close_fails_pending_and_later_calls(rc: RespClient) -> None:
    blocked = asyncio.ensure_future(rc.execute("BLPOP", "queue", 5))
    await asyncio.sleep(0.01)
    assert not rc.closed
    await rc.close()
    assert rc.closed
    with pytest.raises(ConnectionError):
        await blocked
    with pytest.raises(ConnectionError, match="closed"):
        await rc.execute("PING")


# --- pure functions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://localhost", Address(host="localhost")),
        ("redis://10.0.0.5:6380/2", Address(host="10.0.0.5", port=6380, db=2)),
        ("redis://:p%40ss@h:1/0", Address(host="h", port=1, password="p@ss")),
        ("redis://u:pw@h", Address(host="h", username="u", password="pw")),
        ("redis://h?db=4", Address(host="h", db=4)),
        ("unix:///tmp/r.sock", Address(path="/tmp/r.sock")),
        ("unix:///tmp/r.sock?db=1", Address(path="/tmp/r.sock", db=1)),
        ("unix://:pw@/tmp/r.sock", Address(path="/tmp/r.sock", password="pw")),
        ("unix:///tmp/r.sock?password=pw", Address(path="/tmp/r.sock", password="pw")),
    ],
)
def test_parse_url(url: str, address: Address) -> None:
    assert parse_url(url) == address


@pytest.mark.parametrize("url", ["http://h", "rediss://h", "unix://"])
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


@pytest.mark.parametrize("bad", [1.5, True, None, ["x"]])
def test_encoder_rejects_other_types(bad: object) -> None:
    with pytest.raises(TypeError):
        encode_command(["SET", "k", bad])  # type: ignore[list-item]


_args = st.lists(st.binary() | st.text() | st.integers(), min_size=1, max_size=8)


def _as_bytes(arg: bytes | str | int) -> bytes:
    return arg if isinstance(arg, bytes) else str(arg).encode()


@given(st.lists(_args, min_size=1, max_size=4), st.integers(min_value=1, max_value=64))
def test_encoding_round_trips_through_hiredis(
    commands: list[list[bytes | str | int]], chunk: int
) -> None:
    data = encode_commands(commands)
    assert data == b"".join(encode_command(c) for c in commands)
    reader = hiredis.Reader()
    for i in range(0, len(data), chunk):  # fed in pieces, as a socket would deliver it
        reader.feed(data[i : i + chunk])
    for command in commands:
        assert reader.gets() == [_as_bytes(a) for a in command]
    assert reader.gets() is False
