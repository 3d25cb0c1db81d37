"""The embedded redis-server: shared per data directory, persistent, never orphaned."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from exchange.embedded import EmbeddedRedis, EmbeddedRedisError
from exchange.settings import ROOT


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent (or init) to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return not _alive(pid)


def _state(data_dir: Path) -> dict[str, object]:
    state = json.loads((data_dir / "redis.json").read_text())
    assert isinstance(state, dict)
    return state


@contextlib.contextmanager
def _client(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        yield client
    finally:
        client.close()


def _answers(url: str) -> bool:
    try:
        with _client(url) as c:
            return bool(c.ping())
    except (redis.RedisError, OSError):
        return False


@contextlib.contextmanager
def _running(server: EmbeddedRedis) -> Iterator[EmbeddedRedis]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_start_share_and_stop(tmp_path: Path) -> None:
    owner = EmbeddedRedis(tmp_path / "data")
    with _running(owner):
        assert owner.owned
        assert owner.url == f"unix://{tmp_path / 'data' / 'redis.sock'}"
        assert _answers(owner.url)
        state = _state(tmp_path / "data")
        pid = state["pid"]
        assert isinstance(pid, int) and _alive(pid) and state["url"] == owner.url

        guest = EmbeddedRedis(tmp_path / "data")
        assert guest.start() == owner.url
        assert guest.url == owner.url and guest.owned is False
        with _client(guest.url) as c:
            c.set("shared", "yes")
        guest.stop()  # not its server: must leave it running
        assert _alive(pid) and _answers(owner.url)
        assert (tmp_path / "data" / "redis.json").exists()
        with _client(owner.url) as c:
            assert c.get("shared") == b"yes"

        owner.stop()
        assert owner.owned is False
        assert _wait_gone(pid, 5.0), "the owner's stop() left redis-server running"
        assert not (tmp_path / "data" / "redis.json").exists()
        assert not _answers(state["url"])  # type: ignore[arg-type]
        owner.stop()  # idempotent


def test_data_persists_across_restart_with_aof(tmp_path: Path) -> None:
    data_dir = tmp_path / "aof"
    with _running(EmbeddedRedis(data_dir)) as first, _client(first.url) as c:
        assert c.config_get("appendonly") == {"appendonly": "yes"}
        c.set("budget:spent", "610000")
        c.xadd("events", {"k": "click"})
        pid = _state(data_dir)["pid"]
    assert isinstance(pid, int) and _wait_gone(pid, 5.0)
    with _running(EmbeddedRedis(data_dir)) as second, _client(second.url) as c:
        assert second.owned and _state(data_dir)["pid"] != pid
        assert c.get("budget:spent") == b"610000"
        assert c.xlen("events") == 1


def test_without_aof_nothing_is_kept(tmp_path: Path) -> None:
    with _running(EmbeddedRedis(tmp_path, appendonly=False)) as s, _client(s.url) as c:
        c.set("k", "v")
    with _running(EmbeddedRedis(tmp_path, appendonly=False)) as s, _client(s.url) as c:
        assert c.get("k") is None


def test_long_path_falls_back_to_tcp(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(data_dir / "redis.sock")) > 100
    with _running(EmbeddedRedis(data_dir)) as server:
        assert server.url.startswith("redis://127.0.0.1:"), server.url
        assert not (data_dir / "redis.sock").exists()
        with _client(server.url) as c:
            c.set("k", "v")
            assert c.get("k") == b"v"
        guest = EmbeddedRedis(data_dir)
        assert guest.start() == server.url and not guest.owned


def test_stale_state_file_starts_a_fresh_server(tmp_path: Path) -> None:
    (tmp_path / "redis.json").write_text(
        json.dumps({"url": f"unix://{tmp_path / 'gone.sock'}", "pid": 999_999}))
    with _running(EmbeddedRedis(tmp_path)) as server:
        assert server.owned and _answers(server.url)
        assert _state(tmp_path)["url"] == server.url
    (tmp_path / "redis.json").write_text("{not json")
    with _running(EmbeddedRedis(tmp_path)) as server:
        assert server.owned and _answers(server.url)


def test_failure_to_start_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    server = EmbeddedRedis(blocker / "data")
    with pytest.raises((EmbeddedRedisError, OSError)):
        server.start()
    assert not server.owned


CHILD = """
import sys, time
from exchange.embedded import EmbeddedRedis
server = EmbeddedRedis(sys.argv[1])
print(server.start(), flush=True)
time.sleep(120)
"""


def test_killed_parent_leaves_no_orphan_redis(tmp_path: Path) -> None:
    data_dir = tmp_path / "orphan"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    redis_pid = 0
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        assert url, child.stderr.read() if child.stderr else ""
        assert _answers(url)
        state = _state(data_dir)
        redis_pid = state["pid"]  # type: ignore[assignment]
        assert state["url"] == url and isinstance(redis_pid, int) and _alive(redis_pid)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert _wait_gone(redis_pid, 5.0), "redis-server outlived its killed parent"
        assert not _answers(url)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
        if redis_pid and _alive(redis_pid):
            os.kill(redis_pid, signal.SIGKILL)
    # The next process on that directory finds the stale state and starts afresh.
    with _running(EmbeddedRedis(data_dir)) as server:
        assert server.owned and _answers(server.url)
