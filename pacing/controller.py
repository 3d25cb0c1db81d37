"""The pacing controller: how often a campaign may enter auctions, updated every few seconds.

The output is a *throttle*, the probability (0..1) that the campaign takes part in an
auction it is eligible for. The controller is a PI controller on the campaign's
cumulative spend error, with a feed-forward model of its demand:

- *feed-forward*: ``demand`` estimates what the campaign would spend per second at
  throttle 1 in an average-traffic hour: spend divided by *exposure* (seconds weighted by
  the throttle and the traffic density at the time) over roughly the last
  ``demand_tau_s`` seconds of exposure. Dividing the wanted spend rate by
  ``demand * density`` gives the throttle directly, so a campaign with 100x more demand
  than budget settles at 0.01 in one step rather than after many small corrections;
- *proportional*: the wanted rate closes the gap to the target curve one ``horizon``
  ahead (``target(t + horizon) - projected``) over that horizon;
- *integral*: the accumulated error (in budget shares, per horizon) is added to the gap,
  removing a steady bias in the demand model; clamped so it cannot wind up while the
  campaign lacks demand (throttle stuck at 1) or is paused.

``projected`` is the spend the campaign is already committed to: billed spend plus the
expected cost of ads served and not yet billed (clicks still to come). Controlling on it
rather than on billed spend alone removes the click delay from the loop.

Pure: the state is a small record the caller stores (``pacing.pacer`` keeps it in Redis so
any worker can take over the loop) and the simulator drives the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["ControllerConfig", "PacerState", "update"]


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    horizon_s: float = 900.0  # close the gap to the curve over this long
    demand_tau_s: float = 120.0  # memory of the demand estimate, in seconds of exposure
    ki: float = 0.5  # integral gain (budget shares per horizon of accumulated error)
    integral_limit: float = 0.05  # |integral| cap, in budget shares
    max_rise: float = 2.0  # throttle may at most double per update (no sudden bursts)
    min_observable: float = 0.005  # below this throttle the demand is not re-estimated


@dataclass(frozen=True, slots=True)
class PacerState:
    throttle: float = 1.0
    demand: float = 0.0  # micros per second at throttle 1 and density 1; 0 = unknown
    integral: float = 0.0
    projected: int = 0  # projected spend at the last update (micros)
    at_ms: int = 0  # time of the last update; 0 = never updated
    day: str = ""  # the campaign day the state belongs to


def update(
    state: PacerState,
    config: ControllerConfig,
    *,
    budget: int,
    projected: int,
    target_now: float,
    target_ahead: float,
    density_now: float,
    density_ahead: float,
    now_ms: int,
    day: str,
) -> PacerState:
    """The next state after observing ``projected`` (micros) at ``now_ms``.

    ``target_now``/``target_ahead``: target shares of the budget at now and one horizon
    ahead; ``density_*``: relative traffic (1.0 = the day's mean) at those times.
    """
    if budget <= 0:
        return replace(state, throttle=1.0, projected=projected, at_ms=now_ms, day=day)
    if state.day != day:  # a new day: keep what was learned about demand, reset the rest
        state = PacerState(throttle=state.throttle, demand=state.demand, projected=projected,
                           at_ms=now_ms, day=day)
        spent_delta = 0
        dt = 0.0
    else:
        spent_delta = max(0, projected - state.projected)
        dt = (now_ms - state.at_ms) / 1000 if state.at_ms else 0.0

    demand = state.demand
    # Exposure: the interval in seconds at throttle 1 and average traffic. Each interval
    # weighs by its exposure, so one click billed while the throttle and the night's
    # traffic are low moves the estimate by ~ its price / demand_tau_s. Dividing it by
    # that small exposure instead (an EMA of rates) could inflate the estimate a
    # hundredfold, pin the throttle below min_observable, where the estimate is no longer
    # updated, and starve the campaign for hours.
    exposure = dt * state.throttle * density_now
    if exposure > 0 and state.throttle >= config.min_observable:
        if demand <= 0:
            demand = spent_delta / exposure
        else:
            demand = (demand * config.demand_tau_s + spent_delta) / (
                config.demand_tau_s + exposure)

    error = target_now - projected / budget  # > 0: behind the curve
    integral = state.integral
    if dt > 0:
        integral += error * dt / config.horizon_s
        # Anti-windup: no credit for being behind while already at full throttle.
        if state.throttle >= 1.0 and error > 0:
            integral = state.integral
        integral = min(max(integral, -config.integral_limit), config.integral_limit)

    gap = (target_ahead + config.ki * integral) * budget - projected
    if target_now >= 1.0 or (demand <= 0 and gap > 0):
        throttle = 1.0  # asap, the day is over, or nothing known yet: let it run
    elif gap <= 0:
        throttle = 0.0
    else:
        wanted = gap / config.horizon_s  # micros per second
        throttle = wanted / (demand * max(density_ahead, 1e-6))
        floor = max(state.throttle, config.min_observable)
        throttle = min(throttle, floor * config.max_rise, 1.0)
    return PacerState(throttle=throttle, demand=demand, integral=integral,
                      projected=projected, at_ms=now_ms, day=day)
