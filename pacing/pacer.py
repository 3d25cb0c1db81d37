"""Pacing in a running worker: budget leases, the shared controller, the traffic curve.

Every worker runs one ``Pacer``. The hot path only touches memory: ``served`` books an
ad's expected cost against the local allowance and ``count_auction`` counts traffic.
Background work, off the request path:

- at once when an allowance runs low (``served`` wakes the loop), else every
  ``tick_ms``: top up allowances running low (pipelined round trips);
- every ``report_ms``: report every allowance's commitments (so the controller and the
  other workers see them) and retry empty ones (a new day, a raised budget);
- every ``interval_ms``: the worker holding the leader lock (``pc:leader``) runs the
  controller for every campaign and writes the throttles to ``pc:throttle``; every worker
  then reads them. The controller's state lives in ``pc:control``, so any worker can take
  over when the leader dies. Traffic counts go to ``pc:traffic:<day>`` by hour.

What the auction sees of all this is one number per campaign, its *gate* (0..GATE_OPEN):
0 while the local allowance is empty, else the throttle in 1/65536. The exchange writes
it into the kernel's campaign table through ``GateSink``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Protocol
from zoneinfo import ZoneInfo

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pacing.allowance import Allowances, Budget
from pacing.controller import ControllerConfig, PacerState, update
from pacing.curves import (
    CampaignDay,
    Mode,
    TrafficCurve,
    campaign_day,
    retailer_hour,
    target_fraction,
)
from pacing.keys import (
    CONTROL,
    LEADER,
    THROTTLE,
    TRAFFIC_TTL_S,
    day_field,
    lease_key,
    spend_key,
    traffic_key,
)
from pacing.leases import LeaseBook

PROJECTED_LUA = files("pacing").joinpath("projected.lua").read_text()

__all__ = ["GATE_OPEN", "GateSink", "PacedCampaign", "Pacer", "PacerConfig", "PacingRow",
           "PacingStatus"]

log = logging.getLogger("endcap.pacing")
GATE_OPEN = 65_536
IN_FLIGHT_BUCKET_MS = 10_000  # lease.lua's BUCKET_MS
CHUNK = 100  # campaigns per pipelined round trip (~5 ms of the loop each)
_CURVE_REFRESH_MS = 600_000


class GateSink(Protocol):
    def set_gate(self, campaign_id: int, gate: int) -> None: ...


@dataclass(frozen=True, slots=True)
class PacedCampaign:
    campaign_id: int
    daily_micros: int
    total_micros: int
    mode: Mode
    zone: ZoneInfo
    max_bid_micros: int = 0


@dataclass(frozen=True, slots=True)
class PacingRow:
    """One campaign's pacing as this worker last saw it (for metrics)."""

    campaign_id: int
    throttle: float
    gate_open: bool
    daily_micros: int
    spent_today: int
    in_flight: int
    held: int


@dataclass(frozen=True, slots=True)
class PacingStatus:
    """One campaign's pacing, read from Redis (for the advertiser API)."""

    day: str
    day_start_ms: int
    day_end_ms: int
    mode: Mode
    daily_micros: int
    total_micros: int
    spent_today: int
    spent_total: int
    in_flight: int  # committed: ads served whose clicks may still come
    leased: int  # allowances workers hold right now
    remaining_today: int  # daily budget - spent - in flight (0 when no daily limit)
    target_now: int  # where the pacing curve says spend should be by now
    throttle: float
    projected_exhaustion_ms: int | None  # at the current rate; None: not today


@dataclass(frozen=True, slots=True)
class PacerConfig:
    tick_ms: int = 100
    report_ms: int = 1_000
    interval_ms: int = 2_000
    lease_ttl_ms: int = 60_000
    window_ms: int = 600_000  # committed cost stays in flight this long (clicks to come)
    control_slices: int = 10  # the leader updates each campaign every this many rounds
    fresh_ms: int = 12_000  # a lease reply this recent stands in for a read of the ledger
    controller: ControllerConfig = field(default_factory=ControllerConfig)


class Pacer:
    def __init__(self, client: aioredis.Redis, sink: GateSink, *, retailer_zone: ZoneInfo,
                 config: PacerConfig | None = None, worker: str | None = None) -> None:
        self.config = config or PacerConfig()
        self.worker = worker or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._client = client
        self._sink = sink
        self._zone = retailer_zone
        self.book = LeaseBook(client, self.worker, lease_ttl_ms=self.config.lease_ttl_ms,
                              window_ms=self.config.window_ms)
        self._projected = client.register_script(PROJECTED_LUA)
        self._cursor = 0
        self._day_map: dict[int, str] | None = None
        self._day_map_until = 0
        self.allowances = Allowances(
            keepalive_ms=self.config.lease_ttl_ms // 2,
            report_max_ms=min(10_000, self.config.lease_ttl_ms // 2))
        self.campaigns: dict[int, PacedCampaign] = {}
        self.throttles: dict[int, int] = {}  # campaign id -> throttle in 1/65536
        self.states: dict[int, PacerState] = {}  # as last written by a leader
        self.curve = TrafficCurve.default()
        self._curve_at = 0
        self._days: dict[str, CampaignDay] = {}
        self._auctions = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False
        self.renewals = 0  # lease calls made (a counter for metrics)
        self._wake = asyncio.Event()

    # -- the hot path -------------------------------------------------------------------

    def served(self, campaign_id: int, price_micros: int) -> None:
        """An ad of the campaign was served at this cost-per-click."""
        if not self.allowances.commit(campaign_id, price_micros):
            self._sink.set_gate(campaign_id, 0)
        if self.allowances.due_now:
            self._wake.set()  # top up now, not at the next tick: a burst outruns 100 ms

    def count_auction(self) -> None:
        self._auctions += 1

    # -- campaigns and gates -------------------------------------------------------------

    def set_campaigns(self, campaigns: Iterable[PacedCampaign]) -> None:
        self.campaigns = {c.campaign_id: c for c in campaigns}
        self._day_map = None
        self.allowances.set_budgets(
            Budget(c.campaign_id, c.daily_micros, c.total_micros, c.max_bid_micros)
            for c in self.campaigns.values())

    def gate(self, campaign_id: int) -> int:
        if not self.allowances.can_serve(campaign_id):
            return 0
        return self.throttles.get(campaign_id, GATE_OPEN)

    def exhausted(self, campaign_id: int) -> None:
        """The ledger refused more: close the gate here at once."""
        self.allowances.exhausted(campaign_id)
        self._sink.set_gate(campaign_id, 0)

    def day_of(self, campaign: PacedCampaign, now_ms: int) -> CampaignDay:
        key = campaign.zone.key
        day = self._days.get(key)
        if day is None or not day.start_ms <= now_ms < day.end_ms:
            day = self._days[key] = campaign_day(campaign.zone, now_ms)
        return day

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the first allowances and throttles before the worker says it is ready."""
        self._stopping = False
        await self.renew(everything=True)
        await self.read_throttles()
        self._task = asyncio.create_task(self._run(), name="pacer")

    async def stop(self) -> None:
        """Report every commitment and give every allowance back."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        now = time.time_ns() // 1_000_000
        requests = self.allowances.release_all(self._days_now(now), now)
        try:
            replies = await self.book.renew(requests, now)
        except (RedisError, OSError) as exc:
            log.warning("leases not returned (they expire in %d ms): %s",
                        self.config.lease_ttl_ms, exc)
            return
        self.allowances.apply(requests, replies)
        if self.is_leader:
            await self._client.delete(LEADER)

    async def _run(self) -> None:
        cfg = self.config
        last_report = last_interval = time.monotonic()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), cfg.tick_ms / 1000)
            self._wake.clear()
            now = time.monotonic()
            try:
                everything = (now - last_report) * 1000 >= cfg.report_ms
                if everything:
                    last_report = now
                await self.renew(everything=everything)
                if (now - last_interval) * 1000 >= cfg.interval_ms:
                    last_interval = now
                    await self.control()
            except (RedisError, OSError) as exc:
                log.warning("pacing round failed (allowances kept): %s", exc)

    # -- the rounds (public so tests and the simulator can drive them) -------------------

    async def renew(self, *, everything: bool = False) -> int:
        """Send what is due, ``CHUNK`` campaigns per round trip: between chunks the event
        loop serves requests, so a burst of renewals never stalls it for long."""
        now = time.time_ns() // 1_000_000
        requests = self.allowances.requests(self._days_now(now), everything=everything,
                                            now_ms=now)
        for start in range(0, len(requests), CHUNK):
            chunk = requests[start:start + CHUNK]
            try:
                replies = await self.book.renew(chunk, now)
            except BaseException:
                self.allowances.failed(requests[start:])
                raise
            self.allowances.apply(chunk, replies)
            self.renewals += len(chunk)
            for r in chunk:
                self._sink.set_gate(r.campaign_id, self.gate(r.campaign_id))
        return len(requests)

    async def control(self) -> None:
        """One controller round: count traffic, lead if we can, read the throttles."""
        now = time.time_ns() // 1_000_000
        if self._auctions:
            hour = str(int(retailer_hour(self._zone, now)))
            key = traffic_key(campaign_day(self._zone, now).day)
            count, self._auctions = self._auctions, 0
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hincrby(key, hour, count)
                pipe.expire(key, TRAFFIC_TTL_S)
                await pipe.execute()
        lock_ms = self.config.interval_ms * 3
        if await self._client.set(LEADER, self.worker, nx=True, px=lock_ms):
            self.is_leader = True
        else:
            holder = await self._client.get(LEADER)
            self.is_leader = holder is not None and _text(holder) == self.worker
            if self.is_leader:
                await self._client.pexpire(LEADER, lock_ms)
        if self.is_leader:
            await self.lead(now)
        await self.read_throttles()

    async def read_throttles(self) -> None:
        raw = await self._client.hgetall(THROTTLE)
        throttles = {int(k): int(v) for k, v in raw.items()}
        changed = [cid for cid in self.campaigns
                   if throttles.get(cid, GATE_OPEN) != self.throttles.get(cid, GATE_OPEN)]
        self.throttles = throttles
        for cid in changed:
            self._sink.set_gate(cid, self.gate(cid))

    async def lead(self, now_ms: int) -> None:
        """Run the controller for a share of the paced campaigns (every campaign once per
        ``control_slices`` rounds) and publish their throttles."""
        if now_ms - self._curve_at >= _CURVE_REFRESH_MS:
            await self._learn_curve(now_ms)
        paced = [c for c in self.campaigns.values() if c.daily_micros > 0]
        if not paced:
            return
        size = -(-len(paced) // self.config.control_slices)
        start = self._cursor % len(paced)
        campaigns = (paced + paced)[start:start + min(size, len(paced))]
        self._cursor = start + len(campaigns)
        days = [self.day_of(c, now_ms) for c in campaigns]
        observed = await self._observe(campaigns, days, now_ms)
        saved = await self._client.hmget(CONTROL, [str(c.campaign_id) for c in campaigns])
        horizon_ms = int(self.config.controller.horizon_s * 1000)
        hour_now = retailer_hour(self._zone, now_ms)
        hour_ahead = retailer_hour(self._zone, now_ms + horizon_ms)
        targets: dict[tuple[str, str, int], tuple[float, float]] = {}
        throttles: dict[str, int] = {}
        states: dict[str, bytes] = {}
        for i, (c, day) in enumerate(zip(campaigns, days, strict=True)):
            spent, in_flight = observed[i]
            state = _decode_state(saved[i]) if saved[i] else PacerState()
            key = (c.mode, c.zone.key, day.start_ms)
            if key not in targets:
                targets[key] = (
                    target_fraction(c.mode, self.curve, day, now_ms, self._zone),
                    target_fraction(c.mode, self.curve, day, now_ms + horizon_ms, self._zone))
            target_now, target_ahead = targets[key]
            # Demand follows the shoppers whatever the mode: normalise by traffic always.
            density = self.curve.density(hour_now)
            density_ahead = self.curve.density(hour_ahead)
            if c.mode == "asap":
                target_now = target_ahead = 1.0
            state = update(state, self.config.controller, budget=c.daily_micros,
                           projected=spent + in_flight, target_now=target_now,
                           target_ahead=target_ahead, density_now=density,
                           density_ahead=density_ahead, now_ms=now_ms, day=day.day)
            self.states[c.campaign_id] = state
            throttles[str(c.campaign_id)] = round(state.throttle * GATE_OPEN)
            states[str(c.campaign_id)] = _encode_state(state)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(THROTTLE, mapping=throttles)  # type: ignore[arg-type]
            pipe.hset(CONTROL, mapping=states)  # type: ignore[arg-type]
            await pipe.execute()

    async def _observe(self, campaigns: list[PacedCampaign], days: list[CampaignDay],
                       now_ms: int) -> list[tuple[int, int]]:
        """(spent today, in flight) of each campaign. A lease reply this worker got in the
        last ``fresh_ms`` already says it (lease.lua sums every worker's commitments), so
        under load most campaigns cost no call; the rest are read with projected.lua,
        ``CHUNK`` per round trip."""
        out: list[tuple[int, int] | None] = []
        stale: list[int] = []
        for i, (c, day) in enumerate(zip(campaigns, days, strict=True)):
            lease = self.allowances.leases.get(c.campaign_id)
            last = lease.last if lease is not None else None
            if (lease is not None and last is not None and lease.day == day.day
                    and now_ms - lease.reported_ms <= self.config.fresh_ms):
                out.append((last.spent_today, last.in_flight))
            else:
                out.append(None)
                stale.append(i)
        for start in range(0, len(stale), CHUNK):
            chunk = stale[start:start + CHUNK]
            async with self._client.pipeline(transaction=False) as pipe:
                for i in chunk:
                    cid = campaigns[i].campaign_id
                    await self._projected(keys=[spend_key(cid), lease_key(cid)],
                                          args=[days[i].day, now_ms, self.config.window_ms],
                                          client=pipe)
                replies = await pipe.execute()
            for i, (spent, in_flight) in zip(chunk, replies, strict=True):
                out[i] = (int(spent), int(in_flight))
        return [o if o is not None else (0, 0) for o in out]

    async def _learn_curve(self, now_ms: int) -> None:
        days = [campaign_day(self._zone, now_ms - d * 86_400_000).day for d in range(1, 8)]
        async with self._client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(traffic_key(day))
            replies = await pipe.execute()
        counts = [[float(r.get(str(h).encode(), r.get(str(h), 0)) or 0) for h in range(24)]
                  for r in replies]
        self.curve = TrafficCurve.learn(counts)
        self._curve_at = now_ms

    def snapshot(self) -> list[PacingRow]:
        rows = []
        for cid, c in self.campaigns.items():
            lease = self.allowances.leases.get(cid)
            last = lease.last if lease is not None else None
            rows.append(PacingRow(
                cid, self.throttles.get(cid, GATE_OPEN) / GATE_OPEN, self.gate(cid) > 0,
                c.daily_micros, last.spent_today if last else 0, last.in_flight if last else 0,
                int(lease.held) if lease is not None else 0))
        return rows

    async def status(self, campaign: PacedCampaign, now_ms: int) -> PacingStatus:
        """The campaign's pacing now, from the shared state (any worker answers alike)."""
        day = campaign_day(campaign.zone, now_ms)
        cid = campaign.campaign_id
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hmget(spend_key(cid), [day_field(day.day), "total"])
            pipe.hgetall(lease_key(cid))
            pipe.hget(THROTTLE, str(cid))
            pipe.hget(CONTROL, str(cid))
            (today, total), leases, throttle_raw, state_raw = await pipe.execute()
        spent_today, spent_total = int(today or 0), int(total or 0)
        in_flight = in_flight_of(leases, now_ms, self.config.window_ms)
        leased = sum(int(_text(v).split(" ")[0]) for k, v in leases.items()
                     if _text(k).startswith("w:") and _text(v).endswith(" " + day.day)
                     and int(_text(v).split(" ")[1]) >= now_ms)
        daily = campaign.daily_micros
        remaining = max(0, daily - spent_today - in_flight) if daily else 0
        if campaign.total_micros:
            left_total = max(0, campaign.total_micros - spent_total - in_flight)
            remaining = min(remaining, left_total) if daily else left_total
        target = target_fraction(campaign.mode, self.curve, day, now_ms, self._zone)
        throttle = (int(throttle_raw) / GATE_OPEN) if throttle_raw is not None else 1.0
        state = _decode_state(state_raw) if state_raw else PacerState()
        exhaustion: int | None = None
        if (daily or campaign.total_micros) and remaining <= 0:
            exhaustion = now_ms
        elif state.demand > 0 and state.day == day.day:
            density = self.curve.density(retailer_hour(self._zone, now_ms))
            rate = state.demand * throttle * density  # micros per second, now
            if rate > 0 and (at := now_ms + int(remaining / rate * 1000)) < day.end_ms:
                exhaustion = at
        return PacingStatus(
            day=day.day, day_start_ms=day.start_ms, day_end_ms=day.end_ms, mode=campaign.mode,
            daily_micros=daily, total_micros=campaign.total_micros, spent_today=spent_today,
            spent_total=spent_total, in_flight=in_flight, leased=leased,
            remaining_today=remaining, target_now=int(target * daily), throttle=throttle,
            projected_exhaustion_ms=exhaustion)

    def _days_now(self, now_ms: int) -> dict[int, str]:
        """Each campaign's current day, rebuilt only when a zone's day turns or the
        campaigns change (it is asked for every tick)."""
        if self._day_map is None or now_ms >= self._day_map_until:
            self._day_map = {cid: self.day_of(c, now_ms).day
                             for cid, c in self.campaigns.items()}
            self._day_map_until = min((d.end_ms for d in self._days.values()),
                                      default=now_ms + 60_000)
        return self._day_map


def in_flight_of(lease_hash: dict[bytes | str, bytes | str], now_ms: int, window_ms: int
                 ) -> int:
    """Committed, not yet billed micros in a lease hash (its live ``f:<n>`` fields)."""
    oldest = (now_ms - window_ms) // IN_FLIGHT_BUCKET_MS
    total = 0
    for name, value in lease_hash.items():
        text = _text(name)
        if text.startswith("f:") and int(text[2:]) >= oldest:
            total += int(value)
    return total


_state_encoder = msgspec.msgpack.Encoder()


def _encode_state(state: PacerState) -> bytes:
    return _state_encoder.encode((state.throttle, state.demand, state.integral,
                                  state.projected, state.at_ms, state.day))


def _decode_state(raw: bytes | str) -> PacerState:
    try:
        t, d, i, p, at, day = msgspec.msgpack.decode(raw if isinstance(raw, bytes)
                                                     else raw.encode())
        return PacerState(throttle=float(t), demand=float(d), integral=float(i),
                          projected=int(p), at_ms=int(at), day=str(day))
    except (msgspec.DecodeError, ValueError, TypeError):
        return PacerState()  # an unreadable state starts over rather than stops pacing


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
