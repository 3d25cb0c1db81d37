"""Campaign reports from the ledger's day counters (no scan of raw events).

The spend hash of a campaign holds, per business day, what was billed (``d:``), how many
impressions and clicks were recorded (``n:<kind>:``) and how many invalid events were
removed, by reason (``inv:<reason>:``). A report folds those into rows per day.
Attributed sales and ROAS stay ``null`` until attribution exists.
"""

from __future__ import annotations

from datetime import date, timedelta

import msgspec

from exchange.errors import BadRequest
from exchange.money import format_micros

MAX_DAYS = 366


class ReportRow(msgspec.Struct, kw_only=True):
    date: str
    impressions: int
    clicks: int
    spend: str
    ctr: float | None
    cpc: str | None
    invalid_removed: int
    invalid_by_reason: dict[str, int]
    attributed_sales: str | None = None
    roas: float | None = None


class CampaignReport(msgspec.Struct, kw_only=True):
    campaign_id: str
    from_: str = msgspec.field(name="from")
    to: str
    granularity: str
    rows: list[ReportRow]
    totals: ReportRow


def parse_range(raw_from: str | None, raw_to: str | None, today: date) -> tuple[date, date]:
    def day(raw: str | None, field: str, default: date) -> date:
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise BadRequest("expected a date YYYY-MM-DD", field=field) from None

    start = day(raw_from, "from", today)
    end = day(raw_to, "to", today)
    if end < start:
        raise BadRequest("'to' is before 'from'", field="to")
    if (end - start).days >= MAX_DAYS:
        raise BadRequest(f"at most {MAX_DAYS} days per report", field="to")
    return start, end


def _row(label: str, imps: int, clicks: int, spend: int, invalid: dict[str, int]) -> ReportRow:
    return ReportRow(
        date=label,
        impressions=imps,
        clicks=clicks,
        spend=format_micros(spend),
        ctr=round(clicks / imps, 6) if imps else None,
        cpc=format_micros(spend // clicks) if clicks else None,
        invalid_removed=sum(invalid.values()),
        invalid_by_reason=invalid,
    )


def build(public_id: str, counters: dict[str, int], start: date, end: date) -> CampaignReport:
    rows: list[ReportRow] = []
    total_imps = total_clicks = total_spend = 0
    total_invalid: dict[str, int] = {}
    invalid_by_day: dict[str, dict[str, int]] = {}
    for field, value in counters.items():
        if field.startswith("inv:"):
            _, reason, day = field.split(":", 2)
            invalid_by_day.setdefault(day, {})[reason] = value
    d = start
    while d <= end:
        key = d.strftime("%Y%m%d")
        imps = counters.get(f"n:impression:{key}", 0)
        clicks = counters.get(f"n:click:{key}", 0)
        spend = counters.get(f"d:{key}", 0)
        invalid = dict(sorted(invalid_by_day.get(key, {}).items()))
        rows.append(_row(d.isoformat(), imps, clicks, spend, invalid))
        total_imps += imps
        total_clicks += clicks
        total_spend += spend
        for reason, n in invalid.items():
            total_invalid[reason] = total_invalid.get(reason, 0) + n
        d += timedelta(days=1)
    return CampaignReport(
        campaign_id=public_id, from_=start.isoformat(), to=end.isoformat(), granularity="day",
        rows=rows,
        totals=_row("total", total_imps, total_clicks, total_spend,
                    dict(sorted(total_invalid.items()))),
    )
