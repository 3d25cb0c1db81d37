"""Benchmark: GSP clearing of 10,000 candidates in numba vs numpy vs pure Python.

Also times the fused kernel on production-width tables (10-column rows, 19-column
campaigns) with the shopper signals off and on (a typical tail: 20 product marks, 5
blocked and 3 store-allowed campaigns, 10 bid multipliers, stock checked in two columns,
low-stock and fatigue scaling) and prints the on / off ratio; those two are timed
interleaved, call by call, so drift on a busy machine hits both alike.

Run from the repo root: ``python loadtest/bench_kernel.py``. Prints a table and one JSON
line. Times are per call from Python (numba dispatch included, since the server pays it
too), median over repeats with the best shown beside it; numba is warmed first so no
compilation is timed. The ratios are what to compare across machines: targets are numba
>= 20x pure Python and faster than numpy. Nothing is asserted except that every
implementation returns the same winners and prices.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from auction import (  # noqa: E402  (needs the sys.path entry above when run as a script)
    CAMP_COLS,
    CAMP_FLAGS,
    CAMP_SUPPRESS_DAYS,
    FLAG_NEEDS_STORE,
    P_EXCLUDE_PRODUCT,
    P_FATIGUE,
    P_INCREMENT,
    P_LOW_STOCK,
    P_MIN_MATCH,
    P_N_BLOCK,
    P_N_MULT,
    P_N_PMARK,
    P_N_STORE,
    P_NOW_MS,
    P_QUERY_TOKENS,
    P_RESERVE,
    P_SEED,
    P_SLOTS,
    P_STOCK_A,
    P_STOCK_B,
    P_TAIL,
    PARAMS_LEN,
    ROW_COLS,
    ROW_REPL,
    ROW_SUB,
    clear_gsp,
    clear_gsp_np,
    clear_gsp_py,
    select_and_clear,
    select_and_clear_py,
    tie_keys,
    warm_up,
)
from loadtest.provenance import git_sha, machine  # noqa: E402

N = 10_000
SLOTS = 4
N_CAMPAIGNS = 2_000
N_PRODUCTS = 8_000
RESERVE = 50_000
INCREMENT = 10_000
SEED = 20_240_607
NOW_MS = 1_700_000_000_000


def _columns(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bids log-normal around $0.60 CPC, quality a skewed CTR proxy, many campaigns."""
    bid = np.clip(rng.lognormal(np.log(600_000), 0.8, N), 10_000, 1_000_000_000).astype(np.int64)
    quality = np.clip(rng.beta(2.0, 8.0, N) * 1_000_000, 1, 1_000_000).astype(np.int64)
    campaign = rng.integers(0, N_CAMPAIGNS, N, dtype=np.int64)
    product = rng.integers(0, N_PRODUCTS, N, dtype=np.int64)
    return {"bid": bid, "quality": quality, "campaign": campaign, "product": product}


def _time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, best) microseconds per call."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000, min(samples) / 1000


def _interleaved(
    fns: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """(median, best) µs per call of each function, timed in alternation."""
    samples: dict[str, list[int]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter_ns()
            fn()
            samples[name].append(time.perf_counter_ns() - t0)
    return {n: (statistics.median(v) / 1000, min(v) / 1000) for n, v in samples.items()}


def _shopper_case(
    rng: np.random.Generator, rows4: np.ndarray, campaigns4: np.ndarray, params: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Production-width tables, and params with the shopper signals on and off.

    Returns (rows, campaigns, params_off, params_on, stock). Every row has a substitute
    (another row of its campaign) and a replenishment group; 5% of campaigns target
    stores and 20% suppress recent purchases; 5% of products are out of stock in both
    checked columns, 10% are low.
    """
    rows = np.full((N, ROW_COLS), -1, dtype=np.int64)
    rows[:, :4] = rows4
    rows[:, 4:ROW_SUB] = 0
    by_campaign = np.argsort(rows4[:, 0], kind="stable")
    nxt = np.empty(N, dtype=np.int64)
    nxt[by_campaign] = np.roll(by_campaign, -1)  # the next row of the same campaign, mostly
    rows[:, ROW_SUB] = np.where(rows4[nxt, 0] == rows4[:, 0], nxt, -1)
    rows[:, ROW_REPL] = rng.integers(0, 500, N)
    campaigns = np.zeros((N_CAMPAIGNS, CAMP_COLS), dtype=np.int64)
    campaigns[:, :4] = campaigns4
    campaigns[:, 4] = 65_536  # pacing gate open
    campaigns[:, CAMP_FLAGS] = np.where(rng.random(N_CAMPAIGNS) < 0.05, FLAG_NEEDS_STORE, 0)
    campaigns[:, CAMP_SUPPRESS_DAYS] = np.where(rng.random(N_CAMPAIGNS) < 0.2, 30, 0)
    stock = rng.integers(20, 400, (N_PRODUCTS, 4)).astype(np.uint16)
    stock[rng.random(N_PRODUCTS) < 0.05, :2] = 0
    stock[rng.random(N_PRODUCTS) < 0.10, 0] = 3

    off = np.zeros(PARAMS_LEN, dtype=np.int64)
    off[: len(params)] = params
    off[P_STOCK_A] = off[P_STOCK_B] = -1
    products = rng.choice(N_PRODUCTS, 20, replace=False)
    days = rng.integers(0, 60, 20) + 1  # bought 0..59 days ago
    exposures = rng.integers(0, 6, 20)
    marks = np.stack([products, days | exposures << 16], axis=1).ravel()
    slots = rng.choice(N_CAMPAIGNS, 5 + 3 + 10, replace=False)
    mults = np.stack([slots[8:], rng.integers(800, 2000, 10)], axis=1).ravel()
    tail = np.concatenate([marks, slots[:5], slots[5:8], mults]).astype(np.int64)
    on = np.zeros(P_TAIL + len(tail), dtype=np.int64)
    on[:PARAMS_LEN] = off
    on[P_STOCK_A], on[P_STOCK_B] = 0, 1
    on[P_LOW_STOCK] = 5
    on[P_FATIGUE] = 3
    on[P_N_PMARK], on[P_N_BLOCK], on[P_N_STORE], on[P_N_MULT] = 20, 5, 3, 10
    on[P_TAIL:] = tail
    return rows, campaigns, off, on, stock


def main() -> None:
    rng = np.random.default_rng(SEED)
    cols = _columns(rng)
    bid, quality, campaign, product = (
        cols["bid"],
        cols["quality"],
        cols["campaign"],
        cols["product"],
    )
    tiekey = tie_keys(SEED, campaign, product)
    out = np.zeros((SLOTS, 2), dtype=np.int64)
    args = (bid, quality, campaign, product, tiekey, RESERVE, INCREMENT, SLOTS)

    warm_up()

    def run_numba() -> list[tuple[int, int]]:
        n = clear_gsp(*args, out)
        return [(int(i), int(p)) for i, p in out[:n]]

    expected = clear_gsp_py(*args)
    assert run_numba() == expected, "numba disagrees with the reference"
    assert clear_gsp_np(*args) == expected, "numpy disagrees with the reference"

    # The fused kernel over a 10k-row index: every row matched one of two query tokens
    # and a third of them matched both, as they would for a two-word search.
    rows = np.stack([campaign, product, bid, quality], axis=1).astype(np.int64)
    campaigns = np.zeros((N_CAMPAIGNS, 4), dtype=np.int64)
    campaigns[:, 0] = rng.random(N_CAMPAIGNS) < 0.9  # some out of budget
    campaigns[:, 1] = NOW_MS - 86_400_000
    campaigns[:, 2] = np.where(rng.random(N_CAMPAIGNS) < 0.05, NOW_MS - 1, 0)  # some ended
    campaigns[:, 3] = np.arange(N_CAMPAIGNS) + 10_000
    cand = np.concatenate([np.arange(N), rng.choice(N, N // 3, replace=False)]).astype(np.int64)
    rng.shuffle(cand)
    params = np.zeros(PARAMS_LEN, dtype=np.int64)
    params[P_NOW_MS] = NOW_MS
    params[P_RESERVE] = RESERVE
    params[P_INCREMENT] = INCREMENT
    params[P_SLOTS] = SLOTS
    params[P_SEED] = SEED
    params[P_EXCLUDE_PRODUCT] = -1
    params[P_QUERY_TOKENS] = 2
    params[P_MIN_MATCH] = 1
    scratch = np.zeros(N, dtype=np.int32)

    def run_fused() -> list[tuple[int, int]]:
        n = select_and_clear(cand, rows, campaigns, params, scratch, out)
        return [(int(r), int(p)) for r, p in out[:n]]

    assert run_fused() == select_and_clear_py(cand, rows, campaigns, params), "fused disagrees"
    assert not scratch.any()

    # The same index at production width, shopper signals off and on.
    rows_w, campaigns_w, params_off, params_on, stock = _shopper_case(rng, rows, campaigns, params)
    scratch_w = np.zeros(N + N_PRODUCTS, dtype=np.int32)
    empty_stock = np.zeros((0, 0), dtype=np.uint16)

    def run_wide(prm: np.ndarray, stk: np.ndarray) -> list[tuple[int, int]]:
        n = select_and_clear(cand, rows_w, campaigns_w, prm, scratch_w, out, stk)
        return [(int(r), int(p)) for r, p in out[:n]]

    for prm, stk in ((params_off, empty_stock), (params_on, stock)):
        twin = select_and_clear_py(cand, rows_w, campaigns_w, prm, stk, scratch_len=N + N_PRODUCTS)
        assert run_wide(prm, stk) == twin, "fused disagrees with the twin on wide tables"
        assert not scratch_w.any()
    signals = _interleaved(
        {
            "numba signals off": lambda: select_and_clear(
                cand, rows_w, campaigns_w, params_off, scratch_w, out, empty_stock
            ),
            "numba signals on": lambda: select_and_clear(
                cand, rows_w, campaigns_w, params_on, scratch_w, out, stock
            ),
        },
        2000,
    )

    timings = {
        "numba clear_gsp": _time(lambda: clear_gsp(*args, out), 3000),
        "numpy clear_gsp_np": _time(lambda: clear_gsp_np(*args), 300),
        "python clear_gsp_py": _time(lambda: clear_gsp_py(*args), 30),
        "numba select_and_clear": _time(
            lambda: select_and_clear(cand, rows, campaigns, params, scratch, out), 2000
        ),
        "python select_and_clear_py": _time(
            lambda: select_and_clear_py(cand, rows, campaigns, params), 10
        ),
        **signals,
    }

    print(f"GSP clearing, {N} candidates ({len(cand)} for the fused kernel), {SLOTS} slots")
    print(f"{'implementation':<28}{'median µs':>12}{'best µs':>12}")
    for name, (median, best) in timings.items():
        print(f"{name:<28}{median:>12.1f}{best:>12.1f}")
    off_us, on_us = signals["numba signals off"][0], signals["numba signals on"][0]
    print(f"shopper signals on / off (wide tables, interleaved medians): {on_us / off_us:.2f}x")

    numba_us = timings["numba clear_gsp"][0]
    numpy_us = timings["numpy clear_gsp_np"][0]
    python_us = timings["python clear_gsp_py"][0]
    result: dict[str, Any] = {
        "bench": "kernel",
        "n": N,
        "slots": SLOTS,
        "numba_us": round(numba_us, 2),
        "numpy_us": round(numpy_us, 2),
        "python_us": round(python_us, 2),
        "numba_vs_python": round(python_us / numba_us, 1),
        "numba_vs_numpy": round(numpy_us / numba_us, 1),
        "select_and_clear_us": round(timings["numba select_and_clear"][0], 2),
        "select_and_clear_py_us": round(timings["python select_and_clear_py"][0], 2),
        "signals_off_us": round(off_us, 2),
        "signals_on_us": round(on_us, 2),
        "signals_on_vs_off": round(on_us / off_us, 2),
        "machine": machine(),
        "versions": {
            "python": platform.python_version(),
            "numba": numba.__version__,
            "numpy": np.__version__,
        },
        "git_sha": git_sha(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
