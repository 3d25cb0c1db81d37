"""The business clock: budgets roll over at midnight in the retailer's time zone."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def business_day(zone: ZoneInfo, at_ms: int | None = None) -> str:
    """``YYYYMMDD`` of the instant ``at_ms`` (default now) in ``zone``."""
    ts = (now_ms() if at_ms is None else at_ms) / 1000
    return datetime.fromtimestamp(ts, tz=zone).strftime("%Y%m%d")
