"""Kernel == twin over random tables with every shopper-signal column, tail and stock.

``harness.select_all`` asserts the agreement on winners and prices, that scratch is all
zero again, that the campaigns table is unchanged but for the eligible counters (so the
per-request ``CAMP_MARK`` / ``CAMP_MULT`` were reset) and that those counters match the
twin. Tables and params are sometimes cut short, as older callers pass them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from auction import P_N_BLOCK, P_N_MULT, P_N_PMARK, P_N_REPL, P_N_STORE, STOCK_UNKNOWN
from auction.selection import CAMP_COLS, GATE_OPEN, PARAMS_LEN_V1, ROW_COLS
from tests.auction.harness import mark, params, select_all

PROPS = settings(max_examples=150, deadline=None)

BIDS = st.one_of(st.sampled_from([400, 1000, 100, 50, 0]), st.integers(0, 10**9))
QUALITIES = st.one_of(st.sampled_from([500_000, 1_000_000, 1, 3, 0]), st.integers(0, 10**6))
# Few distinct segment words, so include / exclude hits are common; bit 63 is the sign.
SEG_WORD = st.sampled_from([0, 1, 2, 3, 1 << 40, -(2**63), -1])
SEG_MASK = st.tuples(SEG_WORD, SEG_WORD, SEG_WORD, SEG_WORD)
NO_SEGMENTS = (0, 0, 0, 0)
QTY = st.one_of(
    st.sampled_from([5, 0, 1, 2, 10, STOCK_UNKNOWN]), st.just(0), st.integers(0, 65_535)
)
MARKS = st.one_of(
    st.builds(lambda d, e: mark(d, e), st.one_of(st.none(), st.integers(0, 40)),
              st.sampled_from([0, 0, 1, 2, 5, 32_767])),
    st.integers(-(2**63), 2**63 - 1),  # garbage: only bits 0..30 count
)

Case = tuple[
    list[int], list[list[int]], list[list[int]], npt.NDArray[np.int64],
    npt.NDArray[np.uint16], int | None,
]


def mostly(usual: object, *others: object) -> st.SearchStrategy:
    """``usual`` four times in five, else one of ``others``: each rule bites in some
    examples without silencing every auction."""
    return st.sampled_from([usual] * (4 * len(others)) + list(others) if others else [usual])


@st.composite
def cases(draw: st.DrawFn, rich: bool = False) -> Case:
    """A random request. ``rich`` fixes the older filters open (live, in flight, open
    gates, no reserve) and keeps the tables full-width, so most rows reach the clearing and
    the shopper signals decide ranks and prices of several winners."""

    def pick(wild: st.SearchStrategy, tame: st.SearchStrategy) -> Any:
        return draw(tame if rich else wild)

    n_camps = pick(st.integers(2, 5), st.integers(3, 6))
    camp_cols = pick(mostly(CAMP_COLS, 4, 7, 9, 10, 11, 13, 17), st.just(CAMP_COLS))
    campaigns = []
    for _ in range(n_camps):
        c = [
            pick(mostly(1, 0), st.just(1)),  # CAMP_LIVE
            pick(mostly(0, 100, 500), st.just(0)),  # CAMP_START_MS
            pick(mostly(0, 500, 900), st.just(0)),  # CAMP_END_MS
            draw(mostly(len(campaigns), 0, 1)),  # CAMP_ID: sometimes shared by two slots
            pick(mostly(GATE_OPEN, 0, 1, 30_000, 70_000), st.just(GATE_OPEN)),  # CAMP_GATE
            draw(mostly(0, 1)),  # CAMP_SEEN (tag 1 = seed 0 already counted)
            draw(st.integers(0, 5)),  # CAMP_ELIGIBLE
            draw(mostly(0, 1, 3, 30)),  # CAMP_SUPPRESS_DAYS
            draw(mostly(0, 1, 2, 3)),  # CAMP_FLAGS
            0,  # CAMP_MARK: zero between calls
            0,  # CAMP_MULT: zero between calls
            *draw(SEG_MASK),  # include (used with FLAG_NEEDS_SEGMENT only)
            *draw(st.one_of(st.just(NO_SEGMENTS), st.just(NO_SEGMENTS), SEG_MASK)),  # exclude
        ]
        campaigns.append(c[:camp_cols])
    n_rows = pick(st.integers(2, 16), st.integers(4, 16))
    row_cols = pick(mostly(ROW_COLS, 4, 6, 8, 9), st.just(ROW_COLS))
    bit_words = min(max(row_cols - 4, 0), 4)
    rows = [
        [
            pick(mostly(draw(st.integers(0, n_camps - 1)), -1), st.integers(0, n_camps - 1)),
            draw(st.integers(0, 9)),
            pick(BIDS, st.integers(1, 10**6)),
            pick(QUALITIES, st.integers(1, 10**6)),
            *[draw(st.sampled_from([0, 0, 1, 3, -(2**63)])) for _ in range(4)],
            draw(st.integers(-2, n_rows)),  # ROW_SUB, sometimes out of range
            draw(mostly(-1, 0, 1, 2, 3)),  # ROW_REPL
        ][:row_cols]
        for _ in range(n_rows)
    ]
    # Chains: often point substitutes at rows of the same campaign.
    if row_cols > 8:
        for r in range(n_rows):
            if draw(st.booleans()):
                same = [s for s in range(n_rows) if rows[s][0] == rows[r][0]]
                rows[r][8] = draw(st.sampled_from(same))
    in_range = st.integers(0, n_rows - 1)
    extra = st.lists(st.one_of(in_range, in_range, in_range, st.sampled_from([-1, n_rows])),
                     min_size=2, max_size=30)
    cand = pick(extra, st.permutations(range(n_rows)).map(list))
    tokens = pick(mostly(0, 1, 2, 3), st.just(0))

    n_products = draw(mostly(10, *range(10)))
    n_cols = draw(mostly(2, 0, 1, 3))
    qty = st.one_of(st.integers(0, 12), st.just(STOCK_UNKNOWN)) if rich else QTY
    stock = np.array(  # the kernel's layout: one row per column (store)
        [[draw(qty) for _ in range(n_products)] for _ in range(n_cols)], dtype=np.uint16
    ).reshape(n_cols, n_products)

    slot = st.one_of(st.integers(0, n_camps - 1), st.sampled_from([-1, n_camps]))
    prm = params(
        now=pick(mostly(0, 100, 500, 899, 900), st.just(0)),
        reserve=pick(mostly(0, 50, 100, 1000), st.just(0)),
        increment=draw(st.sampled_from([0, 1, 10_000])),
        slots=pick(mostly(3, 0, 1, 2, 4), st.just(4)),
        seed=draw(st.sampled_from([0, 1, 2**40 + 3])),
        exclude=draw(mostly(-1, *range(10))),
        tokens=tokens,
        min_match=draw(st.integers(0, tokens)),
        query_bits=tuple(draw(st.sampled_from([0, 1, 3, -(2**63)])) for _ in range(bit_words)),
        n_extra=draw(st.integers(0, 4)),
        segments=draw(st.one_of(st.just(NO_SEGMENTS), SEG_MASK)),
        stock_cols=draw(mostly((0, 1), (0, -1), (-1, 1), (-1, -1), (1, 3), (3, -1))),
        low_stock=pick(st.sampled_from([0, 0, 3, 10, 70_000]), mostly(10, 0, 3, 70_000)),
        fatigue=pick(st.sampled_from([0, 0, 1, 3, 1000]), mostly(3, 0, 1, 1000)),
        min_quality=draw(mostly(0, 1, 200_000, 600_000)),
        min_ev=draw(mostly(0, 1, 100_000)),
        marks=draw(st.lists(st.tuples(st.integers(-1, 10), MARKS), max_size=10)),
        blocked=draw(st.lists(slot, max_size=2)),
        store_ok=draw(st.lists(slot, max_size=4)),
        mults=draw(st.lists(st.tuples(slot, st.sampled_from([-1, 0, 500, 1000, 1500, 3000])),
                            max_size=6)),
        replenished=draw(st.lists(st.integers(-1, 4), max_size=3)),
    )
    # Older or malformed callers: a cut vector, or counts claiming more than it holds.
    cut = pick(mostly(None, PARAMS_LEN_V1, 17, 19, 23, 28, 30), st.none())
    if cut is not None:
        prm = prm[:cut]
    if len(prm) > P_N_REPL and draw(mostly(False, True)):
        for at in (P_N_PMARK, P_N_BLOCK, P_N_STORE, P_N_MULT, P_N_REPL):
            prm[at] += draw(st.sampled_from([0, 1, 1000]))
    # Scratch sized for every product (None), or too short for some marks.
    scratch_len = draw(mostly(None, *range(n_rows, n_rows + 10)))
    return cand, rows, campaigns, prm, stock, scratch_len


def check(case: Case) -> None:
    cand, rows, campaigns, prm, stock, scratch_len = case
    winners = select_all(cand, rows, campaigns, prm, stock, scratch_len=scratch_len)
    assert len({r for r, _ in winners}) == len(winners)
    assert all(price >= 0 for _, price in winners)


@PROPS
@given(cases())
def test_kernel_matches_twin_and_restores_its_state(case: Case) -> None:
    check(case)


@PROPS
@given(cases(rich=True))
def test_kernel_matches_twin_in_crowded_auctions(case: Case) -> None:
    check(case)
