"""Budget safety under any interleaving of lease, serve, bill, report, crash and time.

Workers run the real ``Allowances`` logic against the real ``lease.lua`` and bill through
the real ``bill.lua``. Costs are deterministic here (every served ad is billed its price,
as for cost-per-impression), so the bound is exact: the ledger never bills more than the
budget, and what was *delivered* (billed or not) exceeds it by at most one price per
worker incarnation (an allowance can go negative by one serve before the gate closes).
"""

from __future__ import annotations

import itertools

import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pacing.allowance import Allowances, Budget
from pacing.leases import LeaseBook
from pacing.ledger import Ledger

CID = 11
DAY = "20261123"
T0 = 1_795_000_000_000
PRICES = (40, 90, 150)

# (op, worker or index or ms, price, burst); serves and renewals come up most often.
ops = st.lists(st.tuples(
    st.sampled_from(["serve", "serve", "serve", "renew", "renew", "report", "bill", "crash",
                     "tick"]),
    st.integers(0, 12_000),
    st.sampled_from(PRICES),
    st.integers(1, 20),
), max_size=60)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, budget=st.integers(min_value=100, max_value=1_500))
@example(ops=[("renew", 0, 0, 0), ("renew", 1, 0, 0), ("serve", 0, 150, 20),
              ("serve", 1, 150, 20)], budget=1_000)  # two workers, one budget
@example(ops=[("renew", 0, 0, 0), ("serve", 0, 150, 6), ("crash", 0, 0, 0),
              ("tick", 3_900, 0, 0), ("tick", 3_900, 0, 0), ("tick", 3_900, 0, 0),
              ("renew", 1, 0, 0), ("serve", 1, 150, 20)], budget=1_000)  # a worker dies
async def test_no_interleaving_overspends(
        redis_async: aioredis.Redis, ops: list[tuple[str, int, int, int]], budget: int) -> None:
    await redis_async.flushdb()
    ledger = Ledger(redis_async, events_key="ev", events_maxlen=100_000)
    names = itertools.count()
    now = T0

    def worker() -> tuple[LeaseBook, Allowances]:
        book = LeaseBook(redis_async, f"w{next(names)}", lease_ttl_ms=10_000, window_ms=600_000)
        allowances = Allowances(prior_ctr=1.0)  # expected cost == price: deterministic
        allowances.set_budgets([Budget(CID, budget, 0, max(PRICES))])
        return book, allowances

    workers = [worker() for _ in range(3)]
    incarnations = 3
    pending: list[tuple[str, int]] = []  # served, not yet billed: (event id, price)
    serial = itertools.count()
    delivered = billed = 0

    async def renew(i: int, everything: bool) -> None:
        book, allowances = workers[i]
        requests = allowances.requests({CID: DAY}, everything=everything, now_ms=now)
        allowances.apply(requests, await book.renew(requests, now))

    async def bill(event_id: str, price: int) -> None:
        nonlocal delivered, billed
        result = await ledger.record(campaign_id=CID, event_id=event_id, kind="impression",
                                     price_micros=price, daily_budget_micros=budget,
                                     total_budget_micros=0, day=DAY, dedupe_ttl_s=3600,
                                     event=b"{}")
        delivered += price
        billed += result.charged_micros

    for op, arg, price, burst in ops:
        if op == "serve":  # a burst of ads while the worker's gate stays open
            _, allowances = workers[arg % 3]
            for _ in range(burst):
                if not allowances.can_serve(CID):
                    break
                allowances.commit(CID, price)
                pending.append((f"e{next(serial)}", price))
        elif op in ("renew", "report"):
            await renew(arg % 3, op == "report")
        elif op == "bill" and pending:
            await bill(*pending.pop(arg % len(pending)))
        elif op == "crash":
            workers[arg % 3] = worker()  # local state lost; its lease lives on in Redis
            incarnations += 1
        elif op == "tick":
            now += arg % 4_000  # leases (10 s) outlive a few ticks
        assert billed <= budget
        assert delivered <= budget + incarnations * max(PRICES)
    for event_id, price in pending:  # every ad served is billed in the end
        await bill(event_id, price)
    assert billed <= budget
    assert delivered <= budget + incarnations * max(PRICES)
