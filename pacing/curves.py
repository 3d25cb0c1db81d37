"""Where a campaign's spend should be at any moment of its day: the pacing target curves.

A campaign's day runs from midnight to midnight in the campaign's time zone (23 or 25
hours across a DST change). Its target is the share of the daily budget that should be
spent by an instant:

- ``even``: proportional to elapsed time;
- ``traffic_shaped``: proportional to the traffic expected so far, from a 24-hour curve
  learned from the last days' auction counts (``TrafficCurve.learn``);
- ``asap``: the whole budget at once (no throttle; only the hard cap applies).

Traffic curves are indexed by the hour of day in the *retailer's* zone (shoppers' local
time), so a campaign in another zone still follows the shoppers' rhythm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Mode = Literal["even", "traffic_shaped", "asap"]
HOUR_MS = 3_600_000

# A grocery storefront's day (share of daily traffic per hour, 00:00..23:00): a quiet
# night, a lunch peak and a higher evening peak. The prior before any day is learned.
DEFAULT_SHAPE: tuple[float, ...] = (
    0.8, 0.5, 0.35, 0.3, 0.35, 0.6, 1.2, 2.2, 3.4, 4.2, 4.9, 5.8,
    7.2, 6.6, 5.1, 4.6, 4.9, 5.8, 7.3, 8.2, 7.6, 6.0, 3.9, 2.1,
)


@dataclass(frozen=True, slots=True)
class TrafficCurve:
    """Relative traffic per hour of the day (24 weights, normalised to sum 1)."""

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.weights) != 24:
            raise ValueError(f"a traffic curve has 24 hourly weights, got {len(self.weights)}")
        if any(not w >= 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError("traffic weights must be >= 0 with a positive sum")

    @classmethod
    def of(cls, shape: Sequence[float]) -> TrafficCurve:
        total = float(sum(shape))
        if total <= 0:
            raise ValueError("traffic weights must have a positive sum")
        return cls(tuple(float(w) / total for w in shape))

    @classmethod
    def default(cls) -> TrafficCurve:
        return cls.of(DEFAULT_SHAPE)

    @classmethod
    def learn(cls, days: Sequence[Sequence[float]], *, min_auctions: float = 10_000,
              prior_weight: float = 0.25) -> TrafficCurve:
        """The average shape of the given days' hourly auction counts.

        Days with fewer than ``min_auctions`` are too thin to say anything and are
        skipped; the default shape is blended in (``prior_weight``) so a single odd day
        cannot leave an hour at zero. No usable day: the default shape.
        """
        prior = cls.default().weights
        usable = [d for d in days if len(d) == 24 and sum(d) >= min_auctions]
        if not usable:
            return cls(prior)
        learned = [0.0] * 24
        for day in usable:
            total = float(sum(day))
            for h in range(24):
                learned[h] += day[h] / total / len(usable)
        return cls.of([(1 - prior_weight) * learned[h] + prior_weight * prior[h]
                       for h in range(24)])

    def density(self, hour: float) -> float:
        """Traffic at ``hour`` (0..24) relative to the day's mean (1.0 = average hour)."""
        return self.weights[int(hour) % 24] * 24

    def cumulative(self, hour: float) -> float:
        """Share of the day's traffic from 00:00 up to ``hour`` (0..24, fractional)."""
        hour = min(max(hour, 0.0), 24.0)
        whole = int(hour)
        done = sum(self.weights[:whole])
        if whole < 24:
            done += self.weights[whole] * (hour - whole)
        return done


@dataclass(frozen=True, slots=True)
class CampaignDay:
    """One campaign's budget day: its key and its bounds in epoch ms."""

    day: str  # YYYYMMDD in the campaign's zone: the ledger's day field
    start_ms: int
    end_ms: int


def campaign_day(zone: ZoneInfo, at_ms: int) -> CampaignDay:
    """The day containing ``at_ms`` in ``zone``, with its real length (DST-aware)."""
    local = datetime.fromtimestamp(at_ms / 1000, tz=zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    start = datetime(midnight.year, midnight.month, midnight.day, tzinfo=zone)
    nxt = start.date() + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return CampaignDay(local.strftime("%Y%m%d"), int(start.timestamp() * 1000),
                       int(end.timestamp() * 1000))


def retailer_hour(zone: ZoneInfo, at_ms: int) -> float:
    """Fractional hour of day (0..24) of ``at_ms`` in the retailer's zone."""
    local = datetime.fromtimestamp(at_ms / 1000, tz=zone)
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def target_fraction(mode: Mode, curve: TrafficCurve, day: CampaignDay, at_ms: int,
                    retailer_zone: ZoneInfo) -> float:
    """Share (0..1) of the daily budget that should be spent by ``at_ms``."""
    if mode == "asap":
        return 1.0
    if at_ms <= day.start_ms:
        return 0.0
    if at_ms >= day.end_ms:
        return 1.0
    if mode == "even":
        return (at_ms - day.start_ms) / (day.end_ms - day.start_ms)
    return _traffic_between(curve, day.start_ms, at_ms, retailer_zone) / _traffic_between(
        curve, day.start_ms, day.end_ms, retailer_zone)


def _traffic_between(curve: TrafficCurve, start_ms: int, end_ms: int, zone: ZoneInfo) -> float:
    """Expected traffic (in days of traffic) between two instants, hour by hour."""
    total = 0.0
    t = start_ms
    while t < end_ms:
        hour = retailer_hour(zone, t)
        step = min(end_ms - t, max(1, int((int(hour) + 1 - hour) * HOUR_MS)))
        total += curve.density(hour) * step / (24 * HOUR_MS)
        t += step
    return total
