"""Real server processes for benchmarks and end-to-end tests: start one, wait until ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def serve(port: int, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """``python -m exchange serve`` on 127.0.0.1:``port`` with extra environment ``env``
    (e.g. ``REDIS_URL``, ``ENDCAP_*``); its output is appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "exchange", "serve", "--host", "127.0.0.1", "--port",
             str(port)], cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=out)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Until ``base``/readyz answers 200; AssertionError if the process exits or time runs
    out (the log says why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server on {base} exited during start-up"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server on {base} not ready in {timeout:.0f} s")
