"""Budget leases on the Redis side: report what was committed, top the allowance up.

In the spirit of RTBkit's banker: no worker asks Redis before an auction. Each worker
holds, per campaign, an *allowance* leased from the campaign's remaining budget; it
spends it locally (the expected cost of every ad it serves) and, every second or so or
when it runs low, calls ``lease.lua`` to report what it committed and to top up. The
script grants only what keeps ``spent + in_flight + leases <= budget`` true (see its
header), so the sum of all workers' allowances can never exceed what is left.

Committed cost stays *in flight* for ``window_ms`` (clicks still to come), then the
ledger's billed spend is what counts. A worker that dies holds its lease until
``lease_ttl_ms`` passes; then the lease is presumed committed and moved to in-flight:
the budget is delayed, never overspent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

import redis.asyncio as aioredis

from pacing.keys import LEASE_HASH_TTL_S, lease_key, spend_key

__all__ = ["LeaseBook", "LeaseReply", "LeaseRequest"]

LEASE_LUA = files("pacing").joinpath("lease.lua").read_text()


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    campaign_id: int
    consumed: int  # micros committed since the last call (>= 0)
    want: int  # allowance wanted after the call; 0 returns the lease
    daily_budget: int  # micros; 0 = no daily limit
    total_budget: int  # micros; 0 = no lifetime limit
    day: str  # YYYYMMDD in the campaign's zone


@dataclass(frozen=True, slots=True)
class LeaseReply:
    held: int  # the worker's allowance now
    spent_today: int
    spent_total: int
    in_flight: int  # committed, not yet billed (including this call's report)
    others: int  # allowances other live workers hold
    committed_today: int
    impressions_today: int
    clicks_today: int


class LeaseBook:
    """One worker's side of the lease protocol (``worker`` names it in Redis)."""

    def __init__(self, client: aioredis.Redis, worker: str, *, lease_ttl_ms: int,
                 window_ms: int) -> None:
        if not worker or " " in worker:
            raise ValueError(f"worker id must be non-empty without spaces, got {worker!r}")
        if lease_ttl_ms <= 0 or window_ms <= 0:
            raise ValueError("lease_ttl_ms and window_ms must be positive")
        self._client = client
        self.worker = worker
        self.lease_ttl_ms = lease_ttl_ms
        self.window_ms = window_ms
        self._lease = client.register_script(LEASE_LUA)

    async def renew(self, requests: Sequence[LeaseRequest], now_ms: int) -> list[LeaseReply]:
        """One pipelined round trip for any number of campaigns (one script call each,
        on the campaign's own hash slot)."""
        if not requests:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for r in requests:
                if r.consumed < 0 or r.want < 0 or r.daily_budget < 0 or r.total_budget < 0:
                    raise ValueError(f"lease request with a negative amount: {r}")
                await self._lease(
                    keys=[lease_key(r.campaign_id), spend_key(r.campaign_id)],
                    args=[self.worker, r.consumed, r.want, r.daily_budget, r.total_budget,
                          r.day, now_ms, self.lease_ttl_ms, self.window_ms, LEASE_HASH_TTL_S],
                    client=pipe,
                )
            replies = await pipe.execute()
        return [LeaseReply(*(int(v) for v in reply)) for reply in replies]
