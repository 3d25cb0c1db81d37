"""``python -m exchange``: serve, load demo data.

Every command resolves Redis the same way: ``REDIS_URL`` / ``redis_url`` if set, else
the embedded ``redis-server`` of the data directory, started if no other Endcap
process on that directory already runs it (and then stopped on exit).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import redis

from exchange.embedded import EmbeddedRedis
from exchange.logs import configure_logging
from exchange.settings import Settings, SettingsError, load_settings

log = logging.getLogger("endcap.cli")


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[str]:
    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.resolve(settings.data_dir))
    url = server.start()
    if server.owned:
        log.info("embedded redis-server started at %s", url)
    try:
        yield url
    finally:
        server.stop()


def _demo(url: str, args: argparse.Namespace, *, only_if_empty: bool) -> None:
    from exchange import demo

    client = redis.Redis.from_url(url)
    try:
        if only_if_empty and not demo.is_empty(client):
            log.info("store has data: demo data not loaded")
            return
        sizes = demo.DemoSizes(
            products=args.products, campaigns=args.campaigns, bids=args.bids,
            advertisers=args.advertisers, shoppers=args.shoppers, stores=args.stores,
        )
        t0 = time.perf_counter()
        data = demo.generate(sizes, seed=args.seed)
        t1 = time.perf_counter()
        counts = demo.load(client, data)
        t2 = time.perf_counter()
        log.info("demo data generated in %.1fs, loaded in %.1fs: %s", t1 - t0, t2 - t1, counts)
        print(f"demo data loaded: {counts} (advertiser API keys: ek_demo_1 ... "
              f"ek_demo_{sizes.advertisers})", file=sys.stderr)
    finally:
        client.close()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    with redis_for(settings) as url:
        if args.demo_if_empty:
            _demo(url, args, only_if_empty=True)
        os.environ["ENDCAP_REDIS_URL_RESOLVED"] = url
        host = args.host or settings.host
        port = settings.port if args.port is None else args.port
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        print(f"Endcap serving on http://{shown}:{port}  (health: /healthz, metrics: /metrics)",
              file=sys.stderr)
        rollup = None
        if settings.rollup == "process":
            from exchange.rollupd import spawn

            rollup = spawn(url)
        try:
            _uvicorn(settings, args, host, port)
        finally:
            if rollup is not None:
                rollup.terminate()
                try:
                    rollup.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    rollup.kill()
    return 0


def _uvicorn(settings: Settings, args: argparse.Namespace, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        "exchange.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers or settings.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        # X-Forwarded-For is believed only from these peers (spoofed chains are not).
        forwarded_allow_ips=settings.trusted_proxies,
    )


def cmd_rollup(settings: Settings, args: argparse.Namespace) -> int:
    """The report rollup on its own (``serve`` starts one; more may run anywhere)."""
    import asyncio

    from exchange.rollupd import run

    with redis_for(settings) as url:
        asyncio.run(run(settings, url))
    return 0


def cmd_demo_data(settings: Settings, args: argparse.Namespace) -> int:
    with redis_for(settings) as url:
        _demo(url, args, only_if_empty=args.if_empty)
    return 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """Check that every campaign's ledger spend equals the sum of its billed events."""
    import asyncio

    import redis.asyncio as aioredis

    from exchange import keys
    from exchange.clock import business_day
    from pacing.ledger import Ledger

    day = args.day or business_day(settings.zone)

    async def run(url: str) -> int:
        client = aioredis.Redis.from_url(url)
        try:
            ledger = Ledger(client, events_key=keys.EVENTS,
                            events_maxlen=settings.event_stream_maxlen)
            mismatches = await ledger.reconcile(day)
        finally:
            await client.aclose()
        for m in mismatches:
            print(f"cmp_{m.campaign_id}: ledger {m.ledger_micros} != events {m.events_micros}")
        print(f"reconcile {day}: {len(mismatches)} mismatch(es)")
        return 1 if mismatches else 0

    with redis_for(settings) as url:
        return asyncio.run(run(url))


def _demo_args(p: argparse.ArgumentParser) -> None:
    from exchange.demo import DemoSizes

    d = DemoSizes()
    p.add_argument("--products", type=int, default=d.products)
    p.add_argument("--campaigns", type=int, default=d.campaigns)
    p.add_argument("--bids", type=int, default=d.bids)
    p.add_argument("--advertisers", type=int, default=d.advertisers)
    p.add_argument("--shoppers", type=int, default=d.shoppers)
    p.add_argument("--stores", type=int, default=d.stores)
    p.add_argument("--seed", type=int, default=7)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m exchange", description="Endcap ad exchange")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the exchange")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--demo-if-empty", action="store_true",
                       help="load demo data first if the store is empty (make run)")
    _demo_args(serve)
    demo = sub.add_parser("demo-data", help="load seeded demo data")
    demo.add_argument("--if-empty", action="store_true", help="only into an empty store")
    _demo_args(demo)
    sub.add_parser("rollup", help="run the report rollup (consumer of the event stream)")
    rec = sub.add_parser("reconcile", help="check ledger spend against the billed events")
    rec.add_argument("--day", help="YYYYMMDD (default: today in the retailer's zone)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"endcap: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.command == "serve":
        return cmd_serve(settings, args)
    if args.command == "reconcile":
        return cmd_reconcile(settings, args)
    if args.command == "rollup":
        return cmd_rollup(settings, args)
    return cmd_demo_data(settings, args)
