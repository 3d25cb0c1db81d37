"""One worker's budget allowances: spent locally in the hot path, topped up in the background.

Pure (no Redis, no clock of its own): the hot path calls ``commit`` for every ad it
serves, which subtracts the ad's *expected* cost from the campaign's local allowance and
says whether the campaign may keep serving here. ``requests`` turns what is due into
``LeaseRequest``s for ``LeaseBook.renew`` and ``apply`` takes the replies back.

Expected cost of a cost-per-click ad: its price times the campaign's click-through rate,
estimated from today's impressions and clicks with a prior, taken at an upper
confidence bound so a campaign with little data reserves more rather than less, and
calibrated against what was actually billed (clicks lag impressions, which biases the
raw rate low while traffic is brisk).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pacing.leases import LeaseReply, LeaseRequest

__all__ = ["Allowances", "Budget", "Lease"]


@dataclass(frozen=True, slots=True)
class Budget:
    """What the allowance logic needs of a campaign."""

    campaign_id: int
    daily_micros: int  # 0 = no daily limit
    total_micros: int  # 0 = no lifetime limit
    max_bid_micros: int = 0  # the most one click can cost (0 = unknown)

    @property
    def limited(self) -> bool:
        return self.daily_micros > 0 or self.total_micros > 0


@dataclass(slots=True)
class Lease:
    budget: Budget
    day: str = ""
    held: float = 0.0  # allowance left here (what Redis granted minus what we committed)
    granted: int = 0  # size of the last top-up reply (sets the low-water mark)
    consumed: float = 0.0  # committed since the last report
    ctr: float = 0.0  # expected clicks per served ad, upper bound
    remaining: int = 0  # budget left after spend, in-flight and all leases (last reply)
    pending: bool = False  # a renewal is on its way
    reported: float = 0.0  # what the pending renewal reported (restored if it fails)
    pace: float = 0.0  # recent commitments per renewal (EMA): a busy campaign leases more
    last: LeaseReply | None = None
    reported_ms: int = 0  # when the last renewal was sent


@dataclass
class Allowances:
    prior_ctr: float = 0.02
    prior_impressions: float = 50.0  # strength of the prior, in impressions
    slice_share: float = 0.02  # top up to this share of what is left of the budget
    min_slice_share: float = 0.002  # ... but at least this share of the budget
    min_slice_serves: float = 8.0  # ... and this many serves' expected cost at the max bid
    calibration_min_share: float = 0.02  # committed and matured before calibrating
    max_share: float = 0.1  # a busy campaign's allowance stays within this share of the rest
    retry_ms: int = 1_000  # an empty allowance asks again this often (a new day, more budget)
    report_max_ms: int = 10_000  # commitments wait at most this long to be reported
    keepalive_ms: int = 30_000  # a held lease is renewed at least this often (half its TTL)
    low_water: float = 0.3  # renew early when below this share of the last grant
    leases: dict[int, Lease] = field(default_factory=dict)
    _due: set[int] = field(default_factory=set)

    def set_budgets(self, budgets: Iterable[Budget]) -> None:
        """Track exactly these campaigns (those with a budget limit); keep existing leases."""
        wanted = {b.campaign_id: b for b in budgets if b.limited}
        for cid in list(self.leases):
            if cid not in wanted:
                del self.leases[cid]  # the next report returns nothing for it; it expires
                self._due.discard(cid)
        for cid, budget in wanted.items():
            lease = self.leases.get(cid)
            if lease is None:
                self.leases[cid] = Lease(budget=budget, ctr=self._ctr(0, 0))
                self._due.add(cid)
            elif lease.budget != budget:
                lease.budget = budget
                self._due.add(cid)

    @property
    def due_now(self) -> bool:
        """Some allowance ran low and waits for a top-up."""
        return bool(self._due)

    def can_serve(self, campaign_id: int) -> bool:
        lease = self.leases.get(campaign_id)
        return lease is None or lease.held > 0

    def commit(self, campaign_id: int, price_micros: int) -> bool:
        """Book the expected cost of one served cost-per-click ad. False: the allowance
        is used up, stop serving the campaign here until it is topped up."""
        lease = self.leases.get(campaign_id)
        if lease is None:
            return True
        cost = price_micros * lease.ctr
        lease.held -= cost
        lease.consumed += cost
        if lease.held <= lease.granted * self.low_water:
            self._due.add(campaign_id)
        return lease.held > 0

    def exhausted(self, campaign_id: int) -> None:
        """The ledger says a budget is spent: drop the allowance now."""
        lease = self.leases.get(campaign_id)
        if lease is not None:
            lease.held = min(lease.held, 0.0)
            self._due.add(campaign_id)

    def requests(self, day_of: dict[int, str], *, everything: bool = False, now_ms: int = 0
                 ) -> list[LeaseRequest]:
        """Renewals due now: low or empty allowances and, with ``everything`` (the periodic
        report), leases of another day, empty ones not retried for ``retry_ms``, held
        ones not renewed for ``keepalive_ms``, and those with commitments unreported for
        ``report_max_ms``. ``day_of``: each
        campaign's current day. (Unreported commitments are safe: they are inside the
        worker's lease, which Redis counts until it is reported or expires.)"""
        due = set(self._due)
        if everything:
            due.update(cid for cid, lease in self.leases.items() if self._report_due(
                lease, day_of.get(cid), now_ms))
        self._due.clear()
        out: list[LeaseRequest] = []
        for cid in due:
            lease = self.leases.get(cid)
            if lease is None or lease.pending:
                if lease is not None:
                    self._due.add(cid)  # try again after the pending one
                continue
            day = day_of.get(cid, lease.day)
            consumed = math.floor(lease.consumed)
            lease.consumed -= consumed
            lease.reported = consumed
            lease.pending = True
            lease.reported_ms = now_ms
            lease.pace = 0.5 * lease.pace + 0.5 * consumed
            out.append(LeaseRequest(
                campaign_id=cid, consumed=consumed, want=self._want(lease),
                daily_budget=lease.budget.daily_micros, total_budget=lease.budget.total_micros,
                day=day))
        return out

    def apply(self, requests: Sequence[LeaseRequest], replies: Sequence[LeaseReply]) -> None:
        for request, reply in zip(requests, replies, strict=True):
            lease = self.leases.get(request.campaign_id)
            if lease is None:
                continue
            lease.pending = False
            lease.reported = 0.0
            # Ads served while the call was out were committed against the old allowance.
            lease.held = reply.held - lease.consumed
            lease.granted = reply.held
            lease.day = request.day
            lease.last = reply
            lease.ctr = min(1.0, self._ctr(reply.impressions_today, reply.clicks_today)
                            * self._calibration(lease.budget, reply))
            limits = []
            if lease.budget.daily_micros:
                limits.append(lease.budget.daily_micros - reply.spent_today)
            if lease.budget.total_micros:
                limits.append(lease.budget.total_micros - reply.spent_total)
            lease.remaining = max(0, min(limits) - reply.in_flight - reply.others - reply.held)

    def failed(self, requests: Sequence[LeaseRequest]) -> None:
        """The renewal never reached Redis: keep the report for the next one."""
        for request in requests:
            lease = self.leases.get(request.campaign_id)
            if lease is not None and lease.pending:
                lease.pending = False
                lease.consumed += lease.reported
                lease.reported = 0.0
                self._due.add(request.campaign_id)

    def release_all(self, day_of: dict[int, str], now_ms: int = 0) -> list[LeaseRequest]:
        """Requests that report everything and give every allowance back (shutdown)."""
        for lease in self.leases.values():
            lease.held = 0.0
            lease.granted = 0
        self._due.update(self.leases)
        requests = self.requests(day_of, now_ms=now_ms)
        return [LeaseRequest(r.campaign_id, r.consumed, 0, r.daily_budget, r.total_budget,
                             r.day) for r in requests]

    def _report_due(self, lease: Lease, day: str | None, now_ms: int) -> bool:
        if lease.day != day:
            return True
        age = now_ms - lease.reported_ms
        if lease.held <= 0:
            return age >= self.retry_ms
        if age >= self.keepalive_ms:
            return True  # renew before the lease's TTL runs out in Redis
        return lease.consumed >= 1 and age >= self.report_max_ms

    def _want(self, lease: Lease) -> int:
        """Top up to a share of what is left (all workers together then hold a few
        per cent of it), never less than a minimum slice so renewals stay rare; a busy
        campaign gets up to three renewals' worth of its recent pace, within
        ``max_share`` of what is left."""
        budget = lease.budget
        cap = min(x for x in (budget.daily_micros, budget.total_micros) if x > 0)
        left = lease.remaining + max(lease.held, 0.0) if lease.last is not None else cap
        serves = self.min_slice_serves * budget.max_bid_micros * lease.ctr
        busy = min(3 * lease.pace, left * self.max_share)
        return max(1, int(max(left * self.slice_share, cap * self.min_slice_share, serves,
                              busy)))

    def _calibration(self, budget: Budget, reply: LeaseReply) -> float:
        """How much the estimates have under-predicted today, as a factor (1..4).

        Clicks lag impressions (seconds to minutes), so today's clicks / impressions runs
        low while traffic is brisk. Compare what was billed with what was committed for
        ads whose in-flight time is over: if estimates were right, billed spend would not
        exceed that. Billed spend also holds clicks on ads still in flight, so the factor
        errs high, which is the safe side."""
        matured = reply.committed_today - reply.in_flight
        cap = budget.daily_micros or budget.total_micros
        if matured <= cap * self.calibration_min_share or reply.spent_today <= matured:
            return 1.0
        return min(4.0, reply.spent_today / matured)

    def _ctr(self, impressions: int, clicks: int) -> float:
        """Upper ~97.5% bound of the click-through rate, prior-smoothed."""
        n = impressions + self.prior_impressions
        p = (clicks + self.prior_ctr * self.prior_impressions) / n
        return min(1.0, p + 2.0 * math.sqrt(p * (1 - p) / n))
