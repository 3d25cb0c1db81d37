"""Benchmark: the GIVT filter's cost per ad request.

Run from the repo root: ``python loadtest/bench_givt.py`` (needs the ``test`` extra for the
User-Agent data). Prints a table and one JSON line. Times are µs per call from Python,
the median of several timed passes over pre-built inputs; every UA and IP is a fresh
string object, as it is when decoded from a request, so no string hash is pre-computed.

- ``cold``: a UA never seen before (the rules and crawlerdetect run; ~once per new UA).
- ``warm``: a UA already in the cache plus the data-centre lookup of a public IP.
- ``ip``: ``IpRanges.contains`` alone, over random public IPv4/IPv6 addresses.
- ``mix``: 200k requests, Zipf over every real browser UA fake-useragent ships plus 5 %
  bots from crawler-user-agents, 5 % data-centre IPs; from an empty cache (``mix_first``)
  and again with the cache filled (``mix_steady``).
- ``floor``: a dict lookup of a fresh UA string in the same loop, the least a cached
  verdict can cost. Targets: warm <= 3 µs, ip <= 2 µs; compare ratios across machines.
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import crawleruseragents  # noqa: E402

from fraud.givt import GivtFilter  # noqa: E402
from loadtest.provenance import git_sha, machine  # noqa: E402

SEED = 20_240_607
N_MIX = 200_000
N_HOT = 100_000
BOT_SHARE = 0.05
DATACENTER_SHARE = 0.05
ZIPF_S = 1.1
CONFIG = ROOT / "config" / "givt.toml"
DATACENTER_SAMPLES = ("3.80.", "34.192.", "35.184.", "40.64.", "20.64.", "46.101.", "5.9.")


def _fresh(text: str) -> str:
    """An equal string that is a new object (its hash not yet computed)."""
    return "".join([text[:1], text[1:]])


def _browser_uas() -> list[str]:
    text = (resources.files("fake_useragent") / "data" / "browsers.jsonl").read_text("utf-8")
    return sorted({json.loads(line)["useragent"] for line in text.splitlines() if line.strip()})


def _bot_uas() -> list[str]:
    data = crawleruseragents.CRAWLER_USER_AGENTS_DATA
    return sorted({ua for entry in data for ua in entry.get("instances", ())})


def _public_ip(rng: random.Random) -> str:
    """Residential-looking addresses: European ISP blocks, a fifth of them IPv6."""
    if rng.random() < 0.2:
        return f"2a02:c7f:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    first = rng.choice((31, 62, 77, 81, 86, 90, 92, 109, 176, 185, 188, 193, 212, 213, 217))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _datacenter_ip(rng: random.Random) -> str:
    a, b, _ = rng.choice(DATACENTER_SAMPLES).split(".")
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _per_call(fn: Callable[[], int], calls: int, repeats: int = 5) -> float:
    """Median µs per call of ``fn``, which makes ``calls`` calls per run."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / calls / 1000)
    return statistics.median(samples)


def _zipf_sample(rng: random.Random, items: Sequence[str], n: int) -> list[str]:
    weights = [1 / (rank**ZIPF_S) for rank in range(1, len(items) + 1)]
    return rng.choices(items, weights=weights, k=n)


def main() -> None:
    rng = random.Random(SEED)
    browsers = _browser_uas()
    bots = _bot_uas()
    rng.shuffle(browsers)

    t0 = time.perf_counter()
    givt = GivtFilter.from_config(CONFIG)
    load_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    givt.warm_up()
    warm_up_ms = (time.perf_counter() - t0) * 1000
    ranges = givt.datacenter
    assert ranges is not None

    # cold: every UA distinct and never seen, on a fresh filter each pass.
    cold_uas = browsers + bots

    def run_cold() -> int:
        f = GivtFilter.from_config(CONFIG)
        f.warm_up()
        for ua in cold_uas:
            f.check(ua, "81.2.69.160")
        return len(cold_uas)

    cold_us = _per_call(run_cold, len(cold_uas), repeats=3)

    # warm: cached UAs (fresh string objects) plus the IP lookup of a public address.
    hot = browsers[:500]
    for ua in hot:
        givt.check(ua, None)
    warm_uas = [_fresh(rng.choice(hot)) for _ in range(N_HOT)]
    warm_ips = [_public_ip(rng) for _ in range(N_HOT)]
    pairs = list(zip(warm_uas, warm_ips, strict=True))
    check = givt.check

    def run_warm() -> int:
        for ua, ip in pairs:
            check(ua, ip)
        return N_HOT

    table = {ua: "" for ua in hot}
    lookup = table.get

    def run_floor() -> int:
        for ua, _ip in pairs:
            lookup(ua)
        return N_HOT

    contains = ranges.contains

    def run_ip() -> int:
        for ip in warm_ips:
            contains(ip)
        return N_HOT

    # Fresh strings for every timed pass would be fairest; one shared set keeps the
    # passes comparable, and the first pass (hashes not yet cached) is dropped.
    run_warm()
    warm_us = _per_call(run_warm, N_HOT)
    floor_us = _per_call(run_floor, N_HOT)
    ip_us = _per_call(run_ip, N_HOT)
    warm_uas_fresh = [(_fresh(ua), ip) for ua, ip in pairs]
    t0 = time.perf_counter_ns()
    for ua, ip in warm_uas_fresh:
        check(ua, ip)
    warm_unhashed_us = (time.perf_counter_ns() - t0) / N_HOT / 1000

    # mix: Zipf over the real browser UAs, some bots, some data-centre addresses.
    n_bots = int(N_MIX * BOT_SHARE)
    mix_uas = _zipf_sample(rng, browsers, N_MIX - n_bots) + _zipf_sample(rng, bots, n_bots)
    rng.shuffle(mix_uas)
    mix = [
        (
            _fresh(ua),
            _datacenter_ip(rng) if rng.random() < DATACENTER_SHARE else _public_ip(rng),
        )
        for ua in mix_uas
    ]
    mix_filter = GivtFilter.from_config(CONFIG)
    mix_filter.warm_up()
    reasons: dict[str, int] = {}
    t0 = time.perf_counter_ns()
    for ua, ip in mix:
        mix_filter.check(ua, ip)
    mix_first_us = (time.perf_counter_ns() - t0) / N_MIX / 1000
    distinct = mix_filter.cached_user_agents
    for ua, ip in mix:
        reason = mix_filter.check(ua, ip)
        reasons[reason or "valid"] = reasons.get(reason or "valid", 0) + 1
    mix_check = mix_filter.check

    def run_mix() -> int:
        for ua, ip in mix:
            mix_check(ua, ip)
        return N_MIX

    mix_steady_us = _per_call(run_mix, N_MIX, repeats=3)

    rows = [
        ("cold (new UA)", cold_us),
        ("warm (cached UA + IP)", warm_us),
        ("warm, UA hash not cached", warm_unhashed_us),
        ("IP lookup", ip_us),
        ("mix, from empty cache", mix_first_us),
        ("mix, steady state", mix_steady_us),
        ("floor (dict lookup)", floor_us),
    ]
    print(f"GIVT filter, {len(browsers)} browser + {len(bots)} bot UAs, {len(ranges)} IP ranges")
    print(f"{'measure':<28}{'µs/call':>10}{'x floor':>10}")
    for name, us in rows:
        print(f"{name:<28}{us:>10.3f}{us / floor_us:>10.1f}")
    print(f"mix: {distinct} distinct UAs; verdicts {reasons}")

    result: dict[str, Any] = {
        "bench": "givt",
        "cold_us": round(cold_us, 2),
        "warm_us": round(warm_us, 3),
        "warm_unhashed_us": round(warm_unhashed_us, 3),
        "ip_us": round(ip_us, 3),
        "mix_first_us": round(mix_first_us, 3),
        "mix_steady_us": round(mix_steady_us, 3),
        "floor_us": round(floor_us, 3),
        "warm_vs_floor": round(warm_us / floor_us, 1),
        "mix_steady_vs_floor": round(mix_steady_us / floor_us, 1),
        "mix_requests": N_MIX,
        "mix_distinct_uas": distinct,
        "mix_verdicts": reasons,
        "ip_ranges": len(ranges),
        "load_ms": round(load_ms, 1),
        "warm_up_ms": round(warm_up_ms, 1),
        "machine": machine(),
        "versions": {
            "python": platform.python_version(),
            "crawlerdetect": metadata.version("crawlerdetect"),
            "fake-useragent": metadata.version("fake-useragent"),
            "crawler-user-agents": metadata.version("crawler-user-agents"),
        },
        "git_sha": git_sha(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
