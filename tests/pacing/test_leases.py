"""lease.lua against a real Redis: grants keep spent + in-flight + leases within budget."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pacing.leases import LeaseBook, LeaseRequest
from pacing.ledger import Ledger

DAY = "20261123"
T0 = 1_795_000_000_000  # a fixed "now" (ms); the scripts take time as an argument
WINDOW = 600_000


def _book(client: aioredis.Redis, worker: str) -> LeaseBook:
    return LeaseBook(client, worker, lease_ttl_ms=10_000, window_ms=WINDOW)


def _req(consumed: int, want: int, daily: int = 1_000, total: int = 0, day: str = DAY,
         campaign_id: int = 7) -> LeaseRequest:
    return LeaseRequest(campaign_id, consumed, want, daily, total, day)


async def test_grant_is_capped_by_what_is_left(redis_async: aioredis.Redis) -> None:
    a, b = _book(redis_async, "a"), _book(redis_async, "b")
    (ra,) = await a.renew([_req(0, 700)], T0)
    assert ra.held == 700
    (rb,) = await b.renew([_req(0, 700)], T0)
    assert (rb.held, rb.others) == (300, 700)  # only what a does not hold
    (rb2,) = await b.renew([_req(0, 700)], T0)
    assert rb2.held == 300  # nothing more to give


async def test_consumption_moves_to_in_flight_and_leaves_room_for_nobody_else(
        redis_async: aioredis.Redis) -> None:
    a, b = _book(redis_async, "a"), _book(redis_async, "b")
    await a.renew([_req(0, 600)], T0)
    (ra,) = await a.renew([_req(450, 600)], T0 + 1_000)
    # 450 committed is in flight; a is topped up to 550 (1000 - 450), not back to 600.
    assert (ra.in_flight, ra.held, ra.committed_today) == (450, 550, 450)
    (rb,) = await b.renew([_req(0, 500)], T0 + 1_000)
    assert rb.held == 0


async def test_in_flight_expires_after_the_window_and_billed_spend_counts_instead(
        redis_async: aioredis.Redis) -> None:
    a = _book(redis_async, "a")
    ledger = Ledger(redis_async, events_key="ev", events_maxlen=1000)
    await a.renew([_req(0, 500)], T0)
    await a.renew([_req(500, 0)], T0)  # all committed, lease returned
    await ledger.record(campaign_id=7, event_id="c1", kind="click", price_micros=300,
                        daily_budget_micros=1_000, total_budget_micros=0, day=DAY,
                        dedupe_ttl_s=60, event=b"{}")
    (during,) = await a.renew([_req(0, 1_000)], T0 + 1_000)
    assert during.held == 1_000 - 500 - 300  # billed and in flight both count (conservative)
    (after,) = await a.renew([_req(0, 1_000)], T0 + WINDOW + 120_000)
    assert (after.in_flight, after.held, after.spent_today) == (0, 700, 300)


async def test_a_dead_workers_lease_expires_into_in_flight(redis_async: aioredis.Redis) -> None:
    dead, alive = _book(redis_async, "dead"), _book(redis_async, "alive")
    await dead.renew([_req(0, 800)], T0)
    (before,) = await alive.renew([_req(0, 800)], T0 + 5_000)
    assert before.held == 200
    (after,) = await alive.renew([_req(0, 800)], T0 + 11_000)
    # The lost 800 is presumed committed: still reserved, now as in flight.
    assert (after.others, after.in_flight, after.held) == (0, 800, 200)
    (later,) = await alive.renew([_req(0, 800)], T0 + 11_000 + WINDOW + 60_000)
    assert later.held == 800


async def test_release_returns_the_allowance(redis_async: aioredis.Redis) -> None:
    a, b = _book(redis_async, "a"), _book(redis_async, "b")
    await a.renew([_req(0, 900)], T0)
    (gone,) = await a.renew([_req(100, 0)], T0)
    assert gone.held == 0
    (rb,) = await b.renew([_req(0, 900)], T0)
    assert rb.held == 900  # 1000 - 100 in flight


async def test_lifetime_budget_limits_too(redis_async: aioredis.Redis) -> None:
    a = _book(redis_async, "a")
    (r,) = await a.renew([_req(0, 5_000, daily=0, total=2_500)], T0)
    assert r.held == 2_500


async def test_a_new_day_forgets_yesterdays_leases(redis_async: aioredis.Redis) -> None:
    a, b = _book(redis_async, "a"), _book(redis_async, "b")
    await a.renew([_req(0, 1_000)], T0)
    (r,) = await b.renew([_req(0, 1_000, day="20261124")], T0 + 1_000)
    assert (r.held, r.others) == (1_000, 0)


async def test_many_campaigns_in_one_round_trip(redis_async: aioredis.Redis) -> None:
    a = _book(redis_async, "a")
    replies = await a.renew([_req(0, 10 * i, campaign_id=i) for i in range(1, 51)], T0)
    assert [r.held for r in replies] == [10 * i for i in range(1, 51)]


@pytest.mark.parametrize("bad", [
    LeaseRequest(1, -1, 0, 0, 0, DAY), LeaseRequest(1, 0, -5, 0, 0, DAY),
    LeaseRequest(1, 0, 0, -1, 0, DAY),
])
async def test_negative_amounts_are_refused_before_redis(redis_async: aioredis.Redis,
                                                         bad: LeaseRequest) -> None:
    with pytest.raises(ValueError):
        await _book(redis_async, "a").renew([bad], T0)
    assert await redis_async.dbsize() == 0
