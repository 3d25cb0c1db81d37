"""The pacing simulator: a seeded synthetic day through the real auction kernel and controller.

    python -m pacing.simulate [--seed 7] [--campaigns 40] [--auctions 3000000] [--step-s 1]
                              [--control-s 20] [--demand 3 10]
                              [--out docs/pacing-simulation.png] [--json]

Replays 24 hours in accelerated time (a loop over simulated steps, no sleeping), twice with
the same seed: with pacing (``pacing.controller.update`` every ``control_s``) and without
(throttle always 1, the same hard cap). Per step:

1. clicks due in the step are billed, each charge capped at what the daily budget has
   left (as ``bill.lua`` does); the uncharged rest is over-delivery;
2. in-flight cost older than ``inflight_s`` (10 min, as the lease window) drops out;
3. the step's Poisson number of ad requests is auctioned: each campaign is eligible for a
   request with its reach, skipped once ``billed + in-flight >= budget`` (the hard cap),
   enters with probability ``throttle``, and the entrants go through
   :func:`auction.clearing.clear_gsp`. A winner adds ``price * ctr_estimate`` to
   in-flight and is clicked with its true CTR after an exponential delay (capped at the
   token TTL); the click's second price is billed at the step it lands in.

Traffic follows ``DEFAULT_SHAPE`` smoothed between hour centres, with day-level and
hour-level noise; the controller only knows the curve ``TrafficCurve.learn`` makes of three
noisy previous days. A campaign's ``demand`` is what it would spend at throttle 1 in the
unpaced market, in budgets: 4 means it could spend its budget four times over; short
campaigns (below ``AMPLE``) cannot spend theirs at all.

Deterministic for a seed: the scenario and traffic come from ``numpy.random.default_rng``,
the per-auction draws from a splitmix64 stream seeded from it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from numba import njit

from auction.clearing import OUT_INDEX, OUT_PRICE, clear_gsp
from auction.tiebreak import splitmix64
from pacing.controller import ControllerConfig, PacerState, update
from pacing.curves import (
    DEFAULT_SHAPE,
    CampaignDay,
    Mode,
    TrafficCurve,
    campaign_day,
    retailer_hour,
    target_fraction,
)

__all__ = ["Scenario", "Simulation", "main", "simulate"]

MICROS = 1_000_000
DAY_S = 86_400
MINUTE_MS = 60_000
ZONE = ZoneInfo("Europe/Amsterdam")
DATE = datetime(2025, 6, 11, 12, tzinfo=ZONE)  # a Wednesday, no DST change
MODES: tuple[Mode, ...] = ("even", "traffic_shaped", "even", "traffic_shaped", "asap")
RELEVANCE_SD = 0.6  # sd of the log of a candidate's per-query relevance (its quality factor)
AMPLE = 1.5  # demand (budgets spendable at throttle 1) from which a campaign counts as ample

# Campaign table (int64), one row per campaign.
C_BUDGET, C_BID, C_QUALITY, C_CTR_PPM, C_CTR_EST_PPM, C_REACH_PPM = range(6)
C_COLS = 6
# Money table (int64): the ledger and the in-flight account of each campaign.
M_BILLED, M_OVER, M_PRICE_SUM, M_INFLIGHT, M_CAPPED = range(5)
M_COLS = 5
# Kernel parameters (int64).
P_STEP_MS, P_N_STEPS, P_SLOTS, P_RESERVE, P_INCREMENT, P_DELAY_MS, P_TTL_MS, P_SAMPLE = range(8)
P_LEN = 8

_U_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_U11 = np.uint64(11)
_INV53 = 1.0 / float(1 << 53)


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int = 7
    campaigns: int = 40
    auctions: int = 3_000_000  # expected ad requests over the day (before day-level noise)
    step_s: float = 1.0  # auctions are batched per step; clicks land on step boundaries
    control_s: float = 20.0  # controller period (a multiple of step_s), as the pacer
    slots: int = 3
    reserve_micros: int = 100_000
    increment_micros: int = 10_000
    click_delay_s: float = 45.0  # mean of the exponential click delay
    token_ttl_s: int = 3_600  # clicks later than this are not billed; the delay is capped
    inflight_s: int = 600  # served cost stays in flight this long (the lease window)
    day_noise: float = 0.10  # sd of the log of the day's volume factor
    hour_noise: float = 0.10  # sd of the log of each hour's factor
    demand: tuple[float, float] = (3.0, 10.0)  # range of ample campaigns' demand (log-uniform)
    calibration_auctions: int = 100_000


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    index: int
    mode: Mode
    demand: float  # budgets it could spend at throttle 1 against full competition
    budget: int
    bid: int
    quality: int
    ctr_ppm: int
    ctr_estimate_ppm: int
    reach_ppm: int  # share of ad requests it is eligible for

    @property
    def ample(self) -> bool:
        return self.demand >= AMPLE


@dataclass(frozen=True, slots=True)
class CampaignResult:
    index: int
    mode: Mode
    ample: bool
    budget: int
    spend: int  # billed today
    over: int  # click value not billed because the budget had run out (over-delivery)
    utilisation: float  # spend / budget, percent
    error_max: float | None  # |spend - target| in % of the budget, over the day's minutes
    error_mean: float | None
    out_at_s: int | None  # when the hard cap first turned it away from an auction
    starved_h: float  # hours behind target at throttle 1: short of demand, not of pacing


@dataclass(slots=True)
class Run:
    pacing: bool
    results: list[CampaignResult]
    spend: npt.NDArray[np.int64]  # billed per campaign at every minute 0..1440
    throttle: npt.NDArray[np.float64]  # throttle per campaign at every minute 0..1440
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class World:
    scenario: Scenario
    day: CampaignDay
    curve: TrafficCurve  # what the controller knows (learned from previous days)
    specs: list[CampaignSpec]
    arrivals: npt.NDArray[np.int64]  # ad requests per step
    targets: dict[Mode, npt.NDArray[np.float64]]  # target share at every minute 0..1440
    kernel_seed: int


@dataclass(slots=True)
class Simulation:
    world: World
    paced: Run
    baseline: Run


# -- the kernel ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _next(rng: npt.NDArray[np.uint64]) -> np.uint64:
    """The next 64 random bits of the splitmix64 stream whose state is ``rng[0]``."""
    z = splitmix64(rng[0])
    rng[0] = rng[0] + _U_GAMMA
    return z


@njit(cache=True, nogil=True)
def _uniform(rng: npt.NDArray[np.uint64]) -> float:
    return float(_next(rng) >> _U11) * _INV53


@njit(cache=True, nogil=True)
def _relevance(rng: npt.NDArray[np.uint64]) -> float:
    """How well an ad fits one query: lognormal (Box-Muller), so every campaign has queries
    where it ranks high and no campaign wins everywhere."""
    radius = math.sqrt(-2.0 * math.log(1.0 - _uniform(rng)))
    return math.exp(RELEVANCE_SD * radius * math.cos(2.0 * math.pi * _uniform(rng)))


@njit(cache=True, nogil=True)
def _advance(
    k0: int,
    k1: int,
    arrivals: npt.NDArray[np.int64],
    camps: npt.NDArray[np.int64],
    throttle: npt.NDArray[np.float64],
    money: npt.NDArray[np.int64],
    inflight: npt.NDArray[np.int64],
    due: npt.NDArray[np.int64],
    spend: npt.NDArray[np.int64],
    rng: npt.NDArray[np.uint64],
    params: npt.NDArray[np.int64],
) -> None:
    """Simulate steps ``k0 .. k1 - 1``: bill due clicks, age in-flight, run the auctions.

    ``inflight`` and ``due`` are rings over steps (in-flight window, token TTL); ``spend``
    gets the billed totals every ``P_SAMPLE`` steps.
    """
    n_camps = camps.shape[0]
    step_ms = params[P_STEP_MS]
    n_steps = params[P_N_STEPS]
    window = inflight.shape[0]
    horizon = due.shape[0]
    bid = np.empty(n_camps, np.int64)
    quality = np.empty(n_camps, np.int64)
    who = np.empty(n_camps, np.int64)
    keys = np.empty(n_camps, np.uint64)
    out = np.zeros((max(params[P_SLOTS], 1), 2), np.int64)
    for k in range(k0, k1):
        slot = k % horizon
        ring = k % window
        for c in range(n_camps):
            owed = due[slot, c]
            if owed > 0:
                charge = min(owed, max(camps[c, C_BUDGET] - money[c, M_BILLED], 0))
                money[c, M_BILLED] += charge
                money[c, M_OVER] += owed - charge
                due[slot, c] = 0
            money[c, M_INFLIGHT] -= inflight[ring, c]
            inflight[ring, c] = 0
        for _ in range(arrivals[k]):
            at_ms = k * step_ms + int(_uniform(rng) * step_ms)
            n = 0
            for c in range(n_camps):
                if _uniform(rng) * 1e6 >= camps[c, C_REACH_PPM]:
                    continue
                if money[c, M_BILLED] + money[c, M_INFLIGHT] >= camps[c, C_BUDGET]:
                    if money[c, M_CAPPED] < 0:
                        money[c, M_CAPPED] = at_ms
                    continue
                if throttle[c] < 1.0 and _uniform(rng) >= throttle[c]:
                    continue
                bid[n] = camps[c, C_BID]
                quality[n] = max(1, int(camps[c, C_QUALITY] * _relevance(rng)))
                who[n] = c
                keys[n] = _next(rng)
                n += 1
            if n == 0:
                continue
            won = clear_gsp(bid[:n], quality[:n], who[:n], who[:n], keys[:n],
                            params[P_RESERVE], params[P_INCREMENT], params[P_SLOTS], out)
            for w in range(won):
                c = who[out[w, OUT_INDEX]]
                price = out[w, OUT_PRICE]
                money[c, M_PRICE_SUM] += price
                expected = price * camps[c, C_CTR_EST_PPM] // 1_000_000
                inflight[ring, c] += expected
                money[c, M_INFLIGHT] += expected
                if _uniform(rng) * 1e6 >= camps[c, C_CTR_PPM]:
                    continue
                delay = -params[P_DELAY_MS] * math.log(1.0 - _uniform(rng))
                landed = (at_ms + min(int(delay), params[P_TTL_MS])) // step_ms
                if landed < n_steps:  # later: billed to the next day, outside this one
                    due[max(landed, k + 1) % horizon, c] += price
        if (k + 1) % params[P_SAMPLE] == 0:
            for c in range(n_camps):
                spend[(k + 1) // params[P_SAMPLE], c] = money[c, M_BILLED]


# -- the scenario -------------------------------------------------------------------------


def _hourly_profile(rng: np.random.Generator, noise: float) -> npt.NDArray[np.float64]:
    """One day's hourly traffic factors: the default shape with hour-level noise."""
    shape = np.asarray(DEFAULT_SHAPE, np.float64)
    return np.asarray(shape * rng.lognormal(0.0, noise, 24) / shape.sum(), np.float64)


def _step_shares(hourly: npt.NDArray[np.float64], step_s: float) -> npt.NDArray[np.float64]:
    """Share of the day's traffic in each step: hourly weights interpolated between hour
    centres (traffic ramps rather than jumps on the hour), normalised to sum 1."""
    n_steps = round(DAY_S / step_s)
    mid_h = (np.arange(n_steps) + 0.5) * step_s / 3600
    centres = np.concatenate(([-0.5], np.arange(24) + 0.5, [24.5]))
    values = np.concatenate(([hourly[-1]], hourly, [hourly[0]]))
    rate = np.interp(mid_h, centres, values)
    return np.asarray(rate / rate.sum(), np.float64)


def _campaign_table(specs: Sequence[CampaignSpec]) -> npt.NDArray[np.int64]:
    table = np.zeros((len(specs), C_COLS), np.int64)
    for s in specs:
        table[s.index] = (s.budget, s.bid, s.quality, s.ctr_ppm, s.ctr_estimate_ppm,
                          s.reach_ppm)
    return table


def _params(scenario: Scenario, step_ms: int, n_steps: int) -> npt.NDArray[np.int64]:
    params = np.zeros(P_LEN, np.int64)
    params[P_STEP_MS] = step_ms
    params[P_N_STEPS] = n_steps
    params[P_SLOTS] = scenario.slots
    params[P_RESERVE] = scenario.reserve_micros
    params[P_INCREMENT] = scenario.increment_micros
    params[P_DELAY_MS] = round(scenario.click_delay_s * 1000)
    params[P_TTL_MS] = scenario.token_ttl_s * 1000
    params[P_SAMPLE] = max(1, MINUTE_MS // step_ms)
    return params


def _calibrate(scenario: Scenario, specs: Sequence[CampaignSpec], seed: int
               ) -> npt.NDArray[np.float64]:
    """What each campaign would spend over the day in the unpaced market (every campaign at
    throttle 1, no budget), from the expected cost of its wins in a sample of auctions."""
    table = _campaign_table(specs)
    table[:, C_BUDGET] = 2**62  # no budget: measure demand
    n = len(specs)
    money = np.zeros((n, M_COLS), np.int64)
    money[:, M_CAPPED] = -1
    params = _params(scenario, DAY_S * 1000, 1)
    _advance(0, 1, np.array([scenario.calibration_auctions], np.int64), table,
             np.ones(n), money, np.zeros((1, n), np.int64), np.zeros((1, n), np.int64),
             np.zeros((2, n), np.int64), np.array([seed], np.uint64), params)
    scale = scenario.auctions / scenario.calibration_auctions
    return np.array([money[s.index, M_PRICE_SUM] * s.ctr_ppm / MICROS * scale for s in specs],
                    np.float64)


def _campaigns(scenario: Scenario, rng: np.random.Generator, seed: int) -> list[CampaignSpec]:
    """Campaigns whose budgets share out the market, most with ample demand.

    ``demand`` is measured in the unpaced market, every campaign entering every auction it
    is eligible for: ample ones (six in seven) would spend ``scenario.demand`` budgets
    there (3-10 by default). Reach and competition depend on each other, so each one's
    reach is solved over a few calibration passes and the demand reported is the measured
    one (below the wanted one where the reach hit 100%). Short ones get a budget 1.5x what
    they would spend winning every auction they are eligible for at their full bid: they
    cannot spend it whatever the competition.
    """
    n = scenario.campaigns
    short = np.array([i % 7 == 6 for i in range(n)])
    low, high = (math.log(d) for d in scenario.demand)
    wanted = np.array([0.0 if short[i] else math.exp(rng.uniform(low, high))
                       for i in range(n)])
    weight = np.clip(rng.lognormal(0.0, 0.6, n), 0.3, 3.0)
    specs: list[CampaignSpec] = []
    for i in range(n):
        ctr = int(rng.uniform(0.01, 0.04) * MICROS)
        specs.append(CampaignSpec(
            index=i, mode=MODES[i % len(MODES)], demand=float(wanted[i]), budget=0,
            bid=int(np.clip(rng.lognormal(math.log(0.8), 0.4), 0.2, 3.0) * 100) * 10_000,
            quality=int(rng.integers(300, 1001)), ctr_ppm=ctr,
            ctr_estimate_ppm=int(ctr * rng.uniform(0.8, 1.2)),
            reach_ppm=int(rng.uniform(0.01, 0.03) * MICROS) if short[i] else 200_000))
    budgets = np.zeros(n)
    for _ in range(4):
        demand = _calibrate(scenario, specs, seed)
        # Budgets share out what the market spends now, so the wanted demands fit in it.
        budgets = weight * demand[~short].sum() / float(np.dot(weight, wanted))
        specs = [s if short[s.index] else replace(s, reach_ppm=int(np.clip(
            s.reach_ppm * wanted[s.index] * budgets[s.index] / max(demand[s.index], 1.0),
            10_000, MICROS))) for s in specs]
    demand = _calibrate(scenario, specs, seed)
    out = []
    for s in specs:
        budget = int(budgets[s.index])
        if short[s.index]:  # 1.5x the ceiling: every eligible auction won, each click at the bid
            budget = int(1.5 * s.reach_ppm * scenario.auctions / MICROS * s.bid * s.ctr_ppm
                         / MICROS)
        budget = max(1, budget // MICROS) * MICROS  # whole dollars
        out.append(replace(s, budget=budget, demand=float(demand[s.index]) / budget))
    return out


def build(scenario: Scenario) -> World:
    """The campaigns, today's traffic and the curve the controller learned, from the seed."""
    if scenario.campaigns < 1 or scenario.auctions < 1 or scenario.step_s <= 0:
        raise ValueError("campaigns, auctions and step_s must be positive")
    step_ms = round(scenario.step_s * 1000)
    control = round(scenario.control_s * 1000)
    if DAY_S * 1000 % step_ms or control % step_ms or control <= 0:
        raise ValueError("step_s must divide the day and control_s must be a multiple of it")
    if MINUTE_MS % step_ms and step_ms % MINUTE_MS:
        raise ValueError("step_s must divide a minute or be a multiple of it")
    rng = np.random.default_rng(scenario.seed)
    day = campaign_day(ZONE, int(DATE.timestamp() * 1000))

    history = [rng.poisson(scenario.auctions * rng.lognormal(0.0, scenario.day_noise)
                           * _hourly_profile(rng, scenario.hour_noise)).tolist()
               for _ in range(3)]
    curve = TrafficCurve.learn(history, min_auctions=min(10_000, scenario.auctions / 2))
    today = _hourly_profile(rng, scenario.hour_noise)
    volume = scenario.auctions * rng.lognormal(0.0, scenario.day_noise)
    arrivals = rng.poisson(volume * _step_shares(today, step_ms / 1000)).astype(np.int64)

    kernel_seed = int(rng.integers(0, 2**63))
    specs = _campaigns(scenario, rng, kernel_seed ^ 0x5EED)
    minutes = [day.start_ms + m * MINUTE_MS for m in range(1441)]
    modes: tuple[Mode, ...] = ("even", "traffic_shaped", "asap")
    targets = {mode: np.array([target_fraction(mode, curve, day, t, ZONE) for t in minutes],
                              np.float64) for mode in modes}
    return World(scenario, day, curve, specs, arrivals, targets, kernel_seed)


# -- a run --------------------------------------------------------------------------------


def _target(table: npt.NDArray[np.float64], offset_ms: int) -> float:
    """The target share ``offset_ms`` into the day. The curves are linear within each hour,
    so interpolating the per-minute table is exact."""
    if offset_ms >= (len(table) - 1) * MINUTE_MS:
        return 1.0
    m, rest = divmod(offset_ms, MINUTE_MS)
    lo = float(table[m])
    return lo + (float(table[m + 1]) - lo) * rest / MINUTE_MS


def run(world: World, *, pacing: bool, config: ControllerConfig | None = None) -> Run:
    """One day, with the controller (``pacing``) or at throttle 1; the hard cap in both."""
    config = config or ControllerConfig()
    scenario, day, specs = world.scenario, world.day, world.specs
    step_ms = round(scenario.step_s * 1000)
    n_steps = DAY_S * 1000 // step_ms
    per_tick = round(scenario.control_s * 1000) // step_ms
    n = len(specs)
    camps = _campaign_table(specs)
    throttle = np.ones(n)
    money = np.zeros((n, M_COLS), np.int64)
    money[:, M_CAPPED] = -1
    inflight = np.zeros((max(1, scenario.inflight_s * 1000 // step_ms), n), np.int64)
    due = np.zeros((scenario.token_ttl_s * 1000 // step_ms + 2, n), np.int64)
    params = _params(scenario, step_ms, n_steps)
    sample = int(params[P_SAMPLE])
    spend = np.zeros((n_steps // sample + 1, n), np.int64)
    rng = np.array([world.kernel_seed], np.uint64)
    states = [PacerState() for _ in specs]
    throttles = np.ones((1441, n))
    horizon_ms = round(config.horizon_s * 1000)

    def control(k: int) -> None:
        offset = k * step_ms
        now_ms = day.start_ms + offset
        ahead_ms = now_ms + horizon_ms
        density_now = world.curve.density(retailer_hour(ZONE, now_ms))
        density_ahead = world.curve.density(retailer_hour(ZONE, ahead_ms))
        for s in specs:
            table = world.targets[s.mode]
            state = update(
                states[s.index], config, budget=s.budget,
                projected=int(money[s.index, M_BILLED] + money[s.index, M_INFLIGHT]),
                target_now=_target(table, offset), target_ahead=_target(table, offset + horizon_ms),
                density_now=density_now, density_ahead=density_ahead, now_ms=now_ms, day=day.day)
            states[s.index] = state
            throttle[s.index] = 1.0 if s.mode == "asap" else state.throttle

    minute = -1
    for k0 in range(0, n_steps, per_tick):
        if pacing:
            control(k0)
        if k0 * step_ms // MINUTE_MS != minute:  # held until the next minute with a tick
            minute = k0 * step_ms // MINUTE_MS
            throttles[minute:] = throttle
        _advance(k0, min(k0 + per_tick, n_steps), world.arrivals, camps, throttle, money,
                 inflight, due, spend, rng, params)

    per_minute = spend  # one sample a minute, or one a step when steps are longer:
    if sample * step_ms > MINUTE_MS:  # then each is held over the step's minutes
        per_minute = np.repeat(spend, sample * step_ms // MINUTE_MS, axis=0)[:1441]
    results = [_result(s, money[s.index], per_minute[:, s.index], world.targets[s.mode],
                       throttles[:, s.index]) for s in specs]
    out = Run(pacing, results, per_minute, throttles)
    out.summary = summarize(out)
    return out


def _result(spec: CampaignSpec, money: npt.NDArray[np.int64], spend: npt.NDArray[np.int64],
            target: npt.NDArray[np.float64], throttle: npt.NDArray[np.float64]
            ) -> CampaignResult:
    error_max = error_mean = None
    starved = 0.0
    if spec.mode != "asap":
        behind = target - spend / spec.budget
        error = np.abs(behind) * 100
        error_max, error_mean = float(error.max()), float(error.mean())
        starved = float(np.count_nonzero((behind > 0.01) & (throttle >= 1.0))) / 60
    capped = int(money[M_CAPPED])
    return CampaignResult(
        index=spec.index, mode=spec.mode, ample=spec.ample, budget=spec.budget,
        spend=int(money[M_BILLED]), over=int(money[M_OVER]),
        utilisation=100 * int(money[M_BILLED]) / spec.budget,
        error_max=error_max, error_mean=error_mean,
        out_at_s=capped // 1000 if capped >= 0 else None, starved_h=starved)


# -- the report ---------------------------------------------------------------------------

UTILISATION_MIN = 97.0  # % of the budget, campaigns with ample demand
EVEN_ERROR_MAX = 5.0  # mean |spend - target| for `even`, % of the budget
EARLIEST_OUT_S = 20 * 3600  # no even/traffic_shaped campaign capped out before 20:00


def summarize(run: Run) -> dict[str, Any]:
    """The targets' figures for one run, and whether each holds."""
    rs = run.results
    ample = [r for r in rs if r.ample]
    # A campaign short of demand cannot follow any curve: the target is for ample ones.
    even = [r.error_mean for r in ample if r.mode == "even" and r.error_mean is not None]
    early = [r.index for r in rs if r.mode != "asap" and r.out_at_s is not None
             and r.out_at_s < EARLIEST_OUT_S]
    util_min = min((r.utilisation for r in ample), default=100.0)
    budgets = sum(r.budget for r in rs)
    return {
        "ample_utilisation_min": round(util_min, 2),
        "ample_below_target": sum(r.utilisation < UTILISATION_MIN for r in ample),
        "ample": len(ample),
        "utilisation_ok": util_min >= UTILISATION_MIN,
        "billed_within_budget": all(r.spend <= r.budget for r in rs),
        "over_delivery_micros": sum(r.over for r in rs),
        "over_delivery_pct": round(100 * sum(r.over for r in rs) / budgets, 3),
        "even_error_mean_max": round(max(even, default=0.0), 2),
        "even_error_ok": max(even, default=0.0) <= EVEN_ERROR_MAX,
        "out_before_20h": early,
        "out_before_20h_ok": not early,
        "spend_micros": sum(r.spend for r in rs),
        "budget_micros": budgets,
    }


def simulate(scenario: Scenario, config: ControllerConfig | None = None) -> Simulation:
    world = build(scenario)
    return Simulation(world, run(world, pacing=True, config=config),
                      run(world, pacing=False, config=config))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pacing.simulate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Scenario()
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--campaigns", type=int, default=defaults.campaigns)
    parser.add_argument("--auctions", type=int, default=defaults.auctions,
                        help="expected ad requests over the day")
    parser.add_argument("--step-s", type=float, default=defaults.step_s)
    parser.add_argument("--control-s", type=float, default=defaults.control_s)
    parser.add_argument("--demand", type=float, nargs=2, default=defaults.demand,
                        metavar=("LOW", "HIGH"), help="ample campaigns' demand range")
    parser.add_argument("--out", type=Path, default=Path("docs/pacing-simulation.png"),
                        help="PNG to write ('' for none)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = parser.parse_args(argv)
    scenario = Scenario(seed=args.seed, campaigns=args.campaigns, auctions=args.auctions,
                        step_s=args.step_s, control_s=max(args.control_s, args.step_s),
                        demand=(args.demand[0], args.demand[1]))
    from pacing.simreport import plot, report  # matplotlib only when a chart is drawn

    started = time.perf_counter()
    sim = simulate(scenario)
    wall = time.perf_counter() - started
    if str(args.out) not in ("", "."):
        plot(sim, args.out)
    if args.json:
        print(json.dumps({"seed": scenario.seed, "campaigns": scenario.campaigns,
                          "auctions": int(sim.world.arrivals.sum()),
                          "step_s": scenario.step_s, "control_s": scenario.control_s,
                          "pacing": sim.paced.summary, "baseline": sim.baseline.summary,
                          "wall_s": round(wall, 1)}))
    else:
        print(report(sim))
        print(f"simulated in {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
