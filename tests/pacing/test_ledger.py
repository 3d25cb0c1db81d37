"""The spend ledger against a real Redis: exactly-once charges, budget caps, the stream."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from pacing.errors import InvalidCharge
from pacing.keys import billed_key, spend_key
from pacing.ledger import BillResult, Ledger, Mismatch

DAY = "20260509"
EVENTS = "ev:billed"


@pytest.fixture
def ledger(redis_async: aioredis.Redis) -> Ledger:
    return Ledger(redis_async, events_key=EVENTS, events_maxlen=100_000)


async def _record(
    ledger: Ledger,
    event_id: str,
    price: int,
    *,
    campaign_id: int = 7,
    kind: str = "click",
    daily: int = 0,
    total: int = 0,
    day: str = DAY,
) -> BillResult:
    return await ledger.record(
        campaign_id=campaign_id,
        event_id=event_id,
        kind=kind,
        price_micros=price,
        daily_budget_micros=daily,
        total_budget_micros=total,
        day=day,
        dedupe_ttl_s=3600,
        event=b"\x00payload:" + event_id.encode(),
    )


async def test_first_record_charges(ledger: Ledger, redis_async: aioredis.Redis) -> None:
    result = await _record(ledger, "e1", 850_000, daily=10_000_000, total=100_000_000)
    assert result == BillResult(True, 850_000, 850_000, 850_000, False)
    entries = await redis_async.xrange(EVENTS)
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields == {
        b"k": b"click",
        b"e": b"\x00payload:e1",
        b"c": b"850000",
        b"p": b"850000",
        b"cid": b"7",
        b"d": DAY.encode(),
    }


async def test_duplicate_charges_nothing(ledger: Ledger, redis_async: aioredis.Redis) -> None:
    await _record(ledger, "e1", 850_000)
    again = await _record(ledger, "e1", 850_000)
    assert again == BillResult(False, 0, 850_000, 850_000, False)
    assert await redis_async.xlen(EVENTS) == 1
    assert await ledger.spend([7], DAY) == {7: (850_000, 850_000)}


async def test_same_event_id_on_another_campaign_is_billed(ledger: Ledger) -> None:
    await _record(ledger, "e1", 100)
    other = await _record(ledger, "e1", 100, campaign_id=8)
    assert other.recorded


async def test_charge_capped_at_daily_remaining(ledger: Ledger) -> None:
    await _record(ledger, "e1", 700, daily=1_000)
    capped = await _record(ledger, "e2", 700, daily=1_000)
    assert (capped.recorded, capped.charged_micros, capped.spend_today_micros) == (True, 300, 1_000)
    assert capped.exhausted
    after = await _record(ledger, "e3", 700, daily=1_000)
    assert (after.recorded, after.charged_micros, after.exhausted) == (True, 0, True)
    # The next day starts a fresh daily budget; lifetime spend carries on.
    tomorrow = await _record(ledger, "e4", 700, daily=1_000, day="20260510")
    assert (tomorrow.charged_micros, tomorrow.spend_today_micros) == (700, 700)
    assert tomorrow.spend_total_micros == 1_700


async def test_charge_capped_at_total_remaining(ledger: Ledger) -> None:
    await _record(ledger, "e1", 700, total=1_000, day="20260508")
    capped = await _record(ledger, "e2", 700, total=1_000)
    assert (capped.charged_micros, capped.spend_today_micros, capped.spend_total_micros) == (
        300,
        300,
        1_000,
    )
    assert capped.exhausted


async def test_lowered_budget_never_charges_negative(ledger: Ledger) -> None:
    await _record(ledger, "e1", 900, daily=1_000)
    result = await _record(ledger, "e2", 900, daily=500)
    assert (result.charged_micros, result.spend_today_micros, result.exhausted) == (0, 900, True)


async def test_exhausted_only_when_budget_reached(ledger: Ledger) -> None:
    assert not (await _record(ledger, "e1", 999, daily=1_000)).exhausted
    assert (await _record(ledger, "e2", 1, daily=1_000)).exhausted


async def test_kind_counters(ledger: Ledger, redis_async: aioredis.Redis) -> None:
    await _record(ledger, "c1", 500, kind="click")
    await _record(ledger, "c2", 300, kind="click")
    await _record(ledger, "c2", 300, kind="click")  # duplicate: not counted
    await _record(ledger, "i1", 2, kind="imp")
    spend = await redis_async.hgetall(spend_key(7))
    assert spend == {
        f"d:{DAY}".encode(): b"802",
        b"total": b"802",
        f"n:click:{DAY}".encode(): b"2",
        f"charged:click:{DAY}".encode(): b"800",
        f"n:imp:{DAY}".encode(): b"1",
        f"charged:imp:{DAY}".encode(): b"2",
    }


async def test_dedupe_marker_has_ttl(ledger: Ledger, redis_async: aioredis.Redis) -> None:
    await _record(ledger, "e1", 100)
    ttl = await redis_async.ttl(billed_key(7, "e1"))
    assert 3590 < ttl <= 3600
    assert await redis_async.ttl(spend_key(7)) == -1


async def test_keys_share_the_campaign_hash_tag() -> None:
    assert spend_key(7) == "pc:{c7}:spend"
    assert billed_key(7, "abc") == "pc:{c7}:seen:abc"


async def test_spend_of_unknown_campaigns_is_zero(ledger: Ledger) -> None:
    await _record(ledger, "e1", 100, campaign_id=1)
    assert await ledger.spend([1, 2], DAY) == {1: (100, 100), 2: (0, 0)}
    assert await ledger.spend([], DAY) == {}


async def test_large_amounts_stay_exact(ledger: Ledger) -> None:
    big = 10**15 + 1
    result = await _record(ledger, "e1", big)
    assert (result.charged_micros, result.spend_total_micros) == (big, big)
    assert await ledger.reconcile(DAY) == []


async def test_concurrent_records_never_overspend(
    redis_url: str, redis_async: aioredis.Redis
) -> None:
    # redis-py's asyncio pool stops at 100 connections by default; allow all 200 in flight.
    client = aioredis.Redis.from_url(redis_url, max_connections=256)
    ledger = Ledger(client, events_key=EVENTS, events_maxlen=100_000)
    daily = 25_000
    # 200 calls over 120 distinct events (80 retries), each priced 300: budget runs out midway.
    calls = [_record(ledger, f"e{i % 120}", 300, daily=daily, total=40_000) for i in range(200)]
    try:
        results = await asyncio.gather(*calls)
    finally:
        await client.aclose()
    ledger = Ledger(redis_async, events_key=EVENTS, events_maxlen=100_000)
    recorded = [r for r in results if r.recorded]
    assert len(recorded) == 120
    assert sum(r.charged_micros for r in results) == daily
    assert await ledger.spend([7], DAY) == {7: (daily, daily)}
    assert await redis_async.xlen(EVENTS) == 120
    stream_sum = sum(int(fields[b"c"]) for _, fields in await redis_async.xrange(EVENTS))
    assert stream_sum == daily
    assert await ledger.reconcile(DAY) == []


async def test_reconcile_pages_and_finds_mismatch(
    ledger: Ledger, redis_async: aioredis.Redis
) -> None:
    for i in range(2_100):  # more than two XRANGE pages
        await _record(ledger, f"e{i}", 1, campaign_id=i % 3)
    await _record(ledger, "other-day", 5, campaign_id=0, day="20260508")
    assert await ledger.reconcile(DAY) == []
    # Money moved outside the script: the audit must catch it, and a ledger-only campaign too.
    await redis_async.hincrby(spend_key(1), f"d:{DAY}", 10)
    await redis_async.hincrby(spend_key(9), f"d:{DAY}", 4)
    assert await ledger.reconcile(DAY) == [Mismatch(1, 710, 700), Mismatch(9, 4, 0)]


async def test_script_survives_script_flush(ledger: Ledger, redis_async: aioredis.Redis) -> None:
    await _record(ledger, "e1", 100)
    await redis_async.script_flush()
    assert (await _record(ledger, "e2", 100)).recorded


@pytest.mark.parametrize(
    "overrides",
    [
        {"price_micros": -1},
        {"daily_budget_micros": -5},
        {"total_budget_micros": 2**60},
        {"day": "2026-05-09"},
        {"kind": "cl:ick"},
        {"event_id": ""},
        {"dedupe_ttl_s": 0},
        {"campaign_id": -1},
    ],
)
async def test_invalid_charges_touch_nothing(
    ledger: Ledger, redis_async: aioredis.Redis, overrides: dict[str, object]
) -> None:
    args: dict[str, object] = {
        "campaign_id": 7,
        "event_id": "e1",
        "kind": "click",
        "price_micros": 100,
        "daily_budget_micros": 0,
        "total_budget_micros": 0,
        "day": DAY,
        "dedupe_ttl_s": 60,
        "event": b"",
    } | overrides
    with pytest.raises(InvalidCharge):
        await ledger.record(**args)  # type: ignore[arg-type]
    assert await redis_async.dbsize() == 0


async def test_click_needs_its_impression_first(ledger: Ledger,
                                                redis_async: aioredis.Redis) -> None:
    common = dict(campaign_id=9, kind="click", price_micros=500_000, daily_budget_micros=0,
                  total_budget_micros=0, day="20260101", dedupe_ttl_s=60, event=b"{}",
                  min_delay_ms=1000)
    orphan = await ledger.record(event_id="a:c", requires_event_id="a:i", now_ms=5000, **common)
    assert not orphan.recorded and orphan.refused == "without_prerequisite"
    assert orphan.charged_micros == 0
    # The refused click is marked seen: a retry after the impression is a duplicate.
    await ledger.record(campaign_id=9, event_id="a:i", kind="impression", price_micros=0,
                        daily_budget_micros=0, total_budget_micros=0, day="20260101",
                        dedupe_ttl_s=60, event=b"{}", now_ms=6000)
    retry = await ledger.record(event_id="a:c", requires_event_id="a:i", now_ms=9000, **common)
    assert not retry.recorded and retry.refused == ""

    await ledger.record(campaign_id=9, event_id="b:i", kind="impression", price_micros=0,
                        daily_budget_micros=0, total_budget_micros=0, day="20260101",
                        dedupe_ttl_s=60, event=b"{}", now_ms=10_000)
    fast = await ledger.record(event_id="b:c", requires_event_id="b:i", now_ms=10_500, **common)
    assert not fast.recorded and fast.refused == "too_soon_after_prerequisite"
    await ledger.record(campaign_id=9, event_id="c:i", kind="impression", price_micros=0,
                        daily_budget_micros=0, total_budget_micros=0, day="20260101",
                        dedupe_ttl_s=60, event=b"{}", now_ms=20_000)
    ok = await ledger.record(event_id="c:c", requires_event_id="c:i", now_ms=21_000, **common)
    assert ok.recorded and ok.charged_micros == 500_000 and ok.refused == ""
    assert await ledger.spend([9], "20260101") == {9: (500_000, 500_000)}
    assert await ledger.reconcile("20260101") == []
