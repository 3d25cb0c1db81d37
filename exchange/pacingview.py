"""The advertiser's view of a campaign's pacing (``GET /v1/campaigns/{id}/pacing``)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from exchange.campaigns import CampaignRecord, public_id
from exchange.money import format_micros
from pacing.curves import Mode
from pacing.pacer import PacingStatus


class PacingOut(msgspec.Struct, kw_only=True):
    campaign_id: str
    day: str  # YYYY-MM-DD in the campaign's time zone
    time_zone: str
    mode: Mode
    daily_budget: str | None
    total_budget: str | None
    spent_today: str
    spent_total: str
    in_flight: str  # served ads' expected cost not billed yet (clicks still to come)
    remaining_today: str | None  # None: no budget limit
    target_now: str | None  # where the pacing curve says today's spend should be by now
    throttle: float  # share of eligible auctions the campaign enters (0..1)
    projected_exhaustion: datetime | None  # at the current rate; None: not today


def to_out(record: CampaignRecord, zone_name: str, status: PacingStatus) -> PacingOut:
    limited = bool(status.daily_micros or status.total_micros)
    return PacingOut(
        campaign_id=public_id(record.id),
        day=f"{status.day[:4]}-{status.day[4:6]}-{status.day[6:]}",
        time_zone=zone_name,
        mode=status.mode,
        daily_budget=format_micros(status.daily_micros) if status.daily_micros else None,
        total_budget=format_micros(status.total_micros) if status.total_micros else None,
        spent_today=format_micros(status.spent_today),
        spent_total=format_micros(status.spent_total),
        in_flight=format_micros(status.in_flight),
        remaining_today=format_micros(status.remaining_today) if limited else None,
        target_now=format_micros(status.target_now) if status.daily_micros else None,
        throttle=round(status.throttle, 4),
        projected_exhaustion=(
            datetime.fromtimestamp(status.projected_exhaustion_ms / 1000, tz=UTC)
            if status.projected_exhaustion_ms is not None else None),
    )
