"""The spend ledger: every billed event moves money exactly once, even when retried.

One Lua script (``bill.lua``) does the whole charge atomically in Redis: mark the event
id seen (``SET NX EX``), cap the price at what the daily and lifetime budgets have left,
add it to the campaign's spend hash and append the event to a bounded stream. A beacon
retried after a timeout hits the marker and charges nothing, so callers may retry freely.
Because the check and the increment happen in one script, many workers billing the same
campaign concurrently can never overspend it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis

from pacing.errors import InvalidCharge
from pacing.keys import TOTAL_FIELD, billed_key, day_field, spend_key

__all__ = ["BillResult", "Ledger", "Mismatch"]

BILL_LUA = files("pacing").joinpath("bill.lua").read_text()

# Redis Lua numbers are doubles; above 2**53 integer micro-units would lose precision.
MAX_MICROS = 2**53
_DAY = re.compile(r"\d{8}")
_KIND = re.compile(r"[a-z0-9_]{1,32}")
_SPEND_KEY = re.compile(rb"pc:\{c(\d+)\}:spend")
_PAGE = 1000


# Why bill.lua refused an event that was not a duplicate (its status 2 and 3).
SEQUENCE_REASONS = {2: "without_prerequisite", 3: "too_soon_after_prerequisite"}


@dataclass(frozen=True, slots=True)
class BillResult:
    recorded: bool  # False: a duplicate event id or an impossible sequence; nothing billed
    charged_micros: int  # what this event cost; below the price when a budget ran out
    spend_today_micros: int
    spend_total_micros: int
    exhausted: bool  # a budget is spent: stop serving this campaign
    refused: str = ""  # "" or a SEQUENCE_REASONS value (not a duplicate: never seen before)


@dataclass(frozen=True, slots=True)
class Mismatch:
    campaign_id: int
    ledger_micros: int  # ``d:<day>`` in the spend hash
    events_micros: int  # sum of ``c`` over that day's stream entries


class Ledger:
    """Bills events against campaign budgets in Redis.

    Works with either ``decode_responses`` setting, except that ``reconcile`` needs raw
    bytes replies when the stored ``event`` payloads are not UTF-8.
    """

    def __init__(self, client: aioredis.Redis, *, events_key: str, events_maxlen: int) -> None:
        if events_maxlen <= 0:
            raise ValueError(f"events_maxlen must be positive, got {events_maxlen}")
        self._client = client
        self._events_key = events_key
        self._events_maxlen = events_maxlen
        # EVALSHA, falling back to loading the script once if the server lost it.
        self._bill = client.register_script(BILL_LUA)

    @property
    def events_key(self) -> str:
        return self._events_key

    async def record(
        self,
        *,
        campaign_id: int,
        event_id: str,
        kind: str,
        price_micros: int,
        daily_budget_micros: int,
        total_budget_micros: int,
        day: str,
        dedupe_ttl_s: int,
        event: bytes,
        requires_event_id: str | None = None,
        min_delay_ms: int = 0,
        now_ms: int | None = None,
    ) -> BillResult:
        """Charge ``price_micros`` for ``event_id`` unless it was billed already.

        Budgets of 0 mean "no limit". The charge is capped at what is left, so it may be
        below the price (or 0); the event is still recorded and counted.

        With ``requires_event_id`` (same campaign), the event is refused unless that one
        was recorded at least ``min_delay_ms`` before ``now_ms``: a click needs its
        impression, and not a bot-fast one. A refused event is marked seen, never billed.
        """
        if now_ms is None:
            now_ms = time.time_ns() // 1_000_000
        if not 0 <= min_delay_ms <= 86_400_000:
            raise InvalidCharge(f"min_delay_ms must be in 0..86400000, got {min_delay_ms}")
        _check(campaign_id, event_id, kind, day, dedupe_ttl_s)
        for name, value in (
            ("price_micros", price_micros),
            ("daily_budget_micros", daily_budget_micros),
            ("total_budget_micros", total_budget_micros),
        ):
            if not 0 <= value <= MAX_MICROS:
                raise InvalidCharge(f"{name} must be in 0..{MAX_MICROS}, got {value}")
        keys = [billed_key(campaign_id, event_id), spend_key(campaign_id), self._events_key]
        if requires_event_id is not None:
            keys.append(billed_key(campaign_id, requires_event_id))
        reply = await self._bill(
            keys=keys,
            args=[
                kind,
                price_micros,
                daily_budget_micros,
                total_budget_micros,
                day,
                dedupe_ttl_s,
                event,
                self._events_maxlen,
                campaign_id,
                now_ms,
                min_delay_ms,
            ],
        )
        status, charged, today, total, exhausted = reply
        return BillResult(
            recorded=status == 1,
            refused=SEQUENCE_REASONS.get(int(status), ""),
            charged_micros=int(charged),
            spend_today_micros=int(today),
            spend_total_micros=int(total),
            exhausted=bool(exhausted),
        )

    async def count_invalid(self, campaign_id: int, reason: str, day: str) -> None:
        """Count an invalid (never billed) event of the campaign, by reason, in its day
        counters: reports show what was removed beside what was billed."""
        _check(campaign_id, "-", "invalid", day, 1)
        if not _KIND.fullmatch(reason):
            raise InvalidCharge(f"reason must match {_KIND.pattern}, got {reason!r}")
        await self._client.hincrby(spend_key(campaign_id), f"inv:{reason}:{day}", 1)

    async def counters(self, campaign_id: int) -> dict[str, int]:
        """Every counter of the campaign's spend hash (``d:``, ``n:``, ``charged:``, ``inv:``
        fields and ``total``), for reports."""
        raw = await self._client.hgetall(spend_key(campaign_id))
        return {_b(k).decode(): int(v) for k, v in raw.items()}

    async def spend(self, campaign_ids: Sequence[int], day: str) -> dict[int, tuple[int, int]]:
        """``{campaign_id: (spend on day, lifetime spend)}`` in one round trip."""
        if not campaign_ids:
            return {}
        field = day_field(day)
        async with self._client.pipeline(transaction=False) as pipe:
            for campaign_id in campaign_ids:
                pipe.hmget(spend_key(campaign_id), [field, TOTAL_FIELD])
            replies = await pipe.execute()
        return {
            campaign_id: (int(today or 0), int(total or 0))
            for campaign_id, (today, total) in zip(campaign_ids, replies, strict=True)
        }

    async def reconcile(self, day: str) -> list[Mismatch]:
        """Campaigns whose ledger spend on ``day`` differs from the events stream's sum.

        An audit, not a hot-path call: it reads the whole stream and scans for spend
        hashes. Only meaningful while the stream has not been trimmed past ``day``.
        """
        if not _DAY.fullmatch(day):
            raise InvalidCharge(f"day must be YYYYMMDD, got {day!r}")
        day_b = day.encode()
        from_events: dict[int, int] = {}
        start = "-"
        while True:
            page = await self._client.xrange(self._events_key, min=start, max="+", count=_PAGE)
            for _, fields in page:
                fields_b = {_b(k): v for k, v in fields.items()}
                # Entries other writers share the stream with (e.g. wins) carry no charge.
                if b"d" not in fields_b or _b(fields_b[b"d"]) != day_b:
                    continue
                campaign_id = int(fields_b[b"cid"])
                from_events[campaign_id] = from_events.get(campaign_id, 0) + int(fields_b[b"c"])
            if len(page) < _PAGE:
                break
            start = "(" + _b(page[-1][0]).decode()

        campaign_ids = set(from_events)
        async for key in self._client.scan_iter(match="pc:{c*}:spend", count=1000):
            found = _SPEND_KEY.fullmatch(_b(key))
            if found:
                campaign_ids.add(int(found[1]))
        ordered = sorted(campaign_ids)
        from_ledger = await self.spend(ordered, day)
        return [
            Mismatch(campaign_id, from_ledger[campaign_id][0], from_events.get(campaign_id, 0))
            for campaign_id in ordered
            if from_ledger[campaign_id][0] != from_events.get(campaign_id, 0)
        ]


def _check(campaign_id: int, event_id: str, kind: str, day: str, dedupe_ttl_s: int) -> None:
    if not 0 <= campaign_id < 2**32:
        raise InvalidCharge(f"campaign_id out of range: {campaign_id}")
    if not event_id:
        raise InvalidCharge("event_id must not be empty")
    # Kind and day become hash field names; keep them free of the ':' separator.
    if not _KIND.fullmatch(kind):
        raise InvalidCharge(f"kind must match {_KIND.pattern}, got {kind!r}")
    if not _DAY.fullmatch(day):
        raise InvalidCharge(f"day must be YYYYMMDD, got {day!r}")
    if dedupe_ttl_s <= 0:
        raise InvalidCharge(f"dedupe_ttl_s must be positive, got {dedupe_ttl_s}")


def _b(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)
