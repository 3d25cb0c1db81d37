"""Shopper state: parsing, calendar buckets of frequency caps, and the two scripts
(``exposure.lua``, ``purchase.lua``) against the real Redis."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import redis
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import keys
from exchange.shoppers import CAP_UNITS, PRUNE_ABOVE, ShopperStore, ZoneClock, parse_state

NY = ZoneInfo("America/New_York")


def _s(y: int, mo: int, d: int, h: int = 0, zone: ZoneInfo = NY) -> int:
    return int(datetime(y, mo, d, h, tzinfo=zone).timestamp())


def test_parse_state_reads_each_kind_and_skips_junk() -> None:
    flat = [b"s:vegan", b"1", b"b:12", b"1700000000", b"x:12", b"3 1 5 4",
            b"f:7", b"2940 2", b"b:oops", b"1", b"f:8", b"garbage", b"zz", b"1"]
    st_ = parse_state(flat)
    assert st_.segments == ["vegan"]
    assert st_.purchases == {12: 1_700_000_000}
    assert st_.exposures == {12: 3}
    assert st_.caps == {7: (2940, 2)}
    assert parse_state(None).segments == [] and parse_state({b"s:a": b"1"}).segments == ["a"]


def test_day_and_week_buckets_follow_the_retailers_calendar() -> None:
    clock = ZoneClock(NY)
    day, week = CAP_UNITS["day"], CAP_UNITS["week"]
    # 23:30 and 00:30 local are different days, though the same UTC day.
    assert clock.bucket(_s(2026, 11, 23, 23) + 1800, day) + 1 == \
        clock.bucket(_s(2026, 11, 24, 0) + 1800, day)
    # Sunday night and Monday morning: a new week (weeks start on Monday).
    assert clock.bucket(_s(2026, 11, 22, 23), week) + 1 == clock.bucket(_s(2026, 11, 23, 1), week)
    assert clock.bucket(_s(2026, 11, 23, 1), week) == clock.bucket(_s(2026, 11, 29, 22), week)
    # Across the DST change (Nov 1 2026) the local day still starts at local midnight.
    fresh = ZoneClock(NY)
    assert fresh.bucket(_s(2026, 11, 1, 0) + 60, day) == fresh.bucket(_s(2026, 11, 1, 23), day)


@given(st.integers(min_value=1_600_000_000, max_value=2_000_000_000))
@settings(max_examples=300, deadline=None)
def test_a_bucket_is_the_local_calendar_unit(now_s: int) -> None:
    local = datetime.fromtimestamp(now_s, tz=NY)
    clock = ZoneClock(NY)
    assert clock.bucket(now_s, CAP_UNITS["day"]) == local.toordinal() - 719_163
    monday = local.toordinal() - local.weekday()
    assert clock.bucket(now_s, CAP_UNITS["week"]) == (monday - 719_163 + 3) // 7


async def test_exposure_counts_caps_and_notifies_once_per_cycle(
        redis_async: aioredis.Redis, redis_sync: redis.Redis) -> None:
    store = ShopperStore(redis_async)
    now = 1_800_000_000_000
    got = [await store.record_exposure("A", 5, 9, "i", now + i, cap_unit_s=86_400,
                                       cap_bucket=100, notify_at=3) for i in range(4)]
    assert got == [0, 0, 3, 0]
    hot = redis_sync.hgetall(keys.shopper("A"))
    assert hot[b"f:9"] == b"100 4"
    assert hot[b"x:5"] == f"4 0 {now + 3} {now}".encode()
    # A new bucket starts the count again; a click counts as a click, not an impression.
    await store.record_exposure("A", 5, 9, "i", now + 10, cap_unit_s=86_400, cap_bucket=101)
    await store.record_exposure("A", 5, 9, "c", now + 11)
    hot = redis_sync.hgetall(keys.shopper("A"))
    assert hot[b"f:9"] == b"101 1"
    assert hot[b"x:5"] == f"5 1 {now + 11} {now}".encode()
    assert redis_sync.hget(keys.shopper_exposures("A"), "5:9") == f"5 1 {now + 11} {now}".encode()
    # A purchase after the cycle began: the next impression starts a new one, which can
    # notify again at its own third impression.
    await store.record_purchases({"A": [(5, (now + 20) // 1000 + 1)]})
    got = [await store.record_exposure("A", 5, 9, "i", now + 5000 + i, notify_at=3)
           for i in range(3)]
    assert got == [0, 0, 3]
    assert redis_sync.hget(keys.shopper("A"), "x:5").split()[0] == b"3"
    assert redis_sync.ttl(keys.shopper("A")) > 300 * 86_400


async def test_purchases_keep_the_latest_time(redis_async: aioredis.Redis,
                                              redis_sync: redis.Redis) -> None:
    store = ShopperStore(redis_async)
    await store.record_purchases({"B": [(1, 2000), (2, 1000)]})
    await store.record_purchases({"B": [(1, 1500), (2, 3000)]})  # late-arriving older line
    hot = redis_sync.hgetall(keys.shopper("B"))
    assert (hot[b"b:1"], hot[b"b:2"]) == (b"2000", b"3000")


async def test_the_hash_is_pruned_past_its_bound(redis_async: aioredis.Redis,
                                                 redis_sync: redis.Redis) -> None:
    store = ShopperStore(redis_async)
    key = keys.shopper("C")
    old = {f"x:{pid}": "1 0 1000 1000" for pid in range(PRUNE_ABOVE + 50)}  # seen in 1970
    redis_sync.hset(key, mapping={**old, "s:vegan": "1", "b:7": "100"})
    await store.record_exposure("C", 99_999, 1, "i", 1_800_000_000_000)
    left = {f.decode() for f in redis_sync.hkeys(key)}
    assert left == {"s:vegan", "x:99999"}  # stale exposures and purchase gone, segment kept
