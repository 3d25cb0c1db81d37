"""Benchmark: GSP clearing of 10,000 candidates in numba vs numpy vs pure Python.

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
    P_EXCLUDE_PRODUCT,
    P_INCREMENT,
    P_MIN_MATCH,
    P_NOW_MS,
    P_QUERY_TOKENS,
    P_RESERVE,
    P_SEED,
    P_SLOTS,
    PARAMS_LEN,
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
    }

    print(f"GSP clearing, {N} candidates ({len(cand)} for the fused kernel), {SLOTS} slots")
    print(f"{'implementation':<28}{'median µs':>12}{'best µs':>12}")
    for name, (median, best) in timings.items():
        print(f"{name:<28}{median:>12.1f}{best:>12.1f}")

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
