"""Impression and click beacons: verify the token, then record (and bill) exactly once.

A bad token (forged, tampered, expired, unknown key) or a replay gets the same answer
as a good one, so probing teaches nothing, but it is logged as an invalid event with
its reason and never billed. A click charges the clearing price in the ledger's Lua
script, which also writes the click to the event log in the same atomic step; if the
charge spends the campaign out, every worker hears it through the change feed.

A recorded impression or click of a token that names its shopper also updates that
shopper's state (``exchange/shoppers.py``): the campaign's frequency count and the
product's exposure memory. When a product's impressions reach ``notify_at`` with no
purchase since the shopper first saw it, an ``exposed_not_converted`` event goes to
``ex:signals:exposed`` for the loyalty side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol
from zoneinfo import ZoneInfo

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from auction.selection import CAMP_GATE
from exchange import changes, keys
from exchange.campaigns import CampaignRecord
from exchange.clock import business_day
from exchange.events import Event, EventLog, encoder
from exchange.index import Index
from exchange.metrics import Metrics
from exchange.screening import PassAll, RateCheck, TrafficCheck, device_key
from exchange.shoppers import CAP_UNITS, ShopperStore, ZoneClock
from fraud.errors import TokenError
from fraud.signature import AdToken, TokenSigner, new_imp_id
from pacing.ledger import Ledger

log = logging.getLogger("endcap.tracking")
# How long a billed event id is remembered past its token's expiry (clock-skew margin).
DEDUPE_MARGIN_S = 3600
# The ledger's refusals, as invalid-traffic reasons.
SEQUENCE_REASONS = {
    "without_prerequisite": "click_without_impression",
    "too_soon_after_prerequisite": "click_too_fast",
}


class ExposedNotConverted(msgspec.Struct, kw_only=True):
    """``ex:signals:exposed`` entry (field ``e``): the shopper saw the product's ads
    ``impressions`` times and has not bought it since the first."""

    v: int = 1
    type: str = "exposed_not_converted"
    id: str
    ts: int
    shopper_id: str
    sku: str
    campaign_id: int
    impressions: int


class BudgetWatch(Protocol):
    def exhausted(self, campaign_id: int) -> None: ...


class Tracker:
    def __init__(
        self,
        *,
        client: aioredis.Redis,
        ledger: Ledger,
        signer: TokenSigner,
        index: Callable[[], Index],
        events: EventLog,
        metrics: Metrics,
        zone_of: Callable[[int], ZoneInfo],
        placement_ids: list[str],
        fallback_url: str,
        givt: TrafficCheck | None = None,
        limiter: RateCheck | None = None,
        min_click_delay_ms: int = 0,
        pacer: BudgetWatch | None = None,
        shoppers: ShopperStore | None = None,
        cap_clock: ZoneClock | None = None,
        notify_at: int = 3,
        exposed_maxlen: int = 1_000_000,
    ) -> None:
        self._client = client
        self._shoppers = shoppers
        self._cap_clock = cap_clock or ZoneClock(ZoneInfo("UTC"))
        self._notify_at = notify_at
        self._exposed_maxlen = exposed_maxlen
        self._ledger = ledger
        self._signer = signer
        self._index = index
        self._events = events
        self._metrics = metrics
        self._zone_of = zone_of  # a campaign's day zone (Runtime.zone_of)
        self._placements = placement_ids
        self._fallback = fallback_url
        self._givt: TrafficCheck = givt or PassAll()
        self._limiter: RateCheck = limiter or PassAll()
        self._min_click_delay_ms = min_click_delay_ms
        self._pacer = pacer

    async def _exposure(self, kind: str, token: AdToken, record: CampaignRecord | None,
                        sku: str, now_ms: int) -> None:
        """Frequency count and exposure memory of the token's shopper. A failure here
        loses one count, never the (already recorded) beacon."""
        assert self._shoppers is not None
        cap = record.frequency_cap if record is not None else None
        unit = CAP_UNITS[cap.per] if cap is not None else 0
        bucket = self._cap_clock.bucket(now_ms // 1000, unit) if unit else 0
        try:
            crossed = await self._shoppers.record_exposure(
                token.shopper, token.product_id, token.campaign_id, kind[0], now_ms,
                cap_unit_s=unit, cap_bucket=bucket, notify_at=self._notify_at)
            if crossed:
                await self._client.xadd(keys.EXPOSED, {"e": encoder.encode(ExposedNotConverted(
                    id=f"{token.imp_id.hex()}:n", ts=now_ms, shopper_id=token.shopper,
                    sku=sku, campaign_id=token.campaign_id, impressions=crossed))},
                    maxlen=self._exposed_maxlen, approximate=True)
        except (RedisError, OSError) as exc:
            log.warning("exposure of %s not counted: %s", token.imp_id.hex(), exc)

    def _day(self, campaign_id: int, now_ms: int) -> str:
        """The campaign's budget day: midnight to midnight in its own zone."""
        return business_day(self._zone_of(campaign_id), now_ms)

    def _verify(self, kind: str, text: str, now_s: int) -> AdToken | None:
        try:
            return self._signer.verify(text, now_s)
        except TokenError as exc:
            reason = exc.reason
        self._invalid(kind, reason, f"{new_imp_id().hex()}:bad", None)
        return None

    def _invalid(self, kind: str, reason: str, event_id: str, token: AdToken | None) -> None:
        self._metrics.invalid.labels(kind, reason).inc()
        self._metrics.beacons.labels(kind, "invalid").inc()
        self._events.add(Event(
            id=event_id, type="invalid", ts=time.time_ns() // 1_000_000, reason=reason,
            of=kind,
            campaign_id=token.campaign_id if token else 0,
            price_micros=token.price_micros if token else 0,
            slot=token.slot if token else -1,
        ))

    async def _invalid_billable(self, kind: str, reason: str, token: AdToken, now_ms: int
                                ) -> None:
        """An invalid beacon for a real ad: logged, and counted against its campaign."""
        # Each invalid event is its own (two replays in one millisecond are two events).
        self._invalid(kind, reason, f"{token.imp_id.hex()}:{kind[0]}:x:{new_imp_id().hex()}",
                      token)
        await self._ledger.count_invalid(token.campaign_id, reason,
                                         self._day(token.campaign_id, now_ms))

    def _rate(self, kind: str, ua: str | None, ip: str | None) -> str:
        """SIVT limits of the beacon's source: its address and its device (address + UA).
        Tokens carry no shopper id, so shopper limits apply to ad requests only."""
        hit = self._limiter.hit
        if ip and (reason := hit(kind, "ip", ip)):
            return reason
        return hit(kind, "device", device_key(None, ua, ip))

    async def impression(self, text: str, ua: str | None = None, ip: str | None = None
                         ) -> None:
        await self._record_or_note("impression", text, ua, ip)

    async def click(self, text: str, ua: str | None = None, ip: str | None = None) -> str:
        """Records the click; returns where to redirect the shopper."""
        token = await self._record_or_note("click", text, ua, ip)
        if token is None:
            return self._fallback
        product = self._index().products.get(token.product_id)
        return (product.landing_url if product and product.landing_url else self._fallback)

    async def _record_or_note(self, kind: str, text: str, ua: str | None, ip: str | None
                              ) -> AdToken | None:
        """Record the beacon; if Redis is unreachable, still answer the shopper (the click
        still lands on the product) and count the beacon as unrecorded: it is not billed,
        which errs on the advertiser's side. Spooling for replay is the scale-out work."""
        try:
            return await self._record(kind, text, ua, ip)
        except (RedisError, OSError) as exc:
            log.error("%s beacon not recorded, Redis unavailable: %s", kind, exc)
            self._metrics.beacons.labels(kind, "unrecorded").inc()
            try:
                return self._signer.verify(text, time.time_ns() // 1_000_000_000)
            except TokenError:
                return None

    async def _record(self, kind: str, text: str, ua: str | None, ip: str | None
                      ) -> AdToken | None:
        now_ms = time.time_ns() // 1_000_000
        token = self._verify(kind, text, now_ms // 1000)
        if token is None:
            return None
        # Bots and floods get the same answer as everyone; they are just never billed.
        reason = self._givt.check(ua, ip) or self._rate(kind, ua, ip)
        if reason:
            await self._invalid_billable(kind, reason, token, now_ms)
            return token
        index = self._index()
        slot = index.campaign_slot.get(token.campaign_id)
        record = index.campaign_records[slot] if slot is not None else None
        daily = record.daily_budget_micros if record else 0
        total = record.total_budget_micros if record else 0
        product = index.products.get(token.product_id)
        event_id = f"{token.imp_id.hex()}:{kind[0]}"
        # Sponsored products are bought per click: the impression moves no money.
        price = token.price_micros if kind == "click" else 0
        placement = (self._placements[token.placement]
                     if token.placement < len(self._placements) else "")
        event = Event(
            id=event_id, type=kind, ts=now_ms,  # type: ignore[arg-type]
            placement=placement, campaign_id=token.campaign_id,
            sku=product.sku if product else "", price_micros=token.price_micros,
            slot=token.slot,
        )
        result = await self._ledger.record(
            campaign_id=token.campaign_id,
            event_id=event_id,
            kind=kind,
            price_micros=price,
            daily_budget_micros=daily,
            total_budget_micros=total,
            day=self._day(token.campaign_id, now_ms),
            dedupe_ttl_s=max(60, token.expires_s - now_ms // 1000 + DEDUPE_MARGIN_S),
            event=encoder.encode(event),
            # A click is only valid after its impression, and not bot-fast after it.
            requires_event_id=f"{token.imp_id.hex()}:i" if kind == "click" else None,
            min_delay_ms=self._min_click_delay_ms if kind == "click" else 0,
            now_ms=now_ms,
        )
        if result.refused:
            await self._invalid_billable(kind, SEQUENCE_REASONS[result.refused], token, now_ms)
            return token
        if not result.recorded:
            await self._invalid_billable(kind, "replayed", token, now_ms)
            return token
        self._metrics.beacons.labels(kind, "recorded").inc()
        if token.shopper and self._shoppers is not None:
            await self._exposure(kind, token, record, product.sku if product else "", now_ms)
        if result.charged_micros:
            self._metrics.spend.labels("cpc").inc(result.charged_micros)
        if result.exhausted and slot is not None and index.campaigns[slot, CAMP_GATE]:
            # Close the gate here now, and on every other worker through the feed.
            if self._pacer is not None:
                self._pacer.exhausted(token.campaign_id)
            await changes.publish(self._client, "budget", [token.campaign_id])
        return token
