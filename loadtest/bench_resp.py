"""Benchmark: HGETALL of a 30-field hash through redis.asyncio vs ``exchange.resp.RespClient``.

Against an embedded Redis started here (unix socket), per call, in wall and CPU
microseconds (CPU is this process only: redis-server runs in its own process):

* ``redis.asyncio``: ``await client.hgetall(key)`` on a client built like the exchange's
  (``BlockingConnectionPool``, 64 connections, health checks every 30 s);
* ``RespClient``: ``await client.execute("HGETALL", key)`` (raw flat list; the dict the
  other client builds is left to the caller);
* each sequentially (one caller) and with 32 concurrent callers;
* and a small pipeline (HGETALL + GET + EXISTS) through both, for the ~215 µs figure.

The ratio RespClient / redis.asyncio, per mode, is what to compare across machines: the
floor is redis.asyncio measured in the same run. Median of ``--rounds`` rounds. Runs on
uvloop like the server, unless ``--loop asyncio``.

    python loadtest/bench_resp.py [--calls 20000] [--rounds 5] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hiredis  # noqa: E402
import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import uvloop  # noqa: E402

from exchange.embedded import EmbeddedRedis  # noqa: E402
from exchange.resp import RespClient  # noqa: E402
from loadtest.provenance import git_sha, machine  # noqa: E402

KEY = "bench:shopper"
FIELDS = 30
CONCURRENCY = 32
POOL_SIZE = 64  # exchange.runtime.REDIS_POOL_SIZE

Call = Callable[[], Awaitable[object]]


async def _pass(call: Call, calls: int, callers: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per call over ``calls`` calls shared by ``callers`` coroutines."""

    async def caller(n: int) -> None:
        for _ in range(n):
            await call()

    share = calls // callers
    wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
    if callers == 1:
        await caller(share)
    else:
        await asyncio.gather(*(caller(share) for _ in range(callers)))
    wall, cpu = time.perf_counter_ns() - wall0, time.process_time_ns() - cpu0
    done = share * callers
    return wall / done / 1000, cpu / done / 1000


async def run(url: str, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=5, health_check_interval=30)
    redis_py = aioredis.Redis.from_pool(pool)
    resp = await RespClient.connect(url)
    pipe_cmds = [["HGETALL", KEY], ["GET", "bench:missing"], ["EXISTS", KEY]]

    async def redis_py_pipeline() -> object:
        async with redis_py.pipeline(transaction=False) as pipe:
            pipe.hgetall(KEY)
            pipe.get("bench:missing")
            pipe.exists(KEY)
            return await pipe.execute()

    cases: dict[str, Call] = {
        "redis.asyncio hgetall": lambda: redis_py.hgetall(KEY),
        "RespClient execute": lambda: resp.execute("HGETALL", KEY),
        "redis.asyncio pipeline(3)": redis_py_pipeline,
        "RespClient pipeline(3)": lambda: resp.pipeline(pipe_cmds),
    }
    expected = await redis_py.hgetall(KEY)
    flat = await resp.execute("HGETALL", KEY)
    assert isinstance(flat, list) and dict(zip(flat[::2], flat[1::2], strict=True)) == expected
    samples: dict[str, list[tuple[float, float]]] = {}
    for callers in (1, CONCURRENCY):
        for call in cases.values():
            await _pass(call, min(calls, 2000), callers)  # warm: connections, caches
        for _ in range(rounds):
            for name, call in cases.items():  # interleaved, so drift hits all alike
                samples.setdefault(f"{name} x{callers}", []).append(
                    await _pass(call, calls, callers))
    await resp.close()
    await redis_py.aclose()
    return {
        name: {
            "wall_us": statistics.median(w for w, _ in runs),
            "cpu_us": statistics.median(c for _, c in runs),
        }
        for name, runs in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per pass")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-resp-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "r", appendonly=False)
        url = server.start()
        try:
            setup = redis.Redis.from_url(url)
            setup.delete(KEY)
            setup.hset(KEY, mapping={f"field:{i:02d}": f"value-{i:04d}-{'x' * 12}"
                                     for i in range(FIELDS)})
            setup.close()
            runner = uvloop.run if args.loop == "uvloop" else asyncio.run
            figures = runner(run(url, args.calls, args.rounds))
        finally:
            server.stop()

    print(f"HGETALL of a {FIELDS}-field hash, {args.calls} calls per pass, median of "
          f"{args.rounds}, {args.loop}, unix socket")
    print(f"{'client':<36}{'wall µs':>10}{'CPU µs':>10}")
    for name, fig in figures.items():
        print(f"{name:<36}{fig['wall_us']:>10.1f}{fig['cpu_us']:>10.1f}")

    ratios: dict[str, dict[str, float]] = {}
    for mode in ("x1", f"x{CONCURRENCY}"):
        for a, b in (("redis.asyncio hgetall", "RespClient execute"),
                     ("redis.asyncio pipeline(3)", "RespClient pipeline(3)")):
            fa, fb = figures[f"{a} {mode}"], figures[f"{b} {mode}"]
            key = f"{b.split()[1]} {mode}"
            ratios[key] = {k: round(fb[k] / fa[k], 3) for k in ("wall_us", "cpu_us")}
            print(f"ratio RespClient/redis.asyncio {key:<18} wall {ratios[key]['wall_us']:.2f}"
                  f"  CPU {ratios[key]['cpu_us']:.2f}")

    result = {
        "bench": "resp",
        "fields": FIELDS,
        "calls": args.calls,
        "rounds": args.rounds,
        "loop": args.loop,
        "concurrency": CONCURRENCY,
        "figures": {k: {m: round(v, 2) for m, v in f.items()} for k, f in figures.items()},
        "ratios": ratios,
        "machine": machine(),
        "versions": {
            "python": platform.python_version(),
            "redis": redis.__version__,
            "hiredis": hiredis.__version__,
            "uvloop": metadata.version("uvloop"),
        },
        "git_sha": git_sha(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
