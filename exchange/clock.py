"""The business clock: budgets roll over at midnight in the campaign's time zone (the
retailer's unless the campaign sets its own)."""

from __future__ import annotations

import functools
import time
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def business_day(zone: ZoneInfo, at_ms: int | None = None) -> str:
    """``YYYYMMDD`` of the instant ``at_ms`` (default now) in ``zone``."""
    ts = (now_ms() if at_ms is None else at_ms) / 1000
    return datetime.fromtimestamp(ts, tz=zone).strftime("%Y%m%d")


@functools.lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError if there is none (ZoneInfo's own errors vary:
    not found, a directory, a path outside the database)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def campaign_zone(time_zone: str, retailer: ZoneInfo) -> ZoneInfo:
    """A campaign's budget-day zone: its own, or the retailer's when it has none."""
    return zone(time_zone) if time_zone else retailer
