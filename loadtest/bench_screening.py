"""What invalid-traffic screening costs an ad request, in process.

Builds the full demo index in memory (no Redis, no HTTP), then serves the same
realistic request bodies through ``AdServer.serve`` twice per round: once with no
screening (the floor of this benchmark) and once with the real GIVT filter and SIVT rate
limiter (``hit`` only; their Redis sync runs off the request path). Prints the added
µs per request (target ≤ 50) and the ratio, as medians over alternating rounds, and one
JSON line. CPU time (``process_time``) of whole passes, so a noisy neighbour moves both
sides alike.

    python loadtest/bench_screening.py [--rounds 5] [--bodies 4000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from exchange import demo  # noqa: E402
from exchange.events import EventLog  # noqa: E402
from exchange.flow import AdServer  # noqa: E402
from exchange.index import Index  # noqa: E402
from exchange.metrics import Metrics  # noqa: E402
from exchange.screening import PassAll, RateCheck, TrafficCheck  # noqa: E402
from exchange.settings import load_placements, load_settings  # noqa: E402
from fraud.signature import TokenSigner  # noqa: E402
from loadtest.provenance import git_sha, machine  # noqa: E402

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S91{v}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:12{v}.0) Gecko/20100101 Firefox/12{v}.0",
]


def bodies(index: Index, n: int, seed: int = 5) -> list[tuple[bytes, str, str]]:
    """(body, user agent, client ip): 70% search, 30% product page, many browsers/IPs."""
    rnd = random.Random(seed)
    products = list(index.products.values())
    out = []
    for i in range(n):
        p = rnd.choice(products)
        if rnd.random() < 0.7:
            words = p.title.lower().replace(",", "").split()
            q = " ".join(rnd.sample(words, min(len(words), rnd.randint(1, 3))))
            body = {"placement": "search_top", "page": {"type": "search", "query": q}}
        else:
            body = {"placement": "product_carousel", "page": {"type": "product", "sku": p.sku}}
        body["shopper"] = {"loyalty_id": f"shp_{rnd.randint(1, 100_000):06d}"}
        ua = rnd.choice(BROWSERS).format(v=rnd.randint(0, 9) + (110 if i % 4 == 0 else 0))
        ip = ".".join(str(rnd.randint(lo, hi)) for lo, hi in ((60, 90), (0, 255), (0, 255),
                                                              (1, 254)))
        out.append((msgspec.json.encode(body), ua, ip))
    return out


def server(index: Index, givt: TrafficCheck, limiter: RateCheck) -> AdServer:
    settings = load_settings(environ={})
    events = EventLog(aioredis.Redis(), stream="x", maxlen=1000, flush_ms=10,
                      queue_max=10**9)
    return AdServer(
        index=lambda: index,
        placements=load_placements(settings.resolve(settings.placements_file)),
        signer=TokenSigner(settings.signing_keys, settings.signing_key_id, 3600),
        events=events, stats=Metrics().ads, min_increment_micros=10_000, max_slots=10,
        givt=givt, limiter=limiter,
    )


def one_pass(srv: AdServer, work: list[tuple[bytes, str, str]]) -> float:
    srv._events._queue.clear()
    t0 = time.process_time()
    for body, ua, ip in work:
        srv.serve(body, "http://x", ua, ip)
    return (time.process_time() - t0) / len(work) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bodies", type=int, default=4000)
    args = ap.parse_args()
    from fraud.givt import GivtFilter
    from fraud.ratelimit import RateLimiter

    t0 = time.perf_counter()
    data = demo.generate(demo.DemoSizes())
    index = Index.build(data.products, data.campaigns)
    print(f"demo index built in {time.perf_counter() - t0:.1f}s", flush=True)
    work = bodies(index, args.bodies)
    bare = server(index, PassAll(), PassAll())
    givt = GivtFilter.from_config(ROOT / "config" / "givt.toml")
    screened = server(index, givt, RateLimiter(aioredis.Redis()))
    one_pass(bare, work)
    one_pass(screened, work)  # warm: UA verdicts cached, as in steady state
    rows = []
    for r in range(args.rounds):
        b = one_pass(bare, work)
        s = one_pass(screened, work)
        rows.append((b, s))
        print(f"round {r + 1}: unscreened {b:6.1f} µs/req  screened {s:6.1f} µs/req  "
              f"added {s - b:5.1f} µs", flush=True)
    bare_us = statistics.median(b for b, _ in rows)
    screened_us = statistics.median(s for _, s in rows)
    added = statistics.median(s - b for b, s in rows)
    verdict = "ok" if added <= 50 else "MISSED"
    print(f"\nadded by GIVT+SIVT: {added:.1f} µs per ad request (median)  target <= 50  {verdict}")
    print(json.dumps({
        "bench": "screening", "bodies": args.bodies, "rounds": args.rounds,
        "unscreened_us": round(bare_us, 2), "screened_us": round(screened_us, 2),
        "added_us": round(added, 2), "ratio": round(bare_us / screened_us, 4),
        "machine": machine(), "versions": {"python": platform.python_version()},
        "git_sha": git_sha(),
    }))


if __name__ == "__main__":
    main()
