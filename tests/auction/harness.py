"""Runs every clearing implementation on the same input and returns comparable results.

The numba kernels write into caller-owned arrays; these wrappers turn that into the
``[(index, price), ...]`` lists the Python twins return, so tests compare like for like.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from auction import (
    PARAMS_LEN,
    clear_gsp,
    clear_gsp_np,
    clear_gsp_py,
    select_and_clear,
    select_and_clear_py,
    tie_keys,
)
from auction.selection import BIT_WORDS

Winners = list[tuple[int, int]]


def i64(values: Sequence[int] | Sequence[Sequence[int]]) -> npt.NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


def keys_for(seed: int, campaign: Sequence[int], product: Sequence[int]) -> npt.NDArray[np.uint64]:
    return tie_keys(seed, i64(campaign), i64(product))


def clear_numba(
    bid: Sequence[int],
    quality: Sequence[int],
    campaign: Sequence[int],
    product: Sequence[int],
    tiekey: npt.NDArray[np.uint64],
    reserve: int,
    increment: int,
    n_slots: int,
) -> Winners:
    out = np.full((max(n_slots, 1), 2), -7, dtype=np.int64)
    n = clear_gsp(
        i64(bid),
        i64(quality),
        i64(campaign),
        i64(product),
        tiekey,
        reserve,
        increment,
        n_slots,
        out,
    )
    return [(int(i), int(p)) for i, p in out[:n]]


def clear_all(
    bid: Sequence[int],
    quality: Sequence[int],
    campaign: Sequence[int],
    product: Sequence[int],
    tiekey: npt.NDArray[np.uint64],
    reserve: int,
    increment: int,
    n_slots: int,
) -> Winners:
    """The numba result, after asserting the reference and numpy versions agree with it."""
    args = (bid, quality, campaign, product, tiekey, reserve, increment, n_slots)
    fast = clear_numba(*args)
    assert clear_gsp_py(*args) == fast
    cols = (i64(bid), i64(quality), i64(campaign), i64(product), tiekey)
    assert clear_gsp_np(*cols, reserve, increment, n_slots) == fast
    return fast


def params(
    *,
    now: int = 0,
    reserve: int = 0,
    increment: int = 0,
    slots: int = 4,
    seed: int = 0,
    exclude: int = -1,
    tokens: int = 0,
    min_match: int = 0,
    query_bits: tuple[int, ...] = (),
    n_extra: int = 0,
) -> npt.NDArray[np.int64]:
    words = [*query_bits, *[0] * (BIT_WORDS - len(query_bits))]
    p = i64([now, reserve, increment, slots, seed, exclude, tokens, min_match, *words, n_extra])
    assert len(p) == PARAMS_LEN
    return p


def select_all(
    cand: Sequence[int],
    rows: Sequence[Sequence[int]],
    campaigns: Sequence[Sequence[int]],
    prm: npt.NDArray[np.int64],
) -> Winners:
    """The fused kernel's result, after asserting scratch came back zeroed and the twin agrees."""
    rows_a = i64(rows).reshape(-1, len(rows[0]) if len(rows) else 4)
    scratch = np.zeros(len(rows_a), dtype=np.int32)
    out = np.full((max(int(prm[3]), 1), 2), -7, dtype=np.int64)
    n = select_and_clear(i64(cand), rows_a, i64(campaigns).reshape(-1, 4), prm, scratch, out)
    assert not scratch.any()
    fast = [(int(r), int(p)) for r, p in out[:n]]
    assert select_and_clear_py(cand, rows, campaigns, prm) == fast
    return fast
