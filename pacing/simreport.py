"""The pacing simulator's output: the table of ``python -m pacing.simulate`` and its chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pacing.simulate import (
    AMPLE,
    EVEN_ERROR_MAX,
    MICROS,
    MINUTE_MS,
    UTILISATION_MIN,
    Simulation,
)

__all__ = ["plot", "report"]


def _clock(at_s: int | None) -> str:
    return "-" if at_s is None else f"{at_s // 3600:02d}:{at_s // 60 % 60:02d}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:5.1f}"


def report(sim: Simulation) -> str:
    """The per-campaign table (pacing beside baseline) and the targets checked on each."""
    w = sim.world
    lines = [
        f"seed {w.scenario.seed}: {len(w.specs)} campaigns, {int(w.arrivals.sum()):,} ad "
        f"requests, step {w.scenario.step_s:g} s, control every {w.scenario.control_s:g} s",
        "demand: budgets it would spend at throttle 1 in the unpaced market (ample >= "
        f"{AMPLE:g}); err: |billed - target| sampled every minute, % of budget; starved: "
        "hours behind at throttle 1; out at: hard cap first closed",
        "",
        f"{'':37}{'-- pacing on --':^53}  {'-- baseline: no pacing --':^38}",
        f"{'id':>3} {'mode':<15}{'demand':>7} {'budget$':>8}  {'spend$':>9} {'util%':>6} "
        f"{'over$':>6} {'errmax':>6} {'errmean':>7} {'starved':>7} {'out at':>6}  "
        f"{'spend$':>9} {'util%':>6} {'over$':>6} {'errmean':>7} {'out at':>6}",
    ]
    for s, p, b in zip(w.specs, sim.paced.results, sim.baseline.results, strict=True):
        lines.append(
            f"{s.index:>3} {s.mode:<15}{s.demand:>6.1f}x {s.budget / MICROS:>8.0f}  "
            f"{p.spend / MICROS:>9.2f} {p.utilisation:>6.1f} {p.over / MICROS:>6.2f} "
            f"{_pct(p.error_max):>6} {_pct(p.error_mean):>7} "
            f"{'-' if s.mode == 'asap' else f'{p.starved_h:.1f}':>7} {_clock(p.out_at_s):>6}  "
            f"{b.spend / MICROS:>9.2f} {b.utilisation:>6.1f} {b.over / MICROS:>6.2f} "
            f"{_pct(b.error_mean):>7} {_clock(b.out_at_s):>6}")
    runs = (sim.paced, sim.baseline)
    rows: list[tuple[str, ...]] = [
        (f"ample campaigns: utilisation >= {UTILISATION_MIN:g}% (lowest)",
         *(f"{m['ample_utilisation_min']:.1f}% ({m['ample_below_target']}/{m['ample']} "
           f"below) {_ok(m['utilisation_ok'])}" for m in (r.summary for r in runs))),
        ("billed <= budget; over-delivery (uncharged)",
         *(f"{_ok(m['billed_within_budget'])}; ${m['over_delivery_micros'] / MICROS:.2f} = "
           f"{m['over_delivery_pct']:.3f}% of budgets" for m in (r.summary for r in runs))),
        (f"ample even: mean error <= {EVEN_ERROR_MAX:g}% (worst)",
         *(f"{m['even_error_mean_max']:.1f}% {_ok(m['even_error_ok'])}"
           for m in (r.summary for r in runs))),
        ("even/traffic_shaped out before 20:00",
         *(f"{len(m['out_before_20h'])} {_ok(m['out_before_20h_ok'])}"
           for m in (r.summary for r in runs))),
    ]
    lines += ["", f"{'target':<46} {'pacing on':<36} {'baseline'}"]
    lines += [f"{name:<46} {paced:<36} {base}" for name, paced, base in rows]
    return "\n".join(lines)


def _ok(flag: bool) -> str:
    return "ok" if flag else "MISSED"


def plot(sim: Simulation, path: Path) -> None:
    """Cumulative spend against target for one campaign of each mode (and the baseline of
    the `even` one), their throttles, and the day's traffic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = sim.world
    hours = np.arange(1441) / 60
    picks = [next((s for s in w.specs if s.mode == mode and s.ample), None)
             for mode in ("even", "traffic_shaped", "asap")]
    fig, (ax_spend, ax_throttle, ax_traffic) = plt.subplots(
        3, 1, figsize=(10, 10), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.2]})
    for spec, colour in zip(picks, ("tab:blue", "tab:green", "tab:red"), strict=True):
        if spec is None:
            continue
        label = f"#{spec.index} {spec.mode} (demand {spec.demand:.1f}x)"
        share = sim.paced.spend[:, spec.index] / spec.budget * 100
        ax_spend.plot(hours, share, color=colour, label=label)
        if spec.mode != "asap":
            ax_spend.plot(hours, w.targets[spec.mode] * 100, color=colour, ls=":",
                          label=f"target ({spec.mode})")
        ax_throttle.plot(hours, sim.paced.throttle[:, spec.index], color=colour, label=label)
    if picks[0] is not None:
        base = sim.baseline.spend[:, picks[0].index] / picks[0].budget * 100
        ax_spend.plot(hours, base, color="tab:gray", ls="--",
                      label=f"#{picks[0].index} even, no pacing (baseline)")
    ax_spend.set_ylabel("billed, % of daily budget")
    ax_spend.set_ylim(0, 105)
    ax_spend.legend(loc="upper left", fontsize=8)
    ax_spend.set_title(f"Pacing simulation (seed {w.scenario.seed}, {len(w.specs)} campaigns)")
    ax_throttle.set_ylabel("throttle")
    ax_throttle.set_ylim(0, 1.05)
    step_per_min = max(1, MINUTE_MS // round(w.scenario.step_s * 1000))
    per_min = w.arrivals[: len(w.arrivals) // step_per_min * step_per_min]
    per_min = per_min.reshape(-1, step_per_min).sum(axis=1)
    x = np.arange(len(per_min)) * (len(hours) - 1) / len(per_min) / 60
    ax_traffic.plot(x, per_min * (1440 / len(per_min)), color="black", lw=0.6,
                    label="ad requests per minute")
    learned = np.array([w.curve.density(min(h, 23.99)) for h in hours]) * w.arrivals.sum() / 1440
    ax_traffic.plot(hours, learned, color="tab:orange", label="learned curve")
    ax_traffic.set_ylabel("requests / min")
    ax_traffic.set_xlabel("hour of day")
    ax_traffic.set_xticks(range(0, 25, 2))
    ax_traffic.legend(loc="upper left", fontsize=8)
    for ax in (ax_spend, ax_throttle, ax_traffic):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
