"""Segment signals: batch ingest rate (HTTP and stream) and ingest-to-effect latency.

Starts an embedded Redis and the real server (``python -m exchange serve``, one worker,
which spawns ``python -m exchange rollup``: the segment intake runs there), loads a small
catalogue and one active campaign targeting the segment ``bench_seg`` on "oat milk", then:

1. floor: pipelined writes from one plain (sync) redis-py client, the same commands
   ``apply_segments`` sends (per change ``HSET`` 2 fields, ``HDEL`` 1, ``EXPIRE``) in
   batches of ``--batch`` changes: what Redis takes from one Python client;
2. HTTP: ``POST /v1/signals/segments`` with ``--batch`` changes a call (bodies encoded
   before the clock), one after another on one connection;
3. stream: the intake process is paused (SIGSTOP), ``--updates`` worth of entries are
   XADDed (pipelined, before the clock), then it is resumed (SIGCONT) and the clock runs
   until the ``segments`` group has no lag and nothing pending (XINFO GROUPS / XPENDING);
4. latency: ``--samples`` fresh shoppers, alternately through HTTP and the stream: the
   clock starts before the segment add is written and stops when ``POST /v1/ads`` (polled
   in a tight loop) first shows the campaign's ad. Floor: one ``POST /v1/ads`` round
   trip of a shopper already in the segment.

An *update* is one segment add or remove (what ``apply_segments`` counts); every change
adds 2 segments and removes 1, so 3 updates. CPU seconds are utime + stime from
``/proc/<pid>/stat`` of the worker (HTTP), the rollup process (stream), this client
(floor) and redis-server (all). "per CPU-s" is updates per CPU second of the Python
process doing the ingest: the "on one core" rate. Targets: ingest >= 50,000 updates/s on
one core; ingest-to-effect p99 <= 100 ms. Prints a table and one JSON line, and writes it
to ``loadtest/results/signals-<time>.json``.

    python loadtest/bench_signals.py [--updates 210000] [--batch 5000] [--samples 300]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import msgspec  # noqa: E402
import redis  # noqa: E402

from exchange import keys  # noqa: E402
from exchange.embedded import EmbeddedRedis, free_port  # noqa: E402
from exchange.shoppers import STATE_TTL_S  # noqa: E402
from loadtest.processes import serve, wait_ready  # noqa: E402
from loadtest.provenance import git_sha, machine  # noqa: E402

OPERATOR = "bench-operator-key"
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")
SEGMENT = "bench_seg"
RESULTS = ROOT / "loadtest" / "results"
TICK = os.sysconf("SC_CLK_TCK")
PRODUCTS = [
    {"sku": "OAT-1", "title": "Oatly Barista Oat Milk 1L", "brand": "Oatly",
     "category": "Dairy & Eggs > Milk > Oat Milk", "price": "2.49",
     "landing_url": "https://shop.test/p/OAT-1"},
    {"sku": "OAT-2", "title": "Minor Figures Oat Milk 1L", "brand": "Minor Figures",
     "category": "Dairy & Eggs > Milk > Oat Milk", "price": "2.29"},
    {"sku": "COF-1", "title": "Lavazza Ground Coffee Crema e Gusto 250g", "brand": "Lavazza",
     "category": "Beverages > Coffee > Ground Coffee", "price": "4.99"},
]
ADD = ("loyal_gold", "coupon_user")
REMOVE = ("new_parent",)
UPDATES_PER_CHANGE = len(ADD) + len(REMOVE)
RTT_N = 100  # ad round trips for the latency floor


# --- processes ---------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def rollup_pid(parent: int, timeout: float = 30) -> int:
    """The ``python -m exchange rollup`` child that ``serve`` spawned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if ppid != parent:
                    continue
                argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            if b"rollup" in argv:
                return int(stat.parent.name)
        time.sleep(0.1)
    raise SystemExit("the rollup process did not start")


class Cpu:
    """CPU seconds of some processes over a ``with`` block, and its wall time."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def __enter__(self) -> Cpu:
        self._cpu0 = {k: cpu_s(p) for k, p in self.pids.items()}
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.used = {k: cpu_s(p) - self._cpu0[k] for k, p in self.pids.items()}


# --- the three ingest paths --------------------------------------------------------------


def changes(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"shopper_id": f"{prefix}{i}", "add": list(ADD), "remove": list(REMOVE)}
            for i in range(n)]


def floor_rate(r: redis.Redis, batch: list[list[dict[str, Any]]], pids: dict[str, int]
               ) -> Cpu:
    with Cpu(**pids) as cpu:
        for chunk in batch:
            pipe = r.pipeline(transaction=False)
            for c in chunk:
                key = keys.shopper(c["shopper_id"])
                pipe.hset(key, mapping={f"s:{s}": 1 for s in c["add"]})
                pipe.hdel(key, *(f"s:{s}" for s in c["remove"]))
                pipe.expire(key, STATE_TTL_S)
            pipe.execute()
    return cpu


def http_rate(http: httpx.Client, base: str, bodies: list[bytes], pids: dict[str, int]
              ) -> tuple[Cpu, int]:
    headers = {"Authorization": f"Bearer {OPERATOR}", "Content-Type": "application/json"}
    applied = 0
    with Cpu(**pids) as cpu:
        for body in bodies:
            resp = http.post(f"{base}/v1/signals/segments", content=body, headers=headers)
            resp.raise_for_status()
            applied += resp.json()["applied"]
    return cpu, applied


def group_state(r: redis.Redis) -> tuple[int | None, int, bytes]:
    """(lag, pending, last delivered id) of the intake's group."""
    for g in r.xinfo_groups(keys.SEGMENT_INTAKE):
        if g["name"] in (keys.SEGMENT_GROUP, keys.SEGMENT_GROUP.encode()):
            last = g["last-delivered-id"]
            return g.get("lag"), int(g["pending"]), (
                last if isinstance(last, bytes) else str(last).encode())
    raise SystemExit("no segments consumer group on the intake stream")


def stream_rate(r: redis.Redis, rollup: int, entries: list[dict[str, str]],
                pids: dict[str, int]) -> tuple[Cpu, float]:
    """Fill the stream with the intake paused, then time the drain. Returns the drain's
    figures and the XADD time (seconds, untimed by the drain)."""
    os.kill(rollup, signal.SIGSTOP)
    try:
        t0 = time.perf_counter()
        last = b""
        for start in range(0, len(entries), 5_000):
            pipe = r.pipeline(transaction=False)
            for e in entries[start:start + 5_000]:
                pipe.xadd(keys.SEGMENT_INTAKE, e, maxlen=1_000_000, approximate=True)
            last = pipe.execute()[-1]
        xadd_s = time.perf_counter() - t0
    finally:
        os.kill(rollup, signal.SIGCONT)
    with Cpu(**pids) as cpu:
        while True:
            lag, pending, delivered = group_state(r)
            caught_up = lag == 0 if lag is not None else delivered == last
            if caught_up and pending == 0:
                break
            time.sleep(0.002)
    return cpu, xadd_s


# --- ingest-to-effect --------------------------------------------------------------------


def ad_body(shopper: str, i: int) -> dict[str, Any]:
    # A device and address per sample: the rate limiter never sees one source poll hard.
    return {"placement": "search_top", "page": {"type": "search", "query": "oat milk"},
            "shopper": {"loyalty_id": shopper},
            "device": {"ua": UA, "ip": f"81.2.{69 + i // 250}.{i % 250 + 1}",
                       "id": f"bench-dev-{shopper}"}}


def shows(http: httpx.Client, base: str, body: dict[str, Any], cid: str) -> bool:
    resp = http.post(f"{base}/v1/ads", json=body)
    resp.raise_for_status()
    return any(ad.get("campaign_id") == cid for ad in resp.json().get("ads", []))


def effect(http: httpx.Client, base: str, r: redis.Redis, cid: str, path: str, i: int,
           run: str) -> tuple[float, int]:
    """(ms from the write's start to the first auction showing the ad, polls)."""
    shopper = f"lat-{run}-{path}-{i}"
    body = ad_body(shopper, i)
    op = {"Authorization": f"Bearer {OPERATOR}"}
    t0 = time.perf_counter()
    if path == "http":
        http.post(f"{base}/v1/signals/segments", headers=op,
                  json=[{"shopper_id": shopper, "add": [SEGMENT]}]).raise_for_status()
    else:
        r.xadd(keys.SEGMENT_INTAKE, {"shopper_id": shopper, "add": SEGMENT},
               maxlen=1_000_000, approximate=True)
    polls = 0
    while True:
        polls += 1
        if shows(http, base, body, cid):
            return (time.perf_counter() - t0) * 1000, polls
        if time.perf_counter() - t0 > 5:
            return float("inf"), polls


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50": round(pct(ms, 50), 2), "p95": round(pct(ms, 95), 2),
            "p99": round(pct(ms, 99), 2), "max": round(max(ms), 2)}


# --- set-up ------------------------------------------------------------------------------


def set_up(http: httpx.Client, base: str) -> str:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    http.put(f"{base}/v1/catalog/products", headers=op, json=PRODUCTS).raise_for_status()
    resp = http.post(f"{base}/v1/advertisers", headers=op, json={"name": "Bench"})
    resp.raise_for_status()
    adv = {"Authorization": f"Bearer {resp.json()['api_key']}"}
    resp = http.post(f"{base}/v1/campaigns", headers=adv, json={
        "name": "segment bench", "kind": "sponsored_product", "status": "active",
        "budget": {"daily": "100000.00"}, "pacing": "asap",
        "products": [{"sku": "OAT-1", "bid": "0.80"}],
        "targeting": {"keywords": ["oat milk"],
                      "segments": {"include": [SEGMENT], "exclude": []}}})
    resp.raise_for_status()
    cid = resp.json()["id"]
    members = [{"shopper_id": f"member-{i}", "add": [SEGMENT]} for i in range(RTT_N + 1)]
    http.post(f"{base}/v1/signals/segments", headers=op, json=members).raise_for_status()
    deadline = time.monotonic() + 30
    member, other = ad_body(f"member-{RTT_N}", 1000), ad_body("non-member", 1001)
    while time.monotonic() < deadline:  # the first budget lease takes a pacing tick
        if shows(http, base, member, cid):
            assert not shows(http, base, other, cid), "a non-member was shown the ad"
            return cid
        time.sleep(0.2)  # slow enough for the per-shopper rate limit
    raise SystemExit("the campaign never served its segment member")


# --- main --------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=210_000, help="per ingest path")
    ap.add_argument("--batch", type=int, default=5_000, help="changes per POST / pipeline")
    ap.add_argument("--samples", type=int, default=300, help="ingest-to-effect samples")
    args = ap.parse_args()
    n_changes = args.updates // UPDATES_PER_CHANGE
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedRedis(Path(tmp), appendonly=False)
        store.start()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = serve(port, Path(tmp) / "server.log", REDIS_URL=store.url,
                     ENDCAP_OPERATOR_KEY=OPERATOR, ENDCAP_LOG_LEVEL="warning",
                     ENDCAP_WORKERS="1", ENDCAP_ROLLUP="process")
        try:
            wait_ready(base, proc)
            r = redis.Redis.from_url(store.url)
            rpid = int(r.info("server")["process_id"])
            worker, rollup = proc.pid, rollup_pid(proc.pid)
            me = os.getpid()
            http = httpx.Client(timeout=60, headers={"User-Agent": UA})
            cid = set_up(http, base)

            # 1. floor
            floor_batches = [changes("f", n_changes)[i:i + args.batch]
                             for i in range(0, n_changes, args.batch)]
            floor = floor_rate(r, floor_batches, {"client": me, "redis": rpid})
            # 2. HTTP (bodies encoded before the clock)
            http_changes = changes("h", n_changes)
            bodies = [msgspec.json.encode(http_changes[i:i + args.batch])
                      for i in range(0, n_changes, args.batch)]
            via_http, applied = http_rate(http, base, bodies,
                                          {"worker": worker, "redis": rpid, "client": me})
            assert applied == n_changes * UPDATES_PER_CHANGE, applied
            # 3. stream
            entries = [{"shopper_id": f"s{i}", "add": ",".join(ADD),
                        "remove": ",".join(REMOVE)} for i in range(n_changes)]
            via_stream, xadd_s = stream_rate(r, rollup, entries,
                                             {"rollup": rollup, "redis": rpid})
            got = r.hgetall(keys.shopper(f"s{n_changes - 1}"))
            assert set(got) == {f"s:{s}".encode() for s in ADD}, got
            # 4. ingest-to-effect, and its floor: one ad round trip for a member
            rtt = []
            for i in range(RTT_N):  # a member each: no source trips the rate limiter
                member = ad_body(f"member-{i}", 1100 + i)
                t0 = time.perf_counter()
                assert shows(http, base, member, cid), "a member was not shown the ad"
                rtt.append((time.perf_counter() - t0) * 1000)
            lat: dict[str, list[float]] = {"http": [], "stream": []}
            polls: dict[str, list[int]] = {"http": [], "stream": []}
            for i in range(args.samples):
                path = ("http", "stream")[i % 2]
                ms, n = effect(http, base, r, cid, path, i, run)
                lat[path].append(ms)
                polls[path].append(n)
            http.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            finally:
                store.stop()
    updates = n_changes * UPDATES_PER_CHANGE

    def rates(cpu: Cpu, who: str) -> dict[str, float]:
        return {"wall_s": round(cpu.wall, 3), "per_s": round(updates / cpu.wall),
                "cpu_s": round(cpu.used[who], 3),
                "per_cpu_s": round(updates / max(cpu.used[who], 1e-9)),
                "redis_cpu_s": round(cpu.used["redis"], 3)}

    fl, ht, st = rates(floor, "client"), rates(via_http, "worker"), rates(via_stream, "rollup")
    rtt_ms = summary(rtt)
    result: dict[str, Any] = {
        "bench": "signals", "updates": updates, "changes": n_changes, "batch": args.batch,
        "update": "one segment add or remove (a change = 2 adds + 1 remove)",
        "floor_redis_py_pipeline": fl, "http": ht, "stream": st,
        "stream_xadd_s_untimed": round(xadd_s, 3),
        "http_client_cpu_s": round(via_http.used["client"], 3),
        "ratio_to_floor": {
            "http_wall": round(ht["per_s"] / fl["per_s"], 3),
            "http_cpu": round(ht["per_cpu_s"] / fl["per_cpu_s"], 3),
            "stream_wall": round(st["per_s"] / fl["per_s"], 3),
            "stream_cpu": round(st["per_cpu_s"] / fl["per_cpu_s"], 3)},
        "target_updates_per_cpu_s": 50_000,
        "met_ingest": {"http": ht["per_cpu_s"] >= 50_000, "stream": st["per_cpu_s"] >= 50_000},
        "latency_floor_ad_rtt_ms": rtt_ms,
        "latency_ms": {p: summary(v) for p, v in lat.items()},
        "latency_polls_mean": {p: round(statistics.mean(v), 2) for p, v in polls.items()},
        "latency_ratio_p50_to_rtt": {p: round(pct(v, 50) / rtt_ms["p50"], 2)
                                     for p, v in lat.items()},
        "target_p99_ms": 100,
        "met_latency": {p: pct(v, 99) <= 100 for p, v in lat.items()},
        "samples": args.samples, "runtime_s": round(time.perf_counter() - started, 1),
        "git": git_sha(), "machine": machine(),
    }
    print(f"{updates:,} updates per path ({n_changes:,} changes x {UPDATES_PER_CHANGE}), "
          f"batches of {args.batch:,} changes")
    print(f"{'ingest':28} {'wall s':>7} {'upd/s':>9} {'ingest CPU s':>12} {'upd/CPU-s':>10} "
          f"{'redis CPU s':>11} {'x floor (wall, CPU)':>20}")
    for name, row, key in (("floor: redis-py pipeline", fl, None),
                           ("HTTP POST (worker CPU)", ht, "http"),
                           ("stream drain (rollup CPU)", st, "stream")):
        ratio = "" if key is None else (f"{result['ratio_to_floor'][key + '_wall']:.2f}, "
                                        f"{result['ratio_to_floor'][key + '_cpu']:.2f}")
        print(f"{name:28} {row['wall_s']:>7.2f} {row['per_s']:>9,} {row['cpu_s']:>12.2f} "
              f"{row['per_cpu_s']:>10,} {row['redis_cpu_s']:>11.2f} {ratio:>20}")
    print(f"(stream filled with the intake paused, untimed: {xadd_s:.2f} s; target "
          f">= 50,000 updates per CPU-s: HTTP {'met' if result['met_ingest']['http'] else 'MISSED'}"
          f", stream {'met' if result['met_ingest']['stream'] else 'MISSED'})")
    print(f"{'ingest-to-effect ms':28} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
          f"{'polls':>6} {'p50/rtt':>8}")
    print(f"{'floor: ad round trip':28} {rtt_ms['p50']:>7.2f} {rtt_ms['p95']:>7.2f} "
          f"{rtt_ms['p99']:>7.2f} {rtt_ms['max']:>7.2f}")
    for p in ("http", "stream"):
        s = result["latency_ms"][p]
        print(f"{p + ' (' + str(len(lat[p])) + ' samples)':28} {s['p50']:>7.2f} {s['p95']:>7.2f} "
              f"{s['p99']:>7.2f} {s['max']:>7.2f} {result['latency_polls_mean'][p]:>6} "
              f"{result['latency_ratio_p50_to_rtt'][p]:>8}  "
              f"(target p99 <= 100 ms: {'met' if result['met_latency'][p] else 'MISSED'})")
    line = json.dumps(result)
    print(line)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"signals-{run}.json").write_text(line + "\n")


if __name__ == "__main__":
    main()
