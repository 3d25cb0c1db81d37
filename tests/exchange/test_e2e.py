"""The real server process, started the way `make run` starts it (small demo sizes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from exchange.embedded import free_port
from exchange.events import decode_entry
from tests.exchange.conftest import BROWSER_UA

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--products", "2000", "--campaigns", "200", "--bids", "4000", "--advertisers", "100",
         "--shoppers", "200", "--stores", "3"]
OPERATOR = "e2e-operator-key"


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(ENDCAP_DATA_DIR=str(data_dir), ENDCAP_OPERATOR_KEY=OPERATOR,
               ENDCAP_LOG_LEVEL="warning")
    return env


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
          ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"User-Agent": BROWSER_UA, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited during start-up"
        try:
            status, body = _http("GET", f"{base}/readyz")
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready in time")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The server, its output appended to ``<data dir>/../server.log`` (read on failure)."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(data_dir.parent / "server.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "exchange", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--demo-if-empty", *SMALL],
            cwd=ROOT, env=_env(data_dir), stdout=log, stderr=log,
        )


def _log(data_dir: Path) -> str:
    return (data_dir.parent / "server.log").read_text()[-3000:]


@pytest.fixture
def server(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = _serve(data_dir, port)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _redis_pid(data_dir: Path) -> int:
    return int(json.loads((data_dir / "redis.json").read_text())["pid"])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_serve_demo_ads_and_clean_shutdown(server: tuple[str, subprocess.Popen[bytes]],
                                           data_dir: Path) -> None:
    base, proc = server
    ready = _wait_ready(base, proc)
    assert ready["index"]["campaigns"] == 200 and ready["index"]["products"] == 2000
    op = {"Authorization": f"Bearer {OPERATOR}"}
    status, page = _http("GET", f"{base}/v1/catalog/products?limit=50", headers=op)
    assert status == 200 and len(page["items"]) == 50
    served = 0
    for item in page["items"]:
        word = item["title"].split()[-2].lower()
        status, body = _http("POST", f"{base}/v1/ads", {
            "placement": "product_carousel", "page": {"type": "product", "sku": item["sku"]}})
        assert status == 200, body
        served += len(body["ads"])
        status, body = _http("POST", f"{base}/v1/ads", {
            "placement": "search_top", "page": {"type": "search", "query": word}})
        assert status == 200, body
        served += len(body["ads"])
    assert served > 50
    # The report rollup runs as its own process (not in the request worker): it reads
    # every win into the aggregates, then the group has nothing left to deliver.
    store = redis.Redis.from_url(json.loads((data_dir / "redis.json").read_text())["url"])
    deadline = time.monotonic() + 15
    while True:
        groups = {g["name"]: g for g in store.xinfo_groups("ex:events")}
        group = groups.get(b"rollup")
        last = store.xinfo_stream("ex:events")["last-generated-id"]
        if group is not None and group["last-delivered-id"] == last and group["pending"] == 0:
            break
        assert time.monotonic() < deadline, f"rollup did not catch up: {group}"
        time.sleep(0.1)
    consumers = store.xinfo_consumers("ex:events", "rollup")
    rollup_pid = int(consumers[0]["name"].decode().split("-")[-2])
    assert rollup_pid != proc.pid and _alive(rollup_pid)
    assert any(k.startswith(b"rp:{c") for k in store.scan_iter(match="rp:*", count=1000))
    store.close()
    # Behind a trusted proxy (loopback here) the shopper's address comes from
    # X-Forwarded-For: a data-centre address there is screened out before the auction.
    sku_page = {"placement": "product_carousel", "page": {"type": "product", "sku": "SKU-000001"}}
    status, direct = _http("POST", f"{base}/v1/ads", sku_page)
    status, proxied = _http("POST", f"{base}/v1/ads", sku_page,
                            headers={"X-Forwarded-For": "81.2.69.142, 3.80.0.1"})
    assert status == 200 and direct["ads"] and proxied["ads"] == []
    # The demo advertisers' keys work (README curl tour).
    status, listed = _http("GET", f"{base}/v1/campaigns",
                           headers={"Authorization": "Bearer ek_demo_1"})
    assert status == 200 and listed["items"]

    # Another command on the same data dir shares the running embedded Redis, and the
    # running server picks up what it loads.
    redis_pid = _redis_pid(data_dir)
    more = subprocess.run(
        [sys.executable, "-m", "exchange", "demo-data", *SMALL[:2], "--campaigns", "300",
         "--bids", "5000", "--advertisers", "100", "--shoppers", "10", "--stores", "2"],
        cwd=ROOT, env=_env(data_dir), capture_output=True, timeout=120,
    )
    assert more.returncode == 0, more.stderr.decode()[-2000:]
    assert _redis_pid(data_dir) == redis_pid and _alive(redis_pid)
    deadline = time.monotonic() + 15
    while _http("GET", f"{base}/readyz")[1]["index"]["campaigns"] != 300:
        assert time.monotonic() < deadline, "server did not pick up the new demo data"
        time.sleep(0.1)

    # Ctrl-C: the server drains its event queue, stops Redis, leaves no orphan.
    url = json.loads((data_dir / "redis.json").read_text())["url"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, _log(data_dir)
    deadline = time.monotonic() + 10
    while _alive(redis_pid) or _alive(rollup_pid):
        assert time.monotonic() < deadline, "redis-server or the rollup outlived the server"
        time.sleep(0.1)
    assert not (data_dir / "redis.json").exists()
    assert url.startswith("unix://") or url.startswith("redis://")


def test_restart_keeps_data_and_events(data_dir: Path) -> None:
    port = free_port()
    proc = _serve(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        status, body = _http("POST", f"{base}/v1/ads", {
            "request_id": "before-restart", "placement": "product_carousel",
            "page": {"type": "product", "sku": "SKU-000001"}})
        assert status == 200
        wins = len(body["ads"])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, _log(data_dir)
        # Start again on the same directory: no demo reload (store not empty), wins kept.
        proc = _serve(data_dir, port)
        ready = _wait_ready(base, proc)
        assert ready["index"]["campaigns"] == 200
        url = json.loads((data_dir / "redis.json").read_text())["url"]
        client = redis.Redis.from_url(url)
        try:
            logged = [e for _, f in client.xrange("ex:events") for e in decode_entry(f)]
        finally:
            client.close()
        assert sum(1 for e in logged if e.request_id == "before-restart") == wins
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
