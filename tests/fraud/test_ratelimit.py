"""The SIVT rate limiter against a real Redis: shared counts, spikes, blocks, bounds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

import fraud.ratelimit as ratelimit
from exchange.embedded import EmbeddedRedis, free_port
from fraud.keys import (
    rl_blocks_key,
    rl_counter_key,
    rl_journal_key,
    rl_meta_key,
    rl_until_key,
)
from fraud.ratelimit import (
    DEFAULT_LIMITS,
    RATE_LIMITED,
    TRAFFIC_SPIKE,
    Block,
    Limits,
    RateLimiter,
)

T0 = 1_778_000_000_000  # ms, on a second boundary
AD_IP = ("ad_request", "ip")


def _hits(limiter: RateLimiter, n: int, key: str, kind: str = "ad_request", dim: str = "ip") -> str:
    reason = ""
    for _ in range(n):
        reason = limiter.hit(kind, dim, key)
    return reason


async def test_two_workers_together_over_the_limit_are_blocked_everywhere(
    redis_async: aioredis.Redis,
) -> None:
    limits = {AD_IP: Limits(window_s=10, max_events=100)}
    w1, w2 = RateLimiter(redis_async, limits), RateLimiter(redis_async, limits)
    _hits(w1, 60, "203.0.113.9")
    _hits(w1, 50, "198.51.100.7")
    _hits(w2, 60, "203.0.113.9")

    first = await w1.sync(T0 + 100)  # 60 events: under the limit
    assert first.blocked == ()
    assert w1.hit("ad_request", "ip", "203.0.113.9") == ""
    second = await w2.sync(T0 + 150)  # 60 + 60 + w1's extra hit > 100
    assert second.blocked == (
        Block("ad_request", "ip", "203.0.113.9", RATE_LIMITED, T0 + 150 + 60_000),
    )
    assert w2.blocked("ip", "203.0.113.9") == RATE_LIMITED
    # w1 learns of the block made from w2's counts on its next sync.
    assert w1.blocked("ip", "203.0.113.9") == ""
    third = await w1.sync(T0 + 300)
    assert third.blocked == () and third.changes == 1
    assert w1.blocked("ip", "203.0.113.9") == RATE_LIMITED
    assert w1.hit("ad_request", "ip", "203.0.113.9") == RATE_LIMITED
    for worker in (w1, w2):
        assert worker.hit("ad_request", "ip", "198.51.100.7") == ""
        assert worker.blocked("shopper", "203.0.113.9") == ""


async def test_limit_is_strictly_more_than_max_events(redis_async: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_async, {AD_IP: Limits(window_s=10, max_events=100)})
    _hits(limiter, 100, "ip-a")
    assert (await limiter.sync(T0)).blocked == ()
    _hits(limiter, 1, "ip-a")
    assert [b.reason for b in (await limiter.sync(T0 + 9_999)).blocked] == [RATE_LIMITED]


async def test_window_slides_old_seconds_out(redis_async: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_async, {AD_IP: Limits(window_s=10, max_events=100)})
    for second in range(30):  # 60 per 10 s, forever under the limit
        _hits(limiter, 6, "ip-a")
        assert (await limiter.sync(T0 + second * 1000)).blocked == ()
    counter = rl_counter_key("ad_request", "ip", "ip-a")
    fields = await redis_async.hgetall(counter)
    buckets = {int(k): int(v) for k, v in fields.items() if k.isdigit()}
    assert sorted(buckets) == [T0 // 1000 + s for s in range(20, 30)]
    assert sum(buckets.values()) == 60
    assert int(fields[b"t"]) == 60 - buckets[T0 // 1000 + 29]  # the seconds before the last


async def test_spike_blocks_within_a_second_and_releases_after_cooldown(
    redis_async: aioredis.Redis,
) -> None:
    limits = {AD_IP: Limits(window_s=10, max_events=10_000, spike_min=20, block_s=5)}
    limiter = RateLimiter(redis_async, limits)
    for second in range(30):  # a steady baseline of 1 event/s
        limiter.hit("ad_request", "ip", "ip-a")
        limiter.hit("ad_request", "ip", "ip-calm")
        assert (await limiter.sync(T0 + second * 1000 + 500)).blocked == ()

    # From t = 30 s, 100x its rate (20 events every 200 ms); a 50x jump elsewhere is fine.
    start = T0 + 30_000
    made: list[Block] = []
    at = start
    while not made:
        at += 200
        assert at - start <= 1000, "not blocked within 1 s"
        _hits(limiter, 20, "ip-a")
        _hits(limiter, 10, "ip-calm")
        made += (await limiter.sync(at)).blocked
    assert [(b.key, b.reason, b.until_ms) for b in made] == [("ip-a", TRAFFIC_SPIKE, at + 5000)]
    assert limiter.hit("ad_request", "ip", "ip-a") == TRAFFIC_SPIKE
    assert limiter.blocked("ip", "ip-calm") == ""

    # Back to normal: the block runs out block_s after the spike, then it is released.
    second = (at - T0) // 1000 + 1
    while T0 + second * 1000 + 500 < at + 5000:
        limiter.hit("ad_request", "ip", "ip-a")
        result = await limiter.sync(T0 + second * 1000 + 500)
        assert result.blocked == () and result.released == 0
        assert limiter.blocked("ip", "ip-a") == TRAFFIC_SPIKE
        second += 1
    limiter.hit("ad_request", "ip", "ip-a")
    result = await limiter.sync(T0 + second * 1000 + 500)
    assert result.released == 1
    assert limiter.hit("ad_request", "ip", "ip-a") == ""


async def test_spike_needs_history_and_the_absolute_minimum(redis_async: aioredis.Redis) -> None:
    limits = {AD_IP: Limits(window_s=10, max_events=10_000, spike_min=50, block_s=5)}
    limiter = RateLimiter(redis_async, limits)
    # A brand-new source at 40/s has no baseline: only max_events judges it.
    _hits(limiter, 40, "new")
    assert (await limiter.sync(T0 + 900)).blocked == ()
    # Two sources at 0.2 events/s jump to 30/s and 60/s: both over 100x, one under spike_min.
    for second in (1, 6):
        limiter.hit("ad_request", "ip", "quiet")
        limiter.hit("ad_request", "ip", "loud")
        await limiter.sync(T0 + second * 1000)
    _hits(limiter, 30, "quiet")
    _hits(limiter, 60, "loud")
    made = (await limiter.sync(T0 + 11_999)).blocked
    assert [(b.key, b.reason) for b in made] == [("loud", TRAFFIC_SPIKE)]


async def test_baseline_is_the_bias_corrected_ewma(redis_async: aioredis.Redis) -> None:
    lim = Limits(window_s=10, max_events=10_000, baseline_s=20)
    limiter = RateLimiter(redis_async, {AD_IP: lim})
    alpha = -math.expm1(-1 / lim.baseline_s)
    rates = [4, 4, 8, 0, 0, 2, 6, 4, 4, 4, 1]
    for second, rate in enumerate(rates):
        if rate:  # a silent second sends nothing; the script folds it in as 0 later
            _hits(limiter, rate, "ip-a")
            await limiter.sync(T0 + second * 1000)
    _hits(limiter, 1, "ip-a")
    await limiter.sync(T0 + len(rates) * 1000)

    # Judging second 11, the baseline holds seconds 0..9: second 10 is in the spike rate.
    folded = rates[:-1]
    raw = 0.0
    for rate in folded:
        raw = (1 - alpha) * raw + alpha * rate
    fields = await redis_async.hgetall(rl_counter_key("ad_request", "ip", "ip-a"))
    assert float(fields[b"b"]) == pytest.approx(raw, rel=1e-9)
    weights = [(1 - alpha) ** (len(folded) - 1 - i) for i in range(len(folded))]
    weighted_mean = sum(w * r for w, r in zip(weights, folded, strict=True)) / sum(weights)
    corrected = float(fields[b"b"]) / -math.expm1(len(folded) * math.log1p(-alpha))
    assert corrected == pytest.approx(weighted_mean, rel=1e-9)


async def test_block_extends_while_over_the_limit(redis_async: aioredis.Redis) -> None:
    limits = {AD_IP: Limits(window_s=2, max_events=10, block_s=3)}
    limiter = RateLimiter(redis_async, limits)
    _hits(limiter, 11, "ip-a")
    assert len((await limiter.sync(T0)).blocked) == 1
    for second in range(1, 6):  # still 11/s for 5 s: one block, extended
        _hits(limiter, 11, "ip-a")
        result = await limiter.sync(T0 + second * 1000)
        assert result.blocked == () and result.released == 0
    assert await redis_async.zscore(rl_until_key(), "ip:ip-a") == T0 + 5000 + 3000
    assert (await limiter.sync(T0 + 7999)).released == 0
    assert (await limiter.sync(T0 + 8000)).released == 1
    assert limiter.blocked("ip", "ip-a") == ""


async def test_a_block_covers_every_kind_of_the_source(redis_async: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_async)  # the defaults: 20 clicks per shopper per minute
    _hits(limiter, 21, "s-1", kind="click", dim="shopper")
    (block,) = (await limiter.sync(T0)).blocked
    assert (block.kind, block.reason, block.until_ms) == ("click", RATE_LIMITED, T0 + 300_000)
    assert limiter.hit("ad_request", "shopper", "s-1") == RATE_LIMITED
    assert limiter.hit("ad_request", "ip", "s-1") == ""


async def test_every_key_has_a_ttl(redis_async: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_async)
    for kind, dim in DEFAULT_LIMITS:
        _hits(limiter, 3, "k1", kind=kind, dim=dim)
    _hits(limiter, 5000, "flood")
    assert len((await limiter.sync(T0)).blocked) == 1
    for kind, dim in DEFAULT_LIMITS:  # seconds later: old buckets go, TTLs are refreshed
        _hits(limiter, 1, "k1", kind=kind, dim=dim)
    await limiter.sync(T0 + 5000)
    keys = [k async for k in redis_async.scan_iter(match="fr:*")]
    assert set(keys) >= {
        k.encode() for k in (rl_meta_key(), rl_blocks_key(), rl_until_key(), rl_journal_key())
    }
    assert len(keys) == 4 + len(DEFAULT_LIMITS) + 1
    longest_ms = max(lim.block_s for lim in DEFAULT_LIMITS.values()) * 1000
    for key in keys:
        ttl_ms = await redis_async.pttl(key)
        assert ttl_ms > 0, key
        if key.startswith(b"fr:{rl}:c:"):
            kind, dim = key.decode().split(":")[3:5]
            assert ttl_ms <= DEFAULT_LIMITS[kind, dim].keep_s * 1000
        else:
            assert longest_ms < ttl_ms <= longest_ms + ratelimit.STATE_IDLE_S * 1000


async def test_sync_caps_sources_and_drops_the_smallest(redis_async: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_async, {AD_IP: Limits(window_s=10, max_events=1000)})
    for i in range(50_000):
        limiter.hit("ad_request", "ip", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    _hits(limiter, 5, "heavy-1")
    _hits(limiter, 2000, "heavy-2")
    assert limiter.pending_sources() == 50_002
    result = await limiter.sync(T0)
    assert limiter.pending_sources() == 0
    assert (result.sources, result.dropped_sources) == (20_000, 30_002)
    assert result.dropped_events == 30_002
    assert result.events == 5 + 2000 + 19_998
    assert [b.key for b in result.blocked] == ["heavy-2"]
    assert await redis_async.exists(rl_counter_key("ad_request", "ip", "heavy-1"))
    assert await redis_async.dbsize() == 4 + 20_000
    assert (await limiter.sync(T0 + 200)).sources == 0


async def test_hit_never_calls_redis() -> None:
    dead = aioredis.Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens
    try:
        limiter = RateLimiter(dead)
        for _ in range(1000):
            assert limiter.hit("ad_request", "ip", "203.0.113.9") == ""
            assert limiter.hit("click", "device", "d" * 32) == ""
        assert limiter.pending_sources() == 2
        with pytest.raises(redis.ConnectionError):
            await limiter.sync(T0)
        assert limiter.hit("ad_request", "ip", "203.0.113.9") == ""
    finally:
        await dead.aclose()


async def test_failed_sync_keeps_the_local_blocked_set(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, appendonly=False)
    client = aioredis.Redis.from_url(server.start(), socket_connect_timeout=0.5)
    try:
        limiter = RateLimiter(client, {AD_IP: Limits(window_s=10, max_events=5)})
        _hits(limiter, 6, "ip-a")
        assert len((await limiter.sync(T0)).blocked) == 1
        server.stop()
        _hits(limiter, 6, "ip-b")
        with pytest.raises(redis.ConnectionError):
            await limiter.sync(T0 + 200)
        assert limiter.hit("ad_request", "ip", "ip-a") == RATE_LIMITED
        assert limiter.blocked("ip", "ip-a") == RATE_LIMITED
        assert limiter.pending_sources() == 1  # the failed batch is gone, new hits count
    finally:
        await client.aclose()
        server.stop()


async def test_a_new_worker_gets_a_snapshot_then_only_changes(
    redis_async: aioredis.Redis,
) -> None:
    limits = {AD_IP: Limits(window_s=10, max_events=5, block_s=10)}
    w1 = RateLimiter(redis_async, limits)
    for key in ("a", "b", "c"):
        _hits(w1, 6, key)
    await w1.sync(T0)
    late = RateLimiter(redis_async, limits)
    first = await late.sync(T0 + 100)
    assert (first.reset, first.changes, first.blocked_now) == (True, 3, 3)
    assert late.blocked("ip", "b") == RATE_LIMITED
    again = await late.sync(T0 + 200)
    assert (again.reset, again.changes) == (False, 0)
    _hits(w1, 6, "d")
    await w1.sync(T0 + 300)
    step = await late.sync(T0 + 400)
    assert (step.reset, step.changes, step.blocked_now) == (False, 1, 4)
    released = await late.sync(T0 + 10_200)
    assert (released.released, released.blocked_now) == (3, 1)
    assert late.blocked("ip", "d") == RATE_LIMITED and late.blocked("ip", "a") == ""


async def test_a_worker_behind_the_trimmed_journal_gets_a_snapshot(
    redis_async: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "JOURNAL_MAX", 3)
    limits = {AD_IP: Limits(window_s=10, max_events=1, block_s=10)}
    busy, idle = RateLimiter(redis_async, limits), RateLimiter(redis_async, limits)
    await idle.sync(T0)
    for i in range(6):
        _hits(busy, 2, f"ip-{i}")
        await busy.sync(T0 + 100)
    assert await redis_async.zcard(rl_journal_key()) == 3
    caught_up = await idle.sync(T0 + 200)
    assert (caught_up.reset, caught_up.blocked_now) == (True, 6)


async def test_a_flushed_store_clears_the_local_set(redis_async: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_async, {AD_IP: Limits(window_s=10, max_events=1)})
    _hits(limiter, 2, "ip-a")
    await limiter.sync(T0)
    assert limiter.blocked("ip", "ip-a") == RATE_LIMITED
    await redis_async.flushdb()
    result = await limiter.sync(T0 + 200)
    assert result.reset and limiter.blocked("ip", "ip-a") == ""


async def test_a_lagging_clock_counts_in_the_sources_latest_second(
    redis_async: aioredis.Redis,
) -> None:
    limits = {AD_IP: Limits(window_s=2, max_events=100)}
    ahead, behind = RateLimiter(redis_async, limits), RateLimiter(redis_async, limits)
    _hits(ahead, 5, "ip-a")
    await ahead.sync(T0 + 5000)
    _hits(behind, 7, "ip-a")
    await behind.sync(T0 + 1000)  # 4 s behind: still counted, at second 5
    fields = await redis_async.hgetall(rl_counter_key("ad_request", "ip", "ip-a"))
    assert int(fields[str(T0 // 1000 + 5).encode()]) == 12
    assert int(fields[b"t"]) == 0 and int(fields[b"n"]) == T0 // 1000 + 5


async def test_server_clock_and_str_replies(redis_url: str, redis_sync: redis.Redis) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        limiter = RateLimiter(client, {AD_IP: Limits(window_s=10, max_events=1)})
        _hits(limiter, 2, "2001:db8::1")  # a key with ':' in it
        result = await limiter.sync()
        server_ms = int(redis_sync.time()[0]) * 1000
        assert abs(result.now_ms - server_ms) < 5000
        assert [b.key for b in result.blocked] == ["2001:db8::1"]
        assert limiter.blocked("ip", "2001:db8::1") == RATE_LIMITED
    finally:
        await client.aclose()


async def test_unknown_kind_or_dimension_is_a_key_error(redis_async: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_async, {AD_IP: Limits(window_s=10, max_events=1)})
    with pytest.raises(KeyError):
        limiter.hit("click", "ip", "x")
    with pytest.raises(KeyError):
        limiter.hit("ad_request", "shopper", "x")
    assert limiter.blocked("shopper", "x") == ""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_s": 1, "max_events": 1},
        {"window_s": 2, "max_events": 0},
        {"window_s": 2, "max_events": 1, "spike_factor": 0},
        {"window_s": 2, "max_events": 1, "block_s": 0},
    ],
)
def test_limits_are_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Limits(**kwargs)


async def test_names_are_validated(redis_async: aioredis.Redis) -> None:
    with pytest.raises(ValueError):
        RateLimiter(redis_async, {("ad:request", "ip"): Limits(window_s=2, max_events=1)})
    with pytest.raises(ValueError):
        RateLimiter(redis_async, {})
    with pytest.raises(ValueError):
        RateLimiter(redis_async, max_sources_per_sync=0)


def test_default_limits_cover_every_kind_and_dimension() -> None:
    assert set(DEFAULT_LIMITS) == {
        (kind, dim)
        for kind in ("ad_request", "impression", "click")
        for dim in ("ip", "shopper", "device")
    }
    # A shared store IP must outlast what one shopper may do by a wide margin.
    for kind in ("ad_request", "impression", "click"):
        ip, shopper = DEFAULT_LIMITS[kind, "ip"], DEFAULT_LIMITS[kind, "shopper"]
        assert ip.max_events / ip.window_s >= 10 * shopper.max_events / shopper.window_s
