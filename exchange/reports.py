"""Campaign and advertiser reports from incrementally maintained aggregates (no scan of
raw events).

Two sources, both kept up to date as events happen:

- the ledger: the spend hash of a campaign holds, per business day, what was billed
  (``d:``), how many impressions and clicks were recorded (``n:<kind>:``) and how many
  invalid events were removed, by reason (``inv:<reason>:``). Written in the same atomic
  step as the money, so the default day report (no breakdown) is exact and immediate;
- the rollup (``exchange/rollup.py``): per campaign and day, ``rp:{c<id>}:<YYYYMMDD>``
  holds wins, impressions, clicks, spend, position sum and invalid events by hour, SKU,
  placement, search term and invalid reason. Hour rows, breakdowns and average position
  come from it; it trails the event log by well under a second.

Attributed sales and ROAS stay ``null`` until attribution exists. Impression share is not
reported: it needs eligible-auction counts from the kernel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Literal

import msgspec
import numpy as np
import redis.asyncio as aioredis

from exchange import keys
from exchange.errors import BadRequest
from exchange.money import format_micros
from pacing.keys import spend_key

MAX_DAYS = 366
Granularity = Literal["day", "hour"]
Breakdown = Literal["sku", "keyword", "placement"]
Format = Literal["json", "csv"]
# Rollup field prefix of each breakdown (see rollup.lua).
_DIM = {"sku": b"k:", "keyword": b"t:", "placement": b"p:"}
_HOURS = [f"h:{h:02d}" for h in range(24)]
_ELIGIBLE = [f"e:{h:02d}" for h in range(24)]  # auctions the campaign was eligible for
# Aggregate values: wins, impressions, clicks, spend, position sum, invalid (the rollup's
# packed fields), then eligible auctions (the workers' ``e:<HH>`` counters).
A_WINS, A_IMPS, A_CLICKS, A_SPEND, A_POS, A_INVALID, A_ELIGIBLE = range(7)
N_AGG = 7


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
    hour: int | None = None               # granularity=hour: 0-23 in the campaign's zone
    key: str | None = None                # with a breakdown: the SKU, search term or placement
    wins: int | None = None               # auctions won (from the rollup)
    average_position: float | None = None  # mean slot + 1 over impressions (rollup)
    eligible: int | None = None           # auctions it was eligible for (hour/day rows)
    impression_share: float | None = None  # wins / eligible auctions


class CampaignReport(msgspec.Struct, kw_only=True):
    campaign_id: str
    from_: str = msgspec.field(name="from")
    to: str
    granularity: str
    rows: list[ReportRow]
    totals: ReportRow
    breakdown: str | None = None


class AdvertiserReport(msgspec.Struct, kw_only=True):
    """The same rows summed over the advertiser's campaigns (each in its own zone)."""

    advertiser_id: str
    campaign_ids: list[str]
    from_: str = msgspec.field(name="from")
    to: str
    granularity: str
    breakdown: str | None = None
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


def _row(label: str, imps: int, clicks: int, spend: int, invalid: dict[str, int],
         agg: Sequence[int] | None = None, *, removed: int | None = None,
         hour: int | None = None, key: str | None = None) -> ReportRow:
    return ReportRow(
        date=label,
        impressions=imps,
        clicks=clicks,
        spend=format_micros(spend),
        ctr=round(clicks / imps, 6) if imps else None,
        cpc=format_micros(spend // clicks) if clicks else None,
        invalid_removed=sum(invalid.values()) if removed is None else removed,
        invalid_by_reason=invalid,
        hour=hour,
        key=key,
        wins=agg[A_WINS] if agg is not None else None,
        average_position=(round(agg[A_POS] / agg[A_IMPS], 2)
                          if agg is not None and agg[A_IMPS] else None),
        eligible=agg[A_ELIGIBLE] if agg is not None and len(agg) > A_ELIGIBLE else None,
        impression_share=(round(min(1.0, agg[A_WINS] / agg[A_ELIGIBLE]), 4)
                          if agg is not None and len(agg) > A_ELIGIBLE and agg[A_ELIGIBLE]
                          else None),
    )


def build(public_id: str, counters: dict[str, int], start: date, end: date,
          hours: Mapping[str, list[list[int]]] | None = None) -> CampaignReport:
    """Day rows from the ledger's counters; ``hours`` (the rollup's, by day) adds wins and
    average position."""
    rows: list[ReportRow] = []
    total_imps = total_clicks = total_spend = 0
    total_invalid: dict[str, int] = {}
    total_agg = [0] * N_AGG
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
        agg = _sum(hours[key]) if hours is not None and key in hours else (
            [0] * N_AGG if hours is not None else None)
        if agg is not None:
            _add(total_agg, agg)
        rows.append(_row(d.isoformat(), imps, clicks, spend, invalid, agg))
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
                    dict(sorted(total_invalid.items())),
                    total_agg if hours is not None else None),
    )


# --- parameters ---------------------------------------------------------------------------


class Params(msgspec.Struct, kw_only=True, frozen=True):
    start: date
    end: date
    granularity: Granularity = "day"
    breakdown: Breakdown | None = None
    format: Format = "json"

    @property
    def days(self) -> list[str]:
        n = (self.end - self.start).days + 1
        return [(self.start + timedelta(days=i)).strftime("%Y%m%d") for i in range(n)]


def _choice(query: Mapping[str, str], field: str, allowed: Iterable[str],
            default: str | None) -> str | None:
    raw = query.get(field)
    if raw is None:
        return default
    if raw not in allowed:
        raise BadRequest(f"{field} must be one of {', '.join(allowed)}", field=field)
    return raw


def parse_params(query: Mapping[str, str], today: date) -> Params:
    """The report's query parameters; a 400 naming the field for anything else."""
    granularity = _choice(query, "granularity", ("day", "hour"), "day")
    breakdown = _choice(query, "breakdown", tuple(_DIM), None)
    fmt = _choice(query, "format", ("json", "csv"), "json")
    start, end = parse_range(query.get("from"), query.get("to"), today)
    if breakdown is not None and granularity != "day":
        raise BadRequest("a breakdown sums over the range: use granularity=day",
                         field="breakdown")
    return Params(start=start, end=end, granularity=granularity,  # type: ignore[arg-type]
                  breakdown=breakdown, format=fmt)  # type: ignore[arg-type]


# --- reading the aggregates ---------------------------------------------------------------


def _parse(value: bytes | None) -> list[int]:
    return [int(x) for x in value.split()] if value else [0] * 6


def _add(acc: list[int], more: Sequence[int]) -> None:
    for i in range(len(more)):
        acc[i] += more[i]


def _sum(rows: Iterable[Sequence[int]]) -> list[int]:
    acc = [0] * N_AGG
    for r in rows:
        _add(acc, r)
    return acc


async def hours(client: aioredis.Redis, campaign_ids: Sequence[int], days: Sequence[str]
                ) -> dict[str, list[list[int]]]:
    """``{YYYYMMDD: 24 hour rows}`` summed over the campaigns, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        for cid in campaign_ids:
            for day in days:
                pipe.hmget(keys.rollup_day(cid, day), _HOURS + _ELIGIBLE)
        replies: list[list[bytes | None]] = await pipe.execute()
    out: dict[str, list[list[int]]] = {}
    it = iter(replies)
    for _ in campaign_ids:
        for day in days:
            reply = next(it)
            if not any(reply):
                continue
            acc = out.setdefault(day, [[0] * N_AGG for _ in range(24)])
            for h, value in enumerate(reply[:24]):
                if value:
                    _add(acc[h], _parse(value))
            for h, value in enumerate(reply[24:]):
                if value:
                    acc[h][A_ELIGIBLE] += int(value)
    return out


async def by_dimension(client: aioredis.Redis, campaign_ids: Sequence[int],
                       days: Sequence[str], breakdown: Breakdown) -> dict[str, list[int]]:
    """``{value: totals}`` of one breakdown over the days and campaigns (one round trip)."""
    prefix = _DIM[breakdown]
    async with client.pipeline(transaction=False) as pipe:
        for cid in campaign_ids:
            for day in days:
                pipe.hgetall(keys.rollup_day(cid, day))
        replies: list[dict[bytes, bytes]] = await pipe.execute()
    # Vectorised: a 30-day report by SKU folds ~30,000 fields; a Python loop per field
    # and per metric was most of its time.
    names: list[bytes] = []
    values: list[bytes] = []
    for reply in replies:
        picked = [(f, v) for f, v in reply.items() if f.startswith(prefix)]
        names.extend(f for f, _ in picked)
        values.extend(v for _, v in picked)
    if not names:
        return {}
    table = np.fromstring(b" ".join(values), dtype=np.int64, sep=" ").reshape(-1, 6)
    slots: dict[bytes, int] = {}
    codes = np.fromiter((slots.setdefault(n, len(slots)) for n in names), dtype=np.intp,
                        count=len(names))
    sums = np.zeros((len(slots), 6), dtype=np.int64)
    np.add.at(sums, codes, table)
    return {name[2:].decode(errors="replace"): row
            for name, row in zip(slots, sums.tolist(), strict=True)}


async def ledger_counters(client: aioredis.Redis, campaign_ids: Sequence[int]
                          ) -> list[dict[str, int]]:
    """The ledger's spend-hash counters of each campaign, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        for cid in campaign_ids:
            pipe.hgetall(spend_key(cid))
        replies: list[dict[bytes, bytes]] = await pipe.execute()
    return [{k.decode(): int(v) for k, v in r.items()} for r in replies]


def merge_counters(many: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Ledger counters of several campaigns summed field by field (all are additive)."""
    out: dict[str, int] = {}
    for counters in many:
        for field, n in counters.items():
            out[field] = out.get(field, 0) + n
    return out


# --- rows ---------------------------------------------------------------------------------


def _agg_row(label: str, agg: Sequence[int], *, hour: int | None = None,
             key: str | None = None) -> ReportRow:
    return _row(label, agg[A_IMPS], agg[A_CLICKS], agg[A_SPEND], {}, agg,
                removed=agg[A_INVALID], hour=hour, key=key)


def hour_rows(params: Params, by_day: Mapping[str, list[list[int]]]
              ) -> tuple[list[ReportRow], ReportRow]:
    """24 rows per day of the range (hour in the campaign's zone), and their total."""
    rows: list[ReportRow] = []
    total = [0] * N_AGG
    empty = [0] * N_AGG
    for i, day in enumerate(params.days):
        label = (params.start + timedelta(days=i)).isoformat()
        hours_of = by_day.get(day)
        for h in range(24):
            agg = hours_of[h] if hours_of is not None else empty
            _add(total, agg)
            rows.append(_agg_row(label, agg, hour=h))
    return rows, _agg_row("total", total)


def breakdown_rows(params: Params, by_value: Mapping[str, list[int]]
                   ) -> tuple[list[ReportRow], ReportRow]:
    """One row per value over the whole range, biggest spend first, and their total."""
    label = f"{params.start.isoformat()}/{params.end.isoformat()}"
    ordered = sorted(by_value.items(), key=lambda kv: (-kv[1][A_SPEND], -kv[1][A_IMPS], kv[0]))
    return ([_agg_row(label, agg, key=value) for value, agg in ordered],
            _agg_row("total", _sum(by_value.values())[:A_ELIGIBLE]))  # not by value


# --- CSV ----------------------------------------------------------------------------------

CSV_COLUMNS = ("date", "hour", "key", "wins", "impressions", "clicks", "spend", "ctr", "cpc",
               "average_position", "eligible", "impression_share", "invalid_removed")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # Spreadsheets run cells starting with these as formulas (a SKU is the advertiser's).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_csv(rows: Iterable[ReportRow]) -> bytes:
    """The rows as CSV with a header row (totals are left to the spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(getattr(row, c)) for c in CSV_COLUMNS])
    return out.getvalue().encode()
