"""What a 30-day by-SKU report costs, read from the rollup's aggregates.

Starts an embedded Redis and the exchange in process (ASGI, no HTTP server), creates one
advertiser and campaign, fills its day aggregates ``rp:{c<id>}:<YYYYMMDD>`` directly (the
format ``rollup.lua`` writes) for 30 days x 1,000 SKUs (plus 24 hours, 3 placements and
200 search terms a day), then times
``GET /v1/reports/campaigns/{id}?breakdown=sku&from=..&to=..`` against two floors measured
in the same run: ``GET /healthz`` through the same app, and one ``HGETALL`` of one day's
hash. Prints median and p95 in ms and one JSON line (target: median < 200 ms).

    python loadtest/bench_reports.py [--days 30] [--skus 1000] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from exchange import keys  # noqa: E402
from exchange.app import Exchange  # noqa: E402
from exchange.embedded import EmbeddedRedis  # noqa: E402
from exchange.settings import load_settings  # noqa: E402
from loadtest.provenance import git_sha, machine  # noqa: E402

OPERATOR = "bench-operator-key"


def _value(rnd: random.Random) -> str:
    imps = rnd.randint(0, 5000)
    clicks = rnd.randint(0, imps // 20 + 1)
    spend = clicks * rnd.randint(100_000, 900_000)
    return (f"{imps + rnd.randint(0, 500)} {imps} {clicks} {spend} "
            f"{imps * rnd.randint(1, 4)} {rnd.randint(0, 20)}")


async def fill(client: aioredis.Redis, campaign_id: int, days: list[str], skus: int) -> int:
    """Write the aggregates; returns the fields per day hash."""
    rnd = random.Random(7)
    fields = 0
    for day in days:
        mapping = {f"h:{h:02d}": _value(rnd) for h in range(24)}
        mapping.update({f"k:SKU-{i:05d}": _value(rnd) for i in range(skus)})
        mapping.update({f"p:{p}": _value(rnd) for p in
                        ("search_top", "product_carousel", "category_grid")})
        mapping.update({f"t:term {i}": _value(rnd) for i in range(200)})
        await client.hset(keys.rollup_day(campaign_id, day), mapping=mapping)
        fields = len(mapping)
    return fields


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await fn()  # warm
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"median_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2)}


async def main(days_n: int, skus: int, runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=False)
        server.start()
        try:
            settings = load_settings(environ={"ENDCAP_OPERATOR_KEY": OPERATOR})
            app = Exchange(settings, server.url)
            await app.runtime.start()
            try:
                return await _run(app, days_n, skus, runs)
            finally:
                await app.runtime.stop()
        finally:
            server.stop()


async def _run(app: Exchange, days_n: int, skus: int, runs: int) -> dict[str, object]:
    op = {"Authorization": f"Bearer {OPERATOR}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        r = await http.put("/v1/catalog/products", headers=op, json=[
            {"sku": "SKU-00000", "title": "Oat milk", "brand": "B", "category": "Milk",
             "price": "1.00"}])
        r.raise_for_status()
        r = await http.post("/v1/advertisers", headers=op, json={"name": "Bench"})
        r.raise_for_status()
        adv = {"Authorization": f"Bearer {r.json()['api_key']}"}
        r = await http.post("/v1/campaigns", headers=adv, json={
            "name": "bench", "kind": "sponsored_product", "status": "paused",
            "budget": {"daily": "50.00", "total": "1000.00"}, "pacing": "even",
            "products": [{"sku": "SKU-00000", "bid": "0.50"}]})
        r.raise_for_status()
        public = r.json()["id"]
        cid = int(public[4:])
        end = date.today()
        start = end - timedelta(days=days_n - 1)
        days = [(start + timedelta(days=i)).strftime("%Y%m%d") for i in range(days_n)]
        client = app.runtime.client
        fields = await fill(client, cid, days, skus)
        url = (f"/v1/reports/campaigns/{public}?breakdown=sku&from={start.isoformat()}"
               f"&to={end.isoformat()}")

        async def report() -> object:
            resp = await http.get(url, headers=adv)
            assert resp.status_code == 200, resp.text
            return resp

        check = (await http.get(url, headers=adv)).json()
        assert len(check["rows"]) == skus, check

        async def healthz() -> object:
            return await http.get("/healthz")

        async def hgetall() -> object:
            return await client.hgetall(keys.rollup_day(cid, days[-1]))

        rep = _stats(await timed(report, runs))
        health = _stats(await timed(healthz, runs))
        one_day = _stats(await timed(hgetall, runs))
    return {
        "bench": "reports", "days": days_n, "skus": skus, "fields_per_day": fields,
        "runs": runs, "report": rep, "floor_healthz": health, "floor_hgetall_one_day": one_day,
        "ratio_vs_hgetall": round(rep["median_ms"] / max(one_day["median_ms"], 1e-6), 1),
        "target_median_ms": 200, "met": rep["median_ms"] < 200,
        "git": git_sha(), "machine": machine(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    result = asyncio.run(main(args.days, args.skus, args.runs))
    print(f"{'':24} {'median ms':>10} {'p95 ms':>10}")
    for name in ("report", "floor_healthz", "floor_hgetall_one_day"):
        s = result[name]
        assert isinstance(s, dict)
        print(f"{name:24} {s['median_ms']:>10} {s['p95_ms']:>10}")
    print(json.dumps(result))
