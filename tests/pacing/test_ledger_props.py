"""Ledger invariant: for any event sequence, spend == first-seen prices capped by budget
== the events stream's sum, whatever the retries."""

from __future__ import annotations

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacing.ledger import Ledger

EVENTS = "ev:billed"
DAYS = ("20260509", "20260510")

events = st.lists(
    st.tuples(
        st.sampled_from([f"e{i}" for i in range(8)]),  # a small pool: many retries
        st.integers(min_value=0, max_value=5_000),
        st.sampled_from(DAYS),
    ),
    max_size=30,
)
budgets = st.one_of(st.just(0), st.integers(min_value=1, max_value=20_000))


@settings(
    max_examples=50,
    deadline=None,
    # The fixture's client is reused across examples; each example flushes the db itself.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=events, daily=budgets, total=budgets)
async def test_ledger_matches_model_and_stream(
    redis_async: aioredis.Redis,
    events: list[tuple[str, int, str]],
    daily: int,
    total: int,
) -> None:
    await redis_async.flushdb()
    ledger = Ledger(redis_async, events_key=EVENTS, events_maxlen=10_000)

    seen: set[str] = set()
    model_day = dict.fromkeys(DAYS, 0)
    model_total = 0
    for event_id, price, day in events:
        result = await ledger.record(
            campaign_id=3,
            event_id=event_id,
            kind="click",
            price_micros=price,
            daily_budget_micros=daily,
            total_budget_micros=total,
            day=day,
            dedupe_ttl_s=600,
            event=event_id.encode(),
        )
        if event_id in seen:
            assert not result.recorded
            assert result.charged_micros == 0
            continue
        seen.add(event_id)
        charge = price
        if daily:
            charge = min(charge, daily - model_day[day])
        if total:
            charge = min(charge, total - model_total)
        charge = max(charge, 0)
        model_day[day] += charge
        model_total += charge
        assert result.recorded
        assert result.charged_micros == charge
        assert (result.spend_today_micros, result.spend_total_micros) == (
            model_day[day],
            model_total,
        )

    for day in DAYS:
        assert await ledger.spend([3], day) == {3: (model_day[day], model_total)}
        assert await ledger.reconcile(day) == []
        if daily:
            assert model_day[day] <= daily
    if total:
        assert model_total <= total
    entries = await redis_async.xrange(EVENTS)
    assert len(entries) == len(seen)
    assert sum(int(fields[b"c"]) for _, fields in entries) == model_total
