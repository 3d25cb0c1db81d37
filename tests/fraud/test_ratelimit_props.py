"""Rate-limiter invariant: whatever the batches and clocks, the window total the script
judges a source by is the sum of its counts in the sliding window (a pure-Python model),
and a source is blocked exactly when that total first exceeds ``max_events``."""

from __future__ import annotations

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud.keys import rl_counter_key
from fraud.ratelimit import RATE_LIMITED, Limits, RateLimiter

T0 = 1_778_000_000_000
SOURCES = ("203.0.113.9", "198.51.100.7", "2001:db8::1")

batches = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40),  # the worker's second: may run backwards
        st.integers(min_value=0, max_value=999),
        st.lists(
            st.tuples(st.sampled_from(range(len(SOURCES))), st.integers(1, 30)),
            min_size=1,
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=15,
)


@settings(
    max_examples=50,
    deadline=None,
    # The fixture's client is reused across examples; each example flushes the db itself.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=batches, window_s=st.integers(2, 8), max_events=st.integers(10, 300))
async def test_window_total_matches_the_model(
    redis_async: aioredis.Redis,
    batches: list[tuple[int, int, list[tuple[int, int]]]],
    window_s: int,
    max_events: int,
) -> None:
    await redis_async.flushdb()
    limits = Limits(window_s=window_s, max_events=max_events, spike_min=10**9, block_s=3600)
    limiter = RateLimiter(redis_async, {("ad_request", "ip"): limits})

    last: dict[str, int] = {}  # the source's latest second: its clock never runs back
    buckets: dict[str, dict[int, int]] = {s: {} for s in SOURCES}
    blocked: set[str] = set()
    for second, ms, hits in batches:
        touched: dict[str, int] = {}
        for index, count in hits:
            source = SOURCES[index]
            for _ in range(count):
                limiter.hit("ad_request", "ip", source)
            touched[source] = touched.get(source, 0) + count
        result = await limiter.sync(T0 + second * 1000 + ms)

        expected_blocks = set()
        for source, count in touched.items():
            at = max(second + T0 // 1000, last.get(source, 0))
            last[source] = at
            buckets[source][at] = buckets[source].get(at, 0) + count
            window = {s: c for s, c in buckets[source].items() if s > at - window_s}
            total = sum(window.values())

            fields = await redis_async.hgetall(rl_counter_key("ad_request", "ip", source))
            stored = {int(k): int(v) for k, v in fields.items() if k.isdigit()}
            assert stored == window
            assert int(fields[b"n"]) == at
            assert int(fields[b"t"]) + stored[at] == total  # t: the seconds before n
            if total > max_events and source not in blocked:
                expected_blocks.add(source)
        assert {b.key for b in result.blocked} == expected_blocks
        assert all(b.reason == RATE_LIMITED for b in result.blocked)
        blocked |= expected_blocks
        for source in SOURCES:
            assert limiter.blocked("ip", source) == (RATE_LIMITED if source in blocked else "")
