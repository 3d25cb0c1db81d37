"""One worker's running service: the parts, wired, started and stopped in order.

Start: Redis client -> numba warm-up -> note the change-feed position -> load the index
snapshot -> take budget leases -> tail the feed -> start the event writer and the report rollup
-> ready. Stop: stop taking changes and finish the rollup's batch -> return budget leases
-> drain the event queue into Redis -> close. The app's lifespan drives this.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.requests import Request

from auction.selection import CAMP_ELIGIBLE, CAMP_ID, warm_up
from exchange import campaigns, catalog, changes, keys
from exchange.bidlimits import load_bid_limits
from exchange.clock import business_day, campaign_zone
from exchange.complements import load_complements
from exchange.events import EventLog
from exchange.flow import AdServer, SignalSettings
from exchange.index import Index
from exchange.metrics import Metrics
from exchange.replenishment import load_replenishment
from exchange.resp import ReplyError, RespClient
from exchange.rollup import AGGREGATE_TTL_S, Rollup
from exchange.segmentintake import SegmentIntake
from exchange.settings import Placement, Settings
from exchange.shoppers import ShopperState, ShopperStore, ZoneClock, parse_state
from exchange.stock import StockTable
from exchange.stock import load as load_stock
from exchange.tracking import Tracker
from fraud.givt import GivtFilter
from fraud.ratelimit import RateLimiter
from fraud.signature import TokenSigner
from pacing.ledger import Ledger
from pacing.pacer import PacedCampaign, Pacer, PacerConfig

log = logging.getLogger("endcap.runtime")
REDIS_POOL_SIZE = 64
RATE_SYNC_MAX_SOURCES = 5_000


class Runtime:
    def __init__(self, settings: Settings, placements: dict[str, Placement], redis_url: str
                 ) -> None:
        self.settings = settings
        self.placements = placements
        # A blocking pool: a burst of beacons waits for a connection instead of failing.
        # from_pool: the client owns the pool, so aclose() closes its connections too.
        self.client = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=REDIS_POOL_SIZE, timeout=5, health_check_interval=30))
        self.redis_url = redis_url
        self.index = Index()
        self.stock = StockTable()
        self.replenishment = load_replenishment(settings.resolve(settings.replenishment_file))
        self.shoppers = ShopperStore(self.client)
        self.resp: RespClient | None = None  # the hot path's own connection (shopper state)
        self._state_timeout_s = settings.shopper_state_timeout_ms / 1000
        self.ready = False
        self.signer = TokenSigner(
            settings.signing_keys, settings.signing_key_id, settings.token_ttl_s,
            retired={k: int(at.timestamp()) for k, at in settings.retired_signing_keys.items()},
        )
        self.events = EventLog(
            self.client, stream=keys.EVENTS, maxlen=settings.event_stream_maxlen,
            flush_ms=settings.event_flush_ms, queue_max=settings.event_queue_max,
        )
        self.ledger = Ledger(self.client, events_key=keys.EVENTS,
                             events_maxlen=settings.event_stream_maxlen)
        self.pacer = Pacer(self.client, self, retailer_zone=settings.zone, config=PacerConfig(
            report_ms=settings.pacing_report_ms, interval_ms=settings.pacing_interval_ms,
            lease_ttl_ms=settings.pacing_lease_ttl_ms,
            window_ms=settings.pacing_in_flight_s * 1000))
        self.metrics = Metrics(gauges=self._gauges, pacing=self.pacer)
        self.bid_limits = load_bid_limits(settings.resolve(settings.bid_limits_file))
        self.givt = GivtFilter.from_config(settings.resolve(settings.givt_file))
        # A sync keeps the (single-threaded) Redis busy ~8 µs per source: cap it so a burst
        # of distinct sources never stalls other clients for more than ~40 ms.
        self.limiter = RateLimiter(self.client, max_sources_per_sync=RATE_SYNC_MAX_SOURCES)
        self.ads = AdServer(
            index=lambda: self.index, placements=placements, signer=self.signer,
            events=self.events, stats=self.metrics.ads,
            min_increment_micros=settings.min_increment_micros, max_slots=settings.max_slots,
            givt=self.givt, limiter=self.limiter, pacer=self.pacer,
            complements=load_complements(settings.resolve(settings.complements_file)),
            stock=lambda: self.stock,
            signals=SignalSettings(low_stock_threshold=settings.low_stock_threshold,
                                   fatigue_k=settings.fatigue_k, zone=settings.zone),
        )
        self.tracker = Tracker(
            client=self.client, ledger=self.ledger, signer=self.signer,
            index=lambda: self.index, events=self.events, metrics=self.metrics,
            zone_of=self.zone_of, placement_ids=list(placements),
            fallback_url=settings.fallback_landing_url,
            min_click_delay_ms=settings.min_click_delay_ms, givt=self.givt,
            limiter=self.limiter, pacer=self.pacer, shoppers=self.shoppers,
            cap_clock=ZoneClock(settings.zone), notify_at=settings.exposure_notify_at,
            exposed_maxlen=settings.exposed_stream_maxlen,
        )
        self.rollup = Rollup(self.client, zone_of=self.zone_of,
                             term_ttl_s=settings.token_ttl_s,
                             search_placements=[p.id for p in placements.values()
                                                if p.page_type == "search"])
        self.intake = SegmentIntake(self.client, redis_url)
        self.feed: changes.ChangeFeed | None = None
        self._rates: asyncio.Task[None] | None = None
        self._daypart_task: asyncio.Task[None] | None = None
        self._eligible_last: np.ndarray | None = None
        self._eligible_of: Index | None = None
        self._stopping = False
        self._reload_lock = asyncio.Lock()

    def _gauges(self) -> dict[str, float]:
        stats = self.index.stats()
        return {
            "index_campaigns": stats["campaigns"],
            "index_rows": stats["rows"],
            "index_products": stats["products"],
            "events_pending": self.events.pending,
            "events_dropped": self.events.dropped,
            "rollup_pending": self.rollup.pending,
        }

    def today(self) -> str:
        return business_day(self.settings.zone)

    async def start(self) -> None:
        started = time.perf_counter()
        await self.client.ping()
        self.resp = await RespClient.connect(self.redis_url)
        warm_up()
        self.givt.warm_up()
        position = await changes.position(self.client)
        await self.reload()
        await self.pacer.start()
        self.feed = changes.ChangeFeed(self.client, self.on_change, position)
        self.feed.start()
        self.events.start()
        if self.settings.rollup == "worker":
            await self.rollup.ensure_group()
            self.rollup.start()
        if self.settings.rollup != "process":  # else the background process reads it
            await self.intake.ensure_group()
            self.intake.start()
        self._stopping = False
        self._rates = asyncio.create_task(self._share_rates(), name="rate-limit-sync")
        self._daypart_task = asyncio.create_task(self._every_10s(), name="every-10s")
        self.ready = True
        log.info("ready in %.2fs: %s", time.perf_counter() - started, self.index.stats())

    async def stop(self) -> None:
        self.ready = False
        self._stopping = True
        if self._daypart_task is not None:  # only sleeps and touches memory: safe to cancel
            self._daypart_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._daypart_task
        self.rollup.request_stop()  # the tailers wind down in the same blocking read
        self.intake.request_stop()
        if self.feed is not None:
            await self.feed.stop()
        await self.rollup.stop()
        await self.intake.stop()
        if self._rates is not None:
            # Let an in-flight sync finish rather than cancel redis-py mid-call.
            try:
                await asyncio.wait_for(asyncio.shield(self._rates), 5)
            except TimeoutError:
                self._rates.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._rates
        try:
            await self.pacer.stop()
        except (RedisError, OSError) as exc:
            log.warning("pacing stop incomplete (leases expire on their own): %s", exc)
        try:
            await self.events.close()
        finally:
            if self.resp is not None:
                await self.resp.close()
            await self.client.aclose()

    async def reload(self) -> None:
        """Build a fresh index from the store off the event loop, then swap it in."""
        async with self._reload_lock:
            t0 = time.perf_counter()
            products = await catalog.load_all(self.client)
            records = await campaigns.load_all(self.client)
            now = time.time_ns() // 1_000_000
            off = [r.id for r in records if not self._in_daypart(r, now)]
            index = await asyncio.to_thread(Index.build, products, records, off,
                                            self.replenishment)
            stock = await load_stock(self.client, max(index.products, default=0) + 1)
            self.pacer.set_campaigns(self._paced(records))
            for cid in index.campaign_slot:
                index.set_gate(cid, self.pacer.gate(cid))
            with contextlib.suppress(RedisError, OSError):  # the old index's last counts
                await self.flush_eligible(self.index)
            self.index = index
            self.stock = stock
            log.info("index built in %.2fs: %s", time.perf_counter() - t0, self.index.stats())
            _settle_gc()

    async def on_change(self, kind: str, ids: list[int]) -> None:
        index = self.index
        if kind == "campaign":
            records = await campaigns.load_many(self.client, ids)
            now = time.time_ns() // 1_000_000
            for record in records:
                index.set_in_daypart(record.id, self._in_daypart(record, now))
                index.upsert_campaign(record)
            self.pacer.set_campaigns(self._paced(
                r for r in index.campaign_records if r is not None))
            for record in records:
                index.set_gate(record.id, self.pacer.gate(record.id))
        elif kind == "product":
            raw = await self.client.hmget(keys.PRODUCTS, [str(i) for i in ids])
            index.upsert_products(catalog.decode_record(v) for v in raw if v)
        elif kind == "stock":  # (store number, pid, quantity) triples
            stock = self.stock
            if any(c not in stock.columns.values() for c in ids[::3]):
                names = await self.client.hgetall(keys.STORES)
                stock.columns.update({k.decode(): int(v) for k, v in names.items()})
            for i in range(0, len(ids) - 2, 3):
                stock.apply(ids[i], ids[i + 1], ids[i + 2])
        elif kind == "budget":
            for cid in ids:  # a worker's bill found the budget spent: close the gate here too
                self.pacer.exhausted(cid)
        elif kind == "reload":
            await self.reload()
        if self.index.needs_compaction:
            await self.reload()

    async def shopper_state(self, shopper: str) -> ShopperState | None:
        """The shopper's state in one round trip on the hot path's own connection; None
        if Redis does not answer in ``shopper_state_timeout_ms`` (the caller serves no ad)."""
        resp = self.resp
        if resp is None:
            return None
        try:
            flat = await resp.execute(b"HGETALL", keys.shopper(shopper),
                                      timeout_s=self._state_timeout_s)
        except (ConnectionError, TimeoutError, ReplyError, OSError):
            return None
        return parse_state(flat)  # type: ignore[arg-type]

    def zone_of(self, campaign_id: int) -> ZoneInfo:
        """The zone a campaign's days and hours are counted in (reports, budgets)."""
        index = self.index
        slot = index.campaign_slot.get(campaign_id)
        record = index.campaign_records[slot] if slot is not None else None
        return campaign_zone(record.time_zone, self.settings.zone) if record else \
            self.settings.zone

    def _in_daypart(self, record: campaigns.CampaignRecord, now_ms: int) -> bool:
        return campaigns.in_daypart(
            record, campaign_zone(record.time_zone, self.settings.zone), now_ms)

    async def _every_10s(self) -> None:
        """Every 10 s: switch dayparted campaigns on and off as their hours come and go,
        and hand the auctions' eligibility counts to the report aggregates."""
        while not self._stopping:
            await asyncio.sleep(10)
            index = self.index
            now = time.time_ns() // 1_000_000
            for record in index.campaign_records:
                if record is not None and record.dayparts:
                    index.set_in_daypart(record.id, self._in_daypart(record, now))
            try:
                await self.flush_eligible()
            except (RedisError, OSError) as exc:
                log.warning("eligible-auction counts kept for the next round: %s", exc)

    async def flush_eligible(self, index: Index | None = None) -> int:
        """Add what the kernel counted since the last flush (``CAMP_ELIGIBLE``: auctions
        each campaign was eligible for) to ``e:<HH>`` of its report day, for impression
        share. Returns the campaigns written."""
        index = index or self.index
        n = index.n_campaigns
        counts = index.campaigns[:n, CAMP_ELIGIBLE].copy()
        last = self._eligible_last if self._eligible_of is index else None
        applied = np.zeros_like(counts)  # what Redis holds of each slot's count
        if last is not None:
            applied[: len(last)] = last[: len(counts)]
        self._eligible_last, self._eligible_of = applied, index
        delta = counts - applied
        slots = np.nonzero(delta > 0)[0]
        if not len(slots):
            return 0
        now = time.time_ns() // 1_000_000
        ids = index.campaigns[:n, CAMP_ID]
        when: dict[str, tuple[str, str]] = {}  # zone -> (day, "e:<HH>"), once per flush
        writes: list[tuple[int, str, str, int]] = []
        for slot in slots.tolist():
            cid = int(ids[slot])
            zone = self.zone_of(cid)
            if zone.key not in when:
                local = datetime.fromtimestamp(now / 1000, tz=zone)
                when[zone.key] = (local.strftime("%Y%m%d"), f"e:{local.hour:02d}")
            day, field = when[zone.key]
            writes.append((slot, keys.rollup_day(cid, day), field, int(delta[slot])))
        # In chunks: between them the event loop serves requests (no long stall). A chunk
        # written is marked applied at once, so a failure later never re-adds it.
        for start in range(0, len(writes), 200):
            chunk = writes[start:start + 200]
            async with self.client.pipeline(transaction=False) as pipe:
                for _, key, field, count in chunk:
                    pipe.hincrby(key, field, count)
                    pipe.expire(key, AGGREGATE_TTL_S)
                await pipe.execute()
            for slot, _, _, count in chunk:
                applied[slot] += count
        return len(slots)

    def limits_of(self, pid: int) -> tuple[int, int]:
        """The retailer's (min, max) bid for a product (by its category; this worker's
        index knows the catalogue)."""
        return self.bid_limits.for_categories(self.index.product_categories(pid))

    def set_gate(self, campaign_id: int, gate: int) -> None:
        """Pacing's ``GateSink``: open or close a campaign in the current index."""
        self.index.set_gate(campaign_id, gate)

    def _paced(self, records: Iterable[campaigns.CampaignRecord]) -> list[PacedCampaign]:
        return [self.paced(r) for r in records if r.status == "active"]

    def paced(self, r: campaigns.CampaignRecord) -> PacedCampaign:
        """What pacing needs to know of a campaign."""
        return PacedCampaign(r.id, r.daily_budget_micros, r.total_budget_micros, r.pacing,
                             campaign_zone(r.time_zone, self.settings.zone),
                             max((b.bid_micros for b in r.bids), default=0))

    async def _share_rates(self) -> None:
        """Send this worker's rate-limit counts to Redis and learn every worker's blocks."""
        interval = self.settings.rate_limit_sync_ms / 1000
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                result = await self.limiter.sync()
            except (RedisError, OSError) as exc:
                log.warning("rate-limit sync failed (blocks kept, counts lost): %s", exc)
                continue
            if result.dropped_sources:
                log.warning("rate-limit sync dropped %d small sources", result.dropped_sources)


def runtime_of(request: Request) -> Runtime:
    """The worker's runtime, from a Starlette request (set by the app at build time)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def _settle_gc() -> None:
    """Move the long-lived index objects out of the collector's way.

    A full collection walking a million index objects is a multi-millisecond pause in
    the middle of some request; frozen objects are never scanned again. The young
    generation's threshold is raised because a request allocates a few dozen objects
    that die by reference counting, so frequent young collections only cost time.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
