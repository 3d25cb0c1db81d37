"""Bulk bids: 10,000 SKU bids in one request, and how soon every worker's auction sees them.

Starts an embedded Redis and two ``python -m exchange serve`` processes on it (two
workers, each with its own index), loads 10,000 products, creates one campaign, then per
round:

1. ``PUT /v1/catalog/products`` with 10,000 rows (the floor: the catalogue's own bulk
   path, similar row count and body size), timed;
2. ``PUT /v1/campaigns/{id}/bids`` with 10,000 rows (new bids each round), timed;
3. polls ``POST /v1/ads`` on *both* workers with a query only one of the new SKUs
   matches (its bid was removed, untimed, before the round) until each shows its ad:
   the time from the PUT's answer to visible everywhere.

Prints medians, the ratio bids/floor, and one JSON line. Targets (issue 4): ≥ 10,000 rows
applied in < 1 s, visible on all workers within 1 s.

    python loadtest/bench_bulk.py [--rows 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from exchange.embedded import EmbeddedRedis, free_port  # noqa: E402
from loadtest.processes import serve, wait_ready  # noqa: E402
from loadtest.provenance import git_sha, machine  # noqa: E402

OPERATOR = "bench-operator-key"
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/126.0.0.0 Safari/537.36")


def _shown(http: httpx.Client, base: str, sku: str, *, present: bool, deadline: float
           ) -> float:
    """When ``base``'s auction first shows (or stops showing) the ad for ``sku``."""
    body = {"placement": "search_top", "page": {"type": "search", "query": f"Benchdrink {sku}"},
            "device": {"ua": UA, "ip": "81.2.69.160"}}
    while time.monotonic() < deadline:
        ads = http.post(f"{base}/v1/ads", json=body).json().get("ads", [])
        if any(ad["sku"] == sku for ad in ads) == present:
            return time.monotonic()
        time.sleep(0.005)
    raise SystemExit(f"{sku} not {'shown' if present else 'gone'} on {base} in time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    op = {"Authorization": f"Bearer {OPERATOR}"}
    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(Path(tmp), appendonly=False)
        redis.start()
        ports = [free_port(), free_port()]
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        env = {"REDIS_URL": redis.url, "ENDCAP_OPERATOR_KEY": OPERATOR,
               "ENDCAP_LOG_LEVEL": "warning"}
        procs = [serve(p, Path(tmp) / f"w{i}.log", **env) for i, p in enumerate(ports)]
        try:
            for base, proc in zip(bases, procs, strict=True):
                wait_ready(base, proc)
            http = httpx.Client(timeout=30, headers={"User-Agent": UA})
            products = [{"sku": f"BK-{i}", "title": f"Benchdrink {i} BK-{i}", "brand": "Bench",
                         "category": "Drinks > Bench", "price": "1.00"} for i in range(args.rows)]
            for start in range(0, args.rows, 5_000):
                http.put(f"{bases[0]}/v1/catalog/products", headers=op,
                         json=products[start:start + 5_000]).raise_for_status()
            key = http.post(f"{bases[0]}/v1/advertisers", headers=op,
                            json={"name": "Bench"}).json()["api_key"]
            adv = {"Authorization": f"Bearer {key}"}
            created = http.post(f"{bases[0]}/v1/campaigns", headers=adv, json={
                "name": "bulk", "status": "active", "budget": {"daily": "100000.00"},
                "pacing": "asap", "products": [{"sku": "BK-0", "bid": "0.10"}]})
            created.raise_for_status()
            cid = created.json()["id"]
            floors, puts, visible = [], [], []
            for r in range(args.rounds):
                half = args.rows // 2
                t0 = time.perf_counter()
                for start in range(0, args.rows, half):  # the catalogue takes 5,000 a call
                    http.put(f"{bases[0]}/v1/catalog/products", headers=op,
                             json=products[start:start + half]).raise_for_status()
                floors.append(time.perf_counter() - t0)
                probe = f"BK-{args.rows - 1 - r}"
                others = [f"BK-{i}" for i in range(1, args.rows)]
                http.put(f"{bases[0]}/v1/campaigns/{cid}/bids", headers=adv,
                         json={"remove": others}).raise_for_status()
                for b in bases:  # start from a campaign without them, on both workers
                    _shown(http, b, probe, present=False, deadline=time.monotonic() + 10)
                rows = [{"sku": f"BK-{i}", "bid": f"{0.20 + r / 100:.2f}"}
                        for i in range(args.rows)]
                t0 = time.perf_counter()
                answer = http.put(f"{bases[0]}/v1/campaigns/{cid}/bids", headers=adv,
                                  json={"upsert": rows})
                answered = time.monotonic()
                puts.append(time.perf_counter() - t0)
                answer.raise_for_status()
                seen = [_shown(http, b, probe, present=True, deadline=answered + 10)
                        for b in bases]
                visible.append(max(seen) - answered)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
            redis.stop()
    floor, put, vis = (statistics.median(x) for x in (floors, puts, visible))
    print(f"catalogue PUT {args.rows:,} rows (floor): {floor * 1000:.0f} ms")
    print(f"bids PUT {args.rows:,} rows: {put * 1000:.0f} ms "
          f"({args.rows / put:,.0f} rows/s, ratio to floor {put / floor:.2f}; target < 1 s)")
    print(f"visible on both workers {vis * 1000:.0f} ms after the answer (target < 1 s); "
          f"worst {max(visible) * 1000:.0f} ms")
    print(json.dumps({"bench": "bulk_bids", "rows": args.rows, "rounds": args.rounds,
                      "bids_put_ms": round(put * 1000, 1),
                      "catalog_put_ms": round(floor * 1000, 1),
                      "ratio": round(put / floor, 3), "visible_ms": round(vis * 1000, 1),
                      "visible_worst_ms": round(max(visible) * 1000, 1),
                      "git": git_sha(), "machine": machine()}))


if __name__ == "__main__":
    main()
