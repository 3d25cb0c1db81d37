"""What pacing costs: the hot path (memory only) and the background Redis work.

1. Hot path: ``Pacer.served`` (book one served ad's expected cost) against a no-op call,
   per ad, over 5,000 campaigns with open allowances. CPU time of whole passes.
2. Leases: ``lease.lua`` calls per second, pipelined 500 at a time, against the same
   number of plain ``HGET``s pipelined alike (the floor), on an embedded Redis.
3. Controller: one leader round (read spend and leases of 5,000 campaigns, run the PI
   controller, write the throttles) in ms; it runs every ``pacing_interval_ms`` (2 s) on
   one worker.

    python loadtest/bench_pacing.py [--campaigns 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from exchange.embedded import EmbeddedRedis  # noqa: E402
from exchange.flow import NoPacing  # noqa: E402
from loadtest.provenance import git_sha, machine  # noqa: E402
from pacing.keys import spend_key  # noqa: E402
from pacing.leases import LeaseRequest  # noqa: E402
from pacing.pacer import PacedCampaign, Pacer, PacerConfig  # noqa: E402

UTC = ZoneInfo("UTC")


class Sink:
    def set_gate(self, campaign_id: int, gate: int) -> None:
        pass


def _campaigns(n: int) -> list[PacedCampaign]:
    return [PacedCampaign(i, 50_000_000 + i, 0, "even", UTC, 1_000_000) for i in range(1, n + 1)]


def hot_path(pacer: Pacer, n_campaigns: int, rounds: int, calls: int = 200_000
             ) -> tuple[float, float]:
    ids = [1 + (i * 7919) % n_campaigns for i in range(calls)]
    floor, real = NoPacing(), pacer
    floors, reals = [], []
    for _ in range(rounds):
        for impl, out in ((floor, floors), (real, reals)):
            for lease in pacer.allowances.leases.values():
                lease.held = 1e15  # never runs out during the pass
            served = impl.served
            t0 = time.process_time()
            for cid in ids:
                served(cid, 700_000)
            out.append((time.process_time() - t0) / calls * 1e6)
    return statistics.median(floors), statistics.median(reals)


async def leases(client: aioredis.Redis, pacer: Pacer, n: int, rounds: int
                 ) -> tuple[float, float]:
    day = time.strftime("%Y%m%d", time.gmtime())
    floors, reals = [], []
    for _ in range(rounds):
        requests = [LeaseRequest(i, 1_000, 200_000, 50_000_000, 0, day) for i in range(1, n + 1)]
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            await pacer.book.renew(requests[start:start + 500], time.time_ns() // 1_000_000)
        reals.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start + 1, min(n, start + 500) + 1):
                    pipe.hget(spend_key(i), "total")
                await pipe.execute()
        floors.append(n / (time.perf_counter() - t0))
    return statistics.median(floors), statistics.median(reals)


async def controller(pacer: Pacer, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await pacer.lead(time.time_ns() // 1_000_000)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--campaigns", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=False)
        server.start()
        client = aioredis.Redis.from_url(server.url)
        try:
            pacer = Pacer(client, Sink(), retailer_zone=UTC, worker="bench",
                          config=PacerConfig())
            pacer.set_campaigns(_campaigns(args.campaigns))
            await pacer.renew(everything=True)
            floor_us, served_us = hot_path(pacer, args.campaigns, args.rounds)
            floor_ops, lease_ops = await leases(client, pacer, args.campaigns, args.rounds)
            lead_ms = await controller(pacer, args.rounds)
        finally:
            await client.aclose()
            server.stop()
    print(f"hot path: Pacer.served {served_us:.3f} µs per ad vs no-op {floor_us:.3f} µs "
          f"(+{served_us - floor_us:.3f} µs)")
    print(f"leases:   {lease_ops:,.0f} lease.lua calls/s vs {floor_ops:,.0f} HGET/s "
          f"(ratio {lease_ops / floor_ops:.2f})")
    print(f"control:  {lead_ms:.1f} ms per leader round for {args.campaigns} campaigns")
    print(json.dumps({
        "bench": "pacing", "campaigns": args.campaigns,
        "served_us": round(served_us, 3), "noop_us": round(floor_us, 3),
        "lease_calls_per_s": round(lease_ops), "hget_per_s": round(floor_ops),
        "lease_ratio": round(lease_ops / floor_ops, 3), "leader_round_ms": round(lead_ms, 1),
        "git": git_sha(), "machine": machine(),
    }))


if __name__ == "__main__":
    asyncio.run(main())
