"""The Pacer against a real Redis: gates, leases, leader election, shared throttles."""

from __future__ import annotations

import asyncio
import time
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from pacing.keys import LEADER, THROTTLE, lease_key, spend_key, traffic_key
from pacing.pacer import GATE_OPEN, PacedCampaign, Pacer, PacerConfig

UTC = ZoneInfo("UTC")


class Gates:
    def __init__(self) -> None:
        self.gates: dict[int, int] = {}

    def set_gate(self, campaign_id: int, gate: int) -> None:
        self.gates[campaign_id] = gate


def _pacer(client: aioredis.Redis, worker: str, slices: int = 1) -> tuple[Pacer, Gates]:
    gates = Gates()
    return Pacer(client, gates, retailer_zone=UTC, worker=worker,
                 config=PacerConfig(interval_ms=100_000, report_ms=100_000,
                                    control_slices=slices)), gates


def _campaign(cid: int = 5, daily: int = 10_000_000, mode: str = "even") -> PacedCampaign:
    return PacedCampaign(cid, daily, 0, mode, UTC, max_bid_micros=1_000_000)  # type: ignore[arg-type]


async def test_gate_closes_when_the_allowance_is_spent_and_reopens_on_top_up(
        redis_async: aioredis.Redis) -> None:
    pacer, gates = _pacer(redis_async, "w1")
    pacer.set_campaigns([_campaign()])
    assert pacer.gate(5) == 0  # nothing leased yet
    await pacer.renew()
    assert gates.gates[5] == GATE_OPEN
    held = pacer.allowances.leases[5].held
    served = 0
    while gates.gates.get(5) != 0:
        pacer.served(5, 500_000)
        served += 1
    assert served * 500_000 * pacer.allowances.leases[5].ctr >= held
    await pacer.renew()
    assert gates.gates[5] == GATE_OPEN
    lease = await redis_async.hgetall(lease_key(5))
    assert int(lease[b"w:w1"].split()[0]) > 0


async def test_a_spent_budget_keeps_the_gate_closed_on_every_worker(
        redis_async: aioredis.Redis) -> None:
    a, gates_a = _pacer(redis_async, "a")
    b, gates_b = _pacer(redis_async, "b")
    for p in (a, b):
        p.set_campaigns([_campaign(daily=1_000_000)])
    day = time.strftime("%Y%m%d", time.gmtime())
    await redis_async.hset(spend_key(5), f"d:{day}", 1_000_000)
    await a.renew(everything=True)
    await b.renew(everything=True)
    assert gates_a.gates[5] == gates_b.gates[5] == 0


async def test_exhausted_closes_at_once(redis_async: aioredis.Redis) -> None:
    pacer, gates = _pacer(redis_async, "w1")
    pacer.set_campaigns([_campaign()])
    await pacer.renew()
    pacer.exhausted(5)
    assert gates.gates[5] == 0 and pacer.gate(5) == 0


async def test_one_leader_publishes_throttles_every_worker_reads(
        redis_async: aioredis.Redis) -> None:
    a, _ = _pacer(redis_async, "a")
    b, gates_b = _pacer(redis_async, "b")
    ahead = _campaign(cid=1)  # already spent most of its day: must slow down
    behind = _campaign(cid=2)  # spent nothing: full speed
    day = time.strftime("%Y%m%d", time.gmtime())
    await redis_async.hset(spend_key(1), f"d:{day}", 9_990_000)
    for p in (a, b):
        p.set_campaigns([ahead, behind])
        await p.renew()
    a.count_auction()
    await a.control()
    await b.control()
    assert a.is_leader and not b.is_leader
    assert await redis_async.get(LEADER) == b"a"
    throttles = {int(k): int(v) for k, v in (await redis_async.hgetall(THROTTLE)).items()}
    assert throttles[2] == GATE_OPEN
    assert throttles[1] < GATE_OPEN // 10
    assert b.throttles == throttles and gates_b.gates[1] == throttles[1]
    hour = str(time.gmtime().tm_hour)
    assert int(await redis_async.hget(traffic_key(day), hour) or 0) == 1
    # The leader stops: the other worker takes over at its next round.
    await a.stop()
    await b.control()
    assert b.is_leader


async def test_status_reports_spend_target_and_throttle(redis_async: aioredis.Redis) -> None:
    pacer = Pacer(redis_async, Gates(), retailer_zone=UTC, worker="w1",
                  config=PacerConfig(lease_ttl_ms=400))  # reports after 200 ms
    campaign = _campaign()
    pacer.set_campaigns([campaign])
    await pacer.renew()
    pacer.served(5, 1_000_000)
    await pacer.renew(everything=True)
    assert pacer.allowances.leases[5].consumed > 0  # not reported yet: too recent
    await asyncio.sleep(0.25)
    await pacer.renew(everything=True)
    now = time.time_ns() // 1_000_000
    status = await pacer.status(campaign, now)
    assert status.in_flight > 0 and status.leased > 0
    assert status.remaining_today == 10_000_000 - status.in_flight
    assert 0 <= status.target_now <= 10_000_000
    assert status.throttle == 1.0


async def test_stop_returns_every_allowance(redis_async: aioredis.Redis) -> None:
    pacer, _ = _pacer(redis_async, "w1")
    pacer.set_campaigns([_campaign()])
    await pacer.start()
    pacer.served(5, 1_000_000)
    await pacer.stop()
    lease = await redis_async.hgetall(lease_key(5))
    assert not [k for k in lease if k.startswith(b"w:")]
    assert sum(int(v) for k, v in lease.items() if k.startswith(b"f:")) > 0  # reported


async def test_the_leader_covers_every_campaign_in_slices(redis_async: aioredis.Redis) -> None:
    pacer, _ = _pacer(redis_async, "a", slices=3)
    pacer.set_campaigns([_campaign(cid=i) for i in range(1, 8)])
    now = time.time_ns() // 1_000_000
    seen: list[set[int]] = []
    for k in range(3):
        before = set(pacer.states)
        await pacer.lead(now + k)
        seen.append(set(pacer.states) - before)
    assert [len(s) for s in seen] == [3, 3, 1]
    assert set().union(*seen) == set(range(1, 8))
    assert len(await redis_async.hgetall(THROTTLE)) == 7


async def test_the_leader_reads_the_ledger_for_campaigns_without_a_fresh_lease_reply(
        redis_async: aioredis.Redis) -> None:
    pacer, _ = _pacer(redis_async, "a")
    pacer.set_campaigns([_campaign(cid=1)])
    await pacer.renew()  # a fresh reply: spent 0
    day = time.strftime("%Y%m%d", time.gmtime())
    await redis_async.hset(spend_key(1), f"d:{day}", 9_990_000)
    now = time.time_ns() // 1_000_000
    await pacer.lead(now)
    assert pacer.states[1].projected == 0  # believed the fresh reply
    await pacer.lead(now + pacer.config.fresh_ms + 1)
    assert pacer.states[1].projected >= 9_990_000  # stale: read from Redis


async def test_a_held_lease_is_kept_alive_before_its_ttl(redis_async: aioredis.Redis) -> None:
    pacer = Pacer(redis_async, Gates(), retailer_zone=UTC, worker="w1",
                  config=PacerConfig(lease_ttl_ms=400))
    pacer.set_campaigns([_campaign()])
    await pacer.renew()

    async def expires() -> int:
        return int((await redis_async.hget(lease_key(5), "w:w1") or b"0 0").split()[1])

    first = await expires()
    assert await pacer.renew(everything=True) == 0  # nothing due yet
    await asyncio.sleep(0.25)  # past half the TTL, with nothing consumed
    assert await pacer.renew(everything=True) == 1
    assert await expires() > first


async def test_a_burst_is_topped_up_before_the_gate_closes(redis_async: aioredis.Redis
                                                           ) -> None:
    gates = Gates()
    pacer = Pacer(redis_async, gates, retailer_zone=UTC, worker="w1",
                  config=PacerConfig(tick_ms=60_000))  # no periodic tick: only the wake-up
    pacer.set_campaigns([_campaign()])
    await pacer.start()
    closed = 0
    for _ in range(100):
        pacer.served(5, 1_000_000)
        closed += gates.gates.get(5) == 0
        await asyncio.sleep(0.005)  # shoppers keep coming; renewals happen in between
    await pacer.stop()
    assert pacer.renewals > 5  # the allowance was topped up again and again ...
    assert closed == 0  # ... before it ever ran out
