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
from auction.selection import (
    BIT_WORDS,
    CAMP_ELIGIBLE,
    CAMP_ID,
    CAMP_SEEN,
    MARK_EXPOSURE_SHIFT,
    OUT_COLS,
    P_SEED,
    P_SLOTS,
    ROW_CAMPAIGN,
    ROW_PRODUCT,
    SEG_WORDS,
)

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
    segments: tuple[int, ...] = (),
    stock_cols: tuple[int, int] = (-1, -1),
    low_stock: int = 0,
    fatigue: int = 0,
    min_quality: int = 0,
    min_ev: int = 0,
    marks: Sequence[tuple[int, int]] = (),
    blocked: Sequence[int] = (),
    store_ok: Sequence[int] = (),
    mults: Sequence[tuple[int, int]] = (),
    replenished: Sequence[int] = (),
) -> npt.NDArray[np.int64]:
    """A full params vector (shopper signals off unless given) with its tail appended."""
    words = [*query_bits, *[0] * (BIT_WORDS - len(query_bits))]
    segs = [*segments, *[0] * (SEG_WORDS - len(segments))]
    counts = [len(marks), len(blocked), len(store_ok), len(mults), len(replenished)]
    head = [now, reserve, increment, slots, seed, exclude, tokens, min_match, *words, n_extra,
            *segs, *stock_cols, low_stock, fatigue, min_quality, min_ev, *counts]
    assert len(head) == PARAMS_LEN
    tail = [
        *[v for pair in marks for v in pair],
        *blocked,
        *store_ok,
        *[v for pair in mults for v in pair],
        *replenished,
    ]
    return i64([*head, *tail])


def mark(days_since: int | None = None, exposures: int = 0) -> int:
    """A product mark: (days since the last purchase + 1, 0 = never) | exposures << 16."""
    days_field = 0 if days_since is None else days_since + 1
    return days_field | exposures << MARK_EXPOSURE_SHIFT


def stock_of(quantities: Sequence[Sequence[int]]) -> npt.NDArray[np.uint16]:
    """The kernel's (columns, products) stock array from one row per product (easier to
    read in tests); rows must have equal length."""
    if not quantities:
        return np.zeros((0, 0), dtype=np.uint16)
    return np.ascontiguousarray(np.array(quantities, dtype=np.uint16).T)


NO_STOCK = np.zeros((0, 0), dtype=np.uint16)


def select_all(
    cand: Sequence[int],
    rows: Sequence[Sequence[int]],
    campaigns: Sequence[Sequence[int]],
    prm: npt.NDArray[np.int64],
    stock: npt.NDArray[np.uint16] = NO_STOCK,
    *,
    scratch_len: int | None = None,
) -> Winners:
    """The fused kernel's result, after asserting the twin agrees and the state is restored.

    Checks that scratch comes back zeroed, that the campaigns table is unchanged but for
    the eligible counters (which must count what the twin counts) and that the wide
    ``out`` columns describe the reported row. ``scratch_len`` defaults to room for every
    product mark of the rows' products.
    """
    rows_a = i64(rows).reshape(-1, len(rows[0]) if len(rows) else 4)
    camps_a = i64(campaigns).reshape(-1, len(campaigns[0]) if len(campaigns) else 4)
    before = camps_a.copy()
    if scratch_len is None:
        scratch_len = len(rows_a) + max([0, *[int(p) + 1 for p in rows_a[:, ROW_PRODUCT]]])
    scratch = np.zeros(scratch_len, dtype=np.int32)
    out = np.full((max(int(prm[P_SLOTS]), 1), OUT_COLS), -7, dtype=np.int64)
    n = select_and_clear(i64(cand), rows_a, camps_a, prm, scratch, out, stock)
    assert not scratch.any()
    fast = [(int(r), int(p)) for r, p in out[:n, :2]]
    for r, _price, slot, product, cid in out[:n].tolist():
        assert (slot, product, cid) == (
            rows_a[r, ROW_CAMPAIGN], rows_a[r, ROW_PRODUCT], camps_a[slot, CAMP_ID]
        )
    counted: set[int] = set()
    twin = select_and_clear_py(
        cand, rows, campaigns, prm, stock, scratch_len=scratch_len, counted=counted
    )
    assert twin == fast
    own = [c for c in (CAMP_SEEN, CAMP_ELIGIBLE) if c < camps_a.shape[1]]
    rest = [c for c in range(camps_a.shape[1]) if c not in own]
    assert (camps_a[:, rest] == before[:, rest]).all()  # CAMP_MARK, CAMP_MULT restored
    if CAMP_ELIGIBLE < camps_a.shape[1]:
        tag = int(prm[P_SEED]) + 1
        grew = {s for s in range(len(camps_a))
                if camps_a[s, CAMP_ELIGIBLE] != before[s, CAMP_ELIGIBLE]}
        assert grew == {s for s in counted if before[s, CAMP_SEEN] != tag}
        assert all(camps_a[s, CAMP_ELIGIBLE] == before[s, CAMP_ELIGIBLE] + 1 for s in grew)
    return fast
