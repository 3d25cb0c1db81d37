"""Prometheus metrics.

The hot path must not pay for metrics: prometheus-client counters take a lock per
increment, so ``/v1/ads`` bumps plain integers in :class:`AdStats` and a custom
collector turns them into Prometheus families at scrape time. Everything off the hot
path (beacons, spend, API) uses ordinary prometheus-client metrics.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pacing.pacer import PacingRow

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class AdStats:
    """Plain counters for the ad request path, per placement."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}   # (placement, outcome) -> n
        self.auctions: dict[str, int] = {}
        self.filled: dict[str, int] = {}
        self.ads: dict[str, int] = {}
        self.invalid_requests: dict[tuple[str, str], int] = {}  # (placement, reason) -> n
        self.degraded_requests: dict[str, int] = {}  # shopper state unreadable: no ad
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_sum = 0.0

    def request(self, placement: str, outcome: str, seconds: float) -> None:
        key = (placement, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.latency_sum += seconds

    def invalid(self, placement: str, reason: str) -> None:
        key = (placement, reason)
        self.invalid_requests[key] = self.invalid_requests.get(key, 0) + 1

    def degraded(self, placement: str) -> None:
        self.degraded_requests[placement] = self.degraded_requests.get(placement, 0) + 1

    def auction(self, placement: str, n_ads: int) -> None:
        self.auctions[placement] = self.auctions.get(placement, 0) + 1
        if n_ads:
            self.filled[placement] = self.filled.get(placement, 0) + 1
            self.ads[placement] = self.ads.get(placement, 0) + n_ads


class _AdStatsCollector(Collector):
    def __init__(self, stats: AdStats, gauges: Callable[[], dict[str, float]]) -> None:
        self._stats = stats
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        req = CounterMetricFamily(
            "endcap_ad_requests", "Ad requests by placement and outcome",
            labels=["placement", "outcome"],
        )
        for (placement, outcome), n in s.requests.items():
            req.add_metric([placement, outcome], n)
        yield req
        inv = CounterMetricFamily(
            "endcap_invalid_ad_requests", "Ad requests screened out as invalid traffic",
            labels=["placement", "reason"],
        )
        for (placement, reason), n in s.invalid_requests.items():
            inv.add_metric([placement, reason], n)
        yield inv
        for name, table, doc in (
            ("endcap_auctions", s.auctions, "Auctions run"),
            ("endcap_auctions_filled", s.filled, "Auctions with at least one ad (fill)"),
            ("endcap_ads_served", s.ads, "Ads returned"),
            ("endcap_ad_requests_degraded", s.degraded_requests,
             "Requests answered without an ad because the shopper's state was unreadable"),
        ):
            fam = CounterMetricFamily(name, doc, labels=["placement"])
            for placement, n in table.items():
                fam.add_metric([placement], n)
            yield fam
        cumulative, buckets = 0, []
        for bound, n in zip((*LATENCY_BUCKETS_S, float("inf")), s.latency_counts, strict=True):
            cumulative += n
            buckets.append((str(bound) if bound != float("inf") else "+Inf", cumulative))
        hist = HistogramMetricFamily(
            "endcap_ad_request_seconds", "Ad request handling time (in process)",
        )
        hist.add_metric([], buckets, s.latency_sum)
        yield hist
        for name, value in self._gauges().items():
            yield GaugeMetricFamily(f"endcap_{name}", name.replace("_", " "), value=value)


class PacingSource(Protocol):
    """What the pacing collector reads (``pacing.pacer.Pacer``)."""

    renewals: int
    is_leader: bool

    def snapshot(self) -> list[PacingRow]: ...


class _PacingCollector(Collector):
    """Per-campaign pacing as this worker sees it, built at scrape time."""

    def __init__(self, source: PacingSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        rows = self._source.snapshot()
        label = ["campaign"]
        throttle = GaugeMetricFamily("endcap_pacing_throttle",
                                     "Share of eligible auctions the campaign enters", labels=label)
        spent = GaugeMetricFamily("endcap_pacing_spent_today_micros",
                                  "Billed spend today, micro-units", labels=label)
        flight = GaugeMetricFamily("endcap_pacing_in_flight_micros",
                                   "Expected cost of served ads not billed yet", labels=label)
        budget = GaugeMetricFamily("endcap_pacing_daily_budget_micros", "Daily budget",
                                   labels=label)
        closed = 0
        for r in rows:
            name = [f"cmp_{r.campaign_id}"]
            throttle.add_metric(name, r.throttle)
            spent.add_metric(name, r.spent_today)
            flight.add_metric(name, r.in_flight)
            budget.add_metric(name, r.daily_micros)
            closed += not r.gate_open
        yield from (throttle, spent, flight, budget)
        yield GaugeMetricFamily("endcap_pacing_gates_closed",
                                "Campaigns this worker cannot serve now (allowance or throttle)",
                                value=closed)
        yield CounterMetricFamily("endcap_pacing_lease_calls", "Budget lease calls to Redis",
                                  value=self._source.renewals)
        yield GaugeMetricFamily("endcap_pacing_leader", "1 if this worker runs the controller",
                                value=int(self._source.is_leader))


class Metrics:
    """All metrics of one worker, in their own registry."""

    def __init__(self, gauges: Callable[[], dict[str, float]] = dict,
                 pacing: PacingSource | None = None) -> None:
        self.registry = CollectorRegistry()
        self.ads = AdStats()
        self.registry.register(_AdStatsCollector(self.ads, gauges))
        if pacing is not None:
            self.registry.register(_PacingCollector(pacing))
        self.http_requests = Counter(
            "endcap_http_requests", "API requests by route and status",
            ["route", "status"], registry=self.registry,
        )
        self.beacons = Counter(
            "endcap_beacons", "Tracking beacons by type and result",
            ["type", "result"], registry=self.registry,
        )
        self.invalid = Counter(
            "endcap_invalid_traffic", "Invalid events by type and reason",
            ["type", "reason"], registry=self.registry,
        )
        self.spend = Counter(
            "endcap_spend_micros", "Money charged to campaigns, micro-units",
            ["kind"], registry=self.registry,
        )
