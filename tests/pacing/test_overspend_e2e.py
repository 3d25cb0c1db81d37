"""Money safety with real worker processes: two servers share one budget under full load,
one is killed with SIGKILL mid-run, and still the campaign delivers at most its budget
plus the stated bound, and every click that was answered is in the ledger.

Shoppers are simulated by threads: each asks a random live server for ads, fires the
impression beacon, and clicks 10% of the ads a moment later, sometimes on the other
server (beacons are stateless). Clicks on ads the killed server served keep arriving
after it died, as they would from real shoppers.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from exchange import keys
from exchange.embedded import free_port
from loadtest.processes import serve, wait_ready
from pacing.keys import spend_key
from tests.exchange.conftest import BROWSER_UA, PRODUCTS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "overspend-operator-key"
BUDGET = 20_000_000  # 20.00 a day
MAX_BID = 100_000  # 0.10 a click
BOUND = max(BUDGET // 100, MAX_BID)  # the bound: 1% of the budget or one max bid
CTR = 0.1


def _serve(port: int, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    return serve(port, log, REDIS_URL=redis_url, ENDCAP_OPERATOR_KEY=OPERATOR,
                 ENDCAP_LOG_LEVEL="warning", ENDCAP_MIN_CLICK_DELAY_MS="0",
                 ENDCAP_PACING_REPORT_MS="200", ENDCAP_PACING_INTERVAL_MS="500",
                 ENDCAP_PACING_LEASE_TTL_MS="2000", ENDCAP_PACING_IN_FLIGHT_S="8")


def _setup(base: str) -> int:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    assert httpx.put(f"{base}/v1/catalog/products", json=PRODUCTS, headers=op).status_code == 200
    ids = []
    for name, sku, bid, daily in (("Oatly", "OAT-1", "0.10", "20.00"),
                                  ("Minor Figures", "OAT-2", "0.05", "1000.00")):
        r = httpx.post(f"{base}/v1/advertisers", json={"name": name}, headers=op)
        key = {"Authorization": f"Bearer {r.json()['api_key']}"}
        r = httpx.post(f"{base}/v1/campaigns", headers=key, json={
            "name": name, "status": "active", "pacing": "asap", "budget": {"daily": daily},
            "products": [{"sku": sku, "bid": bid}],
            "targeting": {"keywords": ["oat milk"]}})
        assert r.status_code == 201, r.text
        ids.append(int(r.json()["id"][4:]))
    return ids[0]


class Shoppers:
    """Load from threads; clicks go through a delay queue served by one thread."""

    def __init__(self, bases: list[str], campaign: str) -> None:
        self.live = list(bases)
        self.campaign = campaign
        self.stop = threading.Event()
        self.clicks: queue.Queue[tuple[float, str]] = queue.Queue()
        self.clicked: list[str] = []  # click paths answered 302 (recorded or capped)
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def shopper(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=5) as http:
            while not self.stop.is_set():
                ip = f"81.{rng.randrange(1, 250)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                headers = {"User-Agent": BROWSER_UA, "X-Forwarded-For": ip}
                base = rng.choice(self.live)
                try:
                    r = http.post(f"{base}/v1/ads", headers=headers, json={
                        "placement": "search_top", "request_id": f"r{seed}-{rng.random()}",
                        "page": {"type": "search", "query": "oat milk"}})
                except httpx.HTTPError:
                    continue  # the server was just killed
                for ad in r.json().get("ads", []):
                    path = ad["impression_url"].split("/t/", 1)[1]
                    try:
                        http.get(f"{rng.choice(self.live)}/t/{path}", headers=headers)
                    except httpx.HTTPError:
                        continue
                    if ad["campaign_id"] == self.campaign and rng.random() < CTR:
                        click = ad["click_url"].split("/t/", 1)[1]
                        self.clicks.put((time.monotonic() + rng.uniform(0, 1.5),
                                         f"{ip}|{click}"))

    def clicker(self) -> None:
        with httpx.Client(timeout=5, follow_redirects=False) as http:
            while not (self.stop.is_set() and self.clicks.empty()):
                try:
                    due, item = self.clicks.get(timeout=0.1)
                except queue.Empty:
                    continue
                time.sleep(max(0.0, due - time.monotonic()))
                ip, path = item.split("|", 1)
                try:
                    r = http.get(f"{random.choice(self.live)}/t/{path}",
                                 headers={"User-Agent": BROWSER_UA, "X-Forwarded-For": ip})
                except httpx.HTTPError:  # sent to the server just killed: the shopper retries
                    self.clicks.put((time.monotonic(), item))
                    continue
                with self.lock:
                    if r.status_code == 302:
                        self.clicked.append(path)
                    else:
                        self.errors.append(f"{r.status_code} {r.text[:100]}")


def test_two_workers_one_killed_never_overspend(redis_url: str, redis_sync: redis.Redis,
                                                tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    procs = [_serve(p, redis_url, tmp_path / f"server{i}.log") for i, p in enumerate(ports)]
    try:
        for base, proc in zip(bases, procs, strict=True):
            wait_ready(base, proc)
        cid = _setup(bases[0])
        day = time.strftime("%Y%m%d", time.gmtime())
        spend = spend_key(cid)

        def spent() -> int:
            return int(redis_sync.hget(spend, f"d:{day}") or 0)

        load = Shoppers(bases, f"cmp_{cid}")
        threads = [threading.Thread(target=load.shopper, args=(i,)) for i in range(6)]
        threads.append(threading.Thread(target=load.clicker))
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while spent() < BUDGET * 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spent() >= BUDGET * 0.4, "the campaign did not spend under load"
        procs[1].send_signal(signal.SIGKILL)  # mid-run, leases and queues and all
        procs[1].wait()
        load.live = [bases[0]]
        while spent() < BUDGET * 0.97 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # full load a little longer, against a spent budget
        load.stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)

    assert not load.errors, load.errors[:5]
    counters = {k.decode(): int(v) for k, v in redis_sync.hgetall(spend).items()}
    # Delivered value: the price of every recorded click, charged in full or capped.
    delivered = 0
    for _, fields in redis_sync.xrange(keys.EVENTS):
        if fields.get(b"k") == b"click" and int(fields.get(b"cid", 0)) == cid:
            delivered += int(fields[b"p"])
    billed = counters[f"d:{day}"]
    print(f"budget {BUDGET} billed {billed} delivered {delivered} "
          f"over {delivered - BUDGET} bound {BOUND} clicks {len(load.clicked)}")
    assert billed <= BUDGET
    assert delivered - BUDGET <= BOUND
    assert billed >= BUDGET * 0.9, "the budget should be (nearly) spent despite the kill"
    # No lost spend: every answered click is in the ledger, and the ledger is the log.
    assert counters[f"n:click:{day}"] == len(set(load.clicked))
    assert billed == counters[f"charged:click:{day}"]
    check = subprocess.run([sys.executable, "-m", "exchange", "reconcile", "--day", day],
                           cwd=ROOT, env=dict(os.environ, REDIS_URL=redis_url),
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 mismatch(es)" in check.stdout
