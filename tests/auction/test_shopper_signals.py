"""Hand-worked examples for the shopper signals of the fused kernel (numba and twin agree).

Every case goes through ``harness.select_all``, which also asserts that the twin gives the
same winners and prices, that scratch comes back all zero, that the campaigns table is
unchanged but for the eligible counters (so ``CAMP_MARK`` / ``CAMP_MULT`` were reset)
and that the eligible counters count what the twin counts.

Numbers: bids in micros, qualities in ppm; score = bid * quality; a winner pays
``min(bid, max(reserve, next score // own quality + increment))``, the last one the
reserve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from auction import (
    CAMP_MARK,
    CAMP_MULT,
    FLAG_NEEDS_SEGMENT,
    FLAG_NEEDS_STORE,
    P_N_BLOCK,
    P_N_MULT,
    P_N_PMARK,
    P_N_REPL,
    P_N_STORE,
    PARAMS_LEN,
    PARAMS_LEN_V1,
    STOCK_UNKNOWN,
    select_and_clear,
)
from auction.selection import CAMP_ELIGIBLE, GATE_OPEN, OUT_COLS, OUT_PRODUCT
from tests.auction.harness import i64, mark, params, select_all, stock_of

M = 1_000_000
U = STOCK_UNKNOWN
SIGN = -(2**63)  # bit 63 of a word, the int64 sign bit


def _words(words: Sequence[int]) -> list[int]:
    return [*words, *[0] * (4 - len(words))]


def camp(
    cid: int,
    *,
    gate: int = GATE_OPEN,
    suppress: int = 0,
    flags: int = 0,
    inc: Sequence[int] = (),
    exc: Sequence[int] = (),
) -> list[int]:
    """A 19-column campaign: live, open flight, per-request columns zero."""
    return [1, 0, 0, cid, gate, 0, 0, suppress, flags, 0, 0, *_words(inc), *_words(exc)]


def row(slot: int, product: int, bid: int, quality: int, *, sub: int = -1,
        repl: int = -1) -> list[int]:
    """A 10-column row without common-token bits."""
    return [slot, product, bid, quality, 0, 0, 0, 0, sub, repl]


TWO = [camp(100), camp(101)]
# Row 0 (campaign 100, product 1) scores 1e12, row 1 (campaign 101, product 2) 5e11.
PAIR = [row(0, 1, M, M), row(1, 2, M // 2, M)]
PAIR_BOTH = [(0, 500_000), (1, 0)]  # row 0 pays 5e11 // 1e6, row 1 the reserve 0
PAIR_ONLY_1 = [(1, 0)]


# --- 5. purchase suppression ----------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "prod_mark", "expected"),
    [
        # Window 7 days. Bought 6 days ago: d = 7, d - 1 = 6 < 7: suppressed.
        pytest.param(7, mark(days_since=6), [], id="6-days-ago-in-7-day-window"),
        # Bought 7 days ago: d = 8, d - 1 = 7 is not < 7: back in the auction.
        pytest.param(7, mark(days_since=7), [(0, 5)], id="7-days-ago-edge"),
        # Bought today: d = 1, d - 1 = 0 < 7.
        pytest.param(7, mark(days_since=0), [], id="bought-today"),
        # Never bought (days field 0), only seen: not suppressed (fatigue is off).
        pytest.param(7, mark(exposures=5), [(0, 5)], id="never-bought"),
        # Window 0 = no suppression, even for a purchase today.
        pytest.param(0, mark(days_since=0), [(0, 5)], id="no-window"),
    ],
)
def test_purchase_suppression_window(window: int, prod_mark: int, expected: list) -> None:
    rows = [row(0, 1, M, M)]
    prm = params(reserve=5, marks=[(1, prod_mark)])
    assert select_all([0], rows, [camp(100, suppress=window)], prm) == expected


# --- 6. stock and substitution ----------------------------------------------------------


def test_substitution_follows_the_chain_to_the_second_hop() -> None:
    # Rows 0 -> 1 -> 2 of campaign slot 0; products 1 and 2 are out of stock (0 in the
    # checked column A), product 3 has 5, product 4 is unknown (65535).
    rows = [
        row(0, 1, M, M, sub=1),
        row(0, 2, 2 * M, M, sub=2),
        row(0, 3, 3 * M, 500_000),
        row(1, 4, M, M),
    ]
    stock = stock_of([[9], [0], [0], [5], [U]])
    prm = params(reserve=10, tokens=2, min_match=1, stock_cols=(0, -1))
    # Row 0 matched 1 of 2 tokens. It is out of stock: hop 1 (row 1) is out of stock too,
    # hop 2 (row 2) is available: the candidate is row 2 with its bid 3e6 and base quality
    # 5e5, scaled by row 0's relevance: 5e5 * 1 * 1 // 4 = 125_000; score 3.75e11.
    # Row 3 matched 2 of 2: quality 1e6, score 1e12, first; pays 3.75e11 // 1e6 = 375_000.
    # Row 2 (reported, not row 0) pays the reserve.
    assert select_all([0, 3, 3], rows, TWO, prm, stock) == [(3, 375_000), (2, 10)]


def test_substitute_reports_its_own_product_in_wide_out() -> None:
    rows = i64([row(0, 1, M, M, sub=1), row(0, 2, M, M)])
    out = np.zeros((2, OUT_COLS), np.int64)
    n = select_and_clear(i64([0]), rows, i64(TWO), params(stock_cols=(0, -1)),
                         np.zeros(5, np.int32), out, stock_of([[0], [0], [3]]))
    assert n == 1
    assert out[0, 0] == 1 and out[0, OUT_PRODUCT] == 2


SUB_ROWS = [row(0, 1, M, M, sub=1), row(0, 2, M, M)]
SUB_STOCK = stock_of([[0], [0], [3], [1]])  # product 1 out of stock, 2 and 3 available


@pytest.mark.parametrize(
    ("rows", "prm", "expected"),
    [
        pytest.param(SUB_ROWS, params(stock_cols=(0, -1)), [(1, 0)], id="substituted"),
        # Product 2 bought yesterday inside campaign 100's 30-day window (rule 5 for the
        # substitute's own product): no substitution, and no other hop.
        pytest.param(SUB_ROWS, params(stock_cols=(0, -1), marks=[(2, mark(days_since=1))]),
                     [], id="substitute-suppressed"),
        pytest.param(SUB_ROWS, params(stock_cols=(0, -1), exclude=2), [],
                     id="substitute-is-excluded-product"),
        pytest.param([row(0, 1, M, M, sub=1), row(0, 2, M, M, repl=4)],
                     params(stock_cols=(0, -1), replenished=[4]), [],
                     id="substitute-replenishment-suppressed"),
        pytest.param([row(0, 1, M, M, sub=1), row(0, 2, 100, M)],
                     params(stock_cols=(0, -1), reserve=500), [], id="substitute-below-reserve"),
        pytest.param([row(0, 1, M, M, sub=1), row(0, 2, M, 0)],
                     params(stock_cols=(0, -1)), [], id="substitute-without-quality"),
        # A refused substitute does not end the chain: row 1 is suppressed, row 2 is used.
        pytest.param([row(0, 1, M, M, sub=1), row(0, 2, M, M, sub=2), row(0, 3, M, M)],
                     params(stock_cols=(0, -1), marks=[(2, mark(days_since=1))]),
                     [(2, 0)], id="refused-hop-then-next"),
        # Substitutes stay within the campaign slot: the chain ends at row 1.
        pytest.param([row(0, 1, M, M, sub=1), row(1, 2, M, M)], params(stock_cols=(0, -1)),
                     [], id="substitute-of-another-campaign"),
        pytest.param([row(0, 1, M, M, sub=0)], params(stock_cols=(0, -1)), [], id="self-loop"),
        pytest.param([row(0, 1, M, M, sub=7)], params(stock_cols=(0, -1)), [],
                     id="substitute-out-of-range"),
        # The candidate's own product purchased: dropped before substitution is considered.
        pytest.param(SUB_ROWS, params(stock_cols=(0, -1), marks=[(1, mark(days_since=1))]),
                     [], id="purchase-suppressed-is-not-substituted"),
    ],
)
def test_substitution_refusals(rows: list, prm: np.ndarray, expected: list) -> None:
    assert select_all([0], rows, [camp(100, suppress=30)], prm, SUB_STOCK) == expected


def test_substitute_must_clear_the_reserve_with_the_campaign_multiplier() -> None:
    # Campaign slot 0 at 500 permille, reserve 500_000. Row 0 is out of stock; hop 1 (row
    # 1) bids 800_000 raw but 400_000 effective: below the reserve, so the chain goes on to
    # hop 2 (row 2): 1_200_000 -> 600_000 effective. Alone, it pays the reserve.
    rows = [row(0, 1, M, M, sub=1), row(0, 2, 800_000, M, sub=2), row(0, 3, 1_200_000, M)]
    stock = stock_of([[0], [0], [3], [3]])
    prm = params(stock_cols=(0, -1), reserve=500_000, mults=[(0, 500)])
    assert select_all([0], rows, TWO, prm, stock) == [(2, 500_000)]
    # At 2000 permille a substitute bidding 300_000 raw (600_000 effective) qualifies.
    rows = [row(0, 1, M, M, sub=1), row(0, 2, 300_000, M)]
    prm = params(stock_cols=(0, -1), reserve=500_000, mults=[(0, 2000)])
    assert select_all([0], rows, TWO, prm, stock) == [(1, 500_000)]


def test_low_stock_applies_to_the_substitute_product() -> None:
    # Row 0's product 1 is out of stock; substitute row 1's product 2 has 4 of T = 10:
    # quality 1e6 * 4 // 10 = 400_000, score 4e11 < row 2's 5e11 (product 3, unknown).
    # Row 2 pays 4e11 // 1e6 = 400_000.
    rows = [row(0, 1, M, M, sub=1), row(0, 2, M, M), row(1, 3, 500_000, M)]
    stock = stock_of([[0], [0], [4], [U]])
    prm = params(stock_cols=(0, -1), low_stock=10)
    assert select_all([0, 2], rows, TWO, prm, stock) == [(2, 400_000), (1, 0)]


def test_substitution_gives_up_after_eight_hops() -> None:
    # A chain 0 -> 1 -> ... -> 9 where row i sells product i; products 0..8 out of stock.
    rows = [row(0, i, M, M, sub=i + 1 if i < 9 else -1) for i in range(10)]
    prm = params(stock_cols=(0, -1))
    quantities = [[0]] * 9 + [[1]]
    # Row 9 would be hop 9: too far.
    assert select_all([0], rows, TWO, prm, stock_of(quantities)) == []
    # Row 8 is hop 8: still within reach.
    quantities[8] = [1]
    assert select_all([0], rows, TWO, prm, stock_of(quantities)) == [(8, 0)]
    # A cycle that avoids row 0 (1 -> 2 -> 1) also ends after 8 hops.
    rows = [row(0, 0, M, M, sub=1), row(0, 1, M, M, sub=2), row(0, 2, M, M, sub=1)]
    assert select_all([0], rows, TWO, prm, stock_of([[0], [0], [0]])) == []


@pytest.mark.parametrize(
    ("quantities", "cols", "expected"),
    [
        pytest.param([[5, 5], [0, 0]], (0, 1), [], id="out-of-stock-in-both-columns"),
        pytest.param([[5, 5], [0, 3]], (0, 1), [(0, 0)], id="available-in-column-b"),
        pytest.param([[5, 5], [0, U]], (0, 1), [(0, 0)], id="unknown-65535-is-available"),
        pytest.param([[5, 5], [0, 0]], (0, 7), [(0, 0)], id="column-off-the-array-unknown"),
        pytest.param([[5, 5]], (0, 1), [(0, 0)], id="product-off-the-array-unknown"),
        pytest.param([[5, 5], [0, 0]], (-1, -1), [(0, 0)], id="no-stock-check"),
        pytest.param([[5, 5], [0, 0]], (-1, 1), [], id="only-column-b-checked"),
    ],
)
def test_stock_availability(quantities: list, cols: tuple[int, int], expected: list) -> None:
    rows = [row(0, 1, M, M)]
    assert select_all([0], rows, TWO, params(stock_cols=cols), stock_of(quantities)) == expected


def test_unknown_stock_is_never_low() -> None:
    # Threshold T = 100_000 exceeds every real quantity. Product 1 has (0, 65535): unknown,
    # so unscaled: score 1e12. Product 2 has (50, 0): level 50 < T, quality
    # 1e6 * 50 // 100_000 = 500; score 1.8e6 * 500 = 9e8.
    # Row 0 pays 9e8 // 1e6 = 900. (Had 65535 counted as low, row 0 would have quality
    # 1e6 * 65535 // 100_000 = 655_350 and still lead, but pay 9e8 // 655_350 = 1_373.)
    rows = [row(0, 1, M, M), row(1, 2, 1_800_000, M)]
    stock = stock_of([[0, 0], [0, U], [50, 0]])
    prm = params(stock_cols=(0, 1), low_stock=100_000)
    assert select_all([0, 1], rows, TWO, prm, stock) == [(0, 900), (1, 0)]


@pytest.mark.parametrize(
    ("quantities", "threshold", "expected"),
    [
        # Product 1 has (4, 2): level max = 4 < T = 10: quality 1e6 * 4 // 10 = 4e5, score
        # 4e11 < row 1's 5e11: row 1 first, pays 4e11 // 1e6 = 400_000.
        pytest.param([[0, 0], [4, 2], [U, U]], 10, [(1, 400_000), (0, 0)], id="low"),
        pytest.param([[0, 0], [4, 2], [U, U]], 0, PAIR_BOTH, id="threshold-off"),
        # Level 10 is not < 10: unscaled.
        pytest.param([[0, 0], [10, 2], [U, U]], 10, PAIR_BOTH, id="at-threshold"),
    ],
)
def test_low_stock_scales_quality(quantities: list, threshold: int, expected: list) -> None:
    prm = params(stock_cols=(0, 1), low_stock=threshold)
    assert select_all([0, 1], PAIR, TWO, prm, stock_of(quantities)) == expected


def test_low_stock_quality_floor_is_one() -> None:
    # Quality 3 at level 1 of T = 10: 3 * 1 // 10 = 0 -> floored at 1; a floor of 2 drops it.
    rows = [row(0, 1, M, 3)]
    prm = params(stock_cols=(0, -1), low_stock=10, reserve=5)
    stock = stock_of([[0], [1]])
    assert select_all([0], rows, TWO, prm, stock) == [(0, 5)]
    prm = params(stock_cols=(0, -1), low_stock=10, reserve=5, min_quality=2)
    assert select_all([0], rows, TWO, prm, stock) == []


# --- 8. fatigue ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "prod_mark", "expected"),
    [
        # K = 3, one exposure: quality 1e6 * 3 // 4 = 750_000, score 7.5e11 < 8e11:
        # row 1 first, pays 7.5e11 // 1e6 = 750_000.
        pytest.param(3, mark(exposures=1), [(1, 750_000), (0, 0)], id="one-exposure"),
        # No exposures (a purchase 40 days ago, nothing suppresses it): unscaled; row 0
        # first, pays 8e11 // 1e6 = 800_000.
        pytest.param(3, mark(days_since=40), [(0, 800_000), (1, 0)], id="no-exposure"),
        pytest.param(0, mark(exposures=9), [(0, 800_000), (1, 0)], id="fatigue-off"),
        # K = 1000, 32767 exposures (the cap): 1e6 * 1000 // 33_767 = 29_614, score
        # 2.9614e10; row 1 pays 2.9614e10 // 1e6 = 29_614.
        pytest.param(1000, mark(exposures=32_767), [(1, 29_614), (0, 0)], id="capped"),
    ],
)
def test_fatigue_scales_quality(k: int, prod_mark: int, expected: list) -> None:
    rows = [row(0, 1, M, M), row(1, 2, 800_000, M)]
    prm = params(fatigue=k, marks=[(1, prod_mark)])
    assert select_all([0, 1], rows, TWO, prm) == expected


# --- 7. multiplier -------------------------------------------------------------------------

MULT_ROWS = [row(0, 1, 400_000, M), row(1, 2, 500_000, M)]


@pytest.mark.parametrize(
    ("prm", "expected"),
    [
        # No multiplier: row 1 first, pays 4e11 // 1e6 + 1000 = 401_000.
        pytest.param(params(increment=1000), [(1, 401_000), (0, 0)], id="none"),
        # Slot 0 listed twice, the max (1500) counts: effective bid 600_000, score 6e11,
        # first; pays 5e11 // 1e6 + 1000 = 501_000.
        pytest.param(params(increment=1000, mults=[(0, 1500), (0, 1200)]),
                     [(0, 501_000), (1, 0)], id="raises-a-winner"),
        # Increment 150_000: 500_000 + 150_000 = 650_000 is capped at the effective bid
        # 600_000 (above the raw bid 400_000).
        pytest.param(params(increment=150_000, mults=[(0, 1500)]),
                     [(0, 600_000), (1, 0)], id="price-capped-at-effective-bid"),
        # Reserve 450_000: the raw bid 400_000 is below it, the effective 600_000 is not.
        # Row 0 pays max(501_000, 450_000); row 1 the reserve.
        pytest.param(params(increment=1000, reserve=450_000, mults=[(0, 1500)]),
                     [(0, 501_000), (1, 450_000)], id="applies-before-reserve"),
        pytest.param(params(increment=1000, reserve=450_000),
                     [(1, 450_000)], id="below-reserve-without"),
        # 500 permille halves row 1 to 250_000: row 0 first, pays 2.5e11 // 1e6 + 1000.
        pytest.param(params(increment=1000, mults=[(1, 500)]),
                     [(0, 251_000), (1, 0)], id="lowers"),
        pytest.param(params(increment=1000, mults=[(0, 0), (0, -5)]),
                     [(1, 401_000), (0, 0)], id="zero-and-negative-ignored"),
    ],
)
def test_multiplier(prm: np.ndarray, expected: list) -> None:
    assert select_all([0, 1], MULT_ROWS, TWO, prm) == expected


# --- 2. campaign level: store, segments, frequency cap ----------------------------------


@pytest.mark.parametrize(
    ("store_ok", "blocked", "expected"),
    [
        pytest.param([], [], PAIR_ONLY_1, id="no-store-mark"),
        pytest.param([1], [], PAIR_ONLY_1, id="store-mark-for-another-campaign"),
        pytest.param([0], [], PAIR_BOTH, id="store-mark"),
        pytest.param([0], [0], PAIR_ONLY_1, id="blocked-beats-store-ok"),
    ],
)
def test_store_targeting(store_ok: list[int], blocked: list[int], expected: list) -> None:
    campaigns = [camp(100, flags=FLAG_NEEDS_STORE), camp(101)]
    prm = params(store_ok=store_ok, blocked=blocked)
    assert select_all([0, 1], PAIR, campaigns, prm) == expected


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        # Campaign 100 includes segment 133 (word 2, bit 5); campaign 101 excludes 255.
        pytest.param((), PAIR_ONLY_1, id="no-segments"),
        pytest.param((0, 1 << 5), PAIR_ONLY_1, id="same-bit-other-word"),
        pytest.param((0, 0, 1 << 5), PAIR_BOTH, id="included"),
        pytest.param((0, 0, 1 << 5 | 1, SIGN), [(0, 0)], id="included-and-101-excluded"),
        pytest.param((0, 0, 0, SIGN | 1), [], id="excluded-only"),
    ],
)
def test_segments(segments: tuple[int, ...], expected: list) -> None:
    campaigns = [camp(100, flags=FLAG_NEEDS_SEGMENT, inc=(0, 0, 1 << 5)),
                 camp(101, exc=(0, 0, 0, SIGN))]
    assert select_all([0, 1], PAIR, campaigns, params(segments=segments)) == expected


def test_include_mask_needs_its_flag_and_flag_needs_a_mask() -> None:
    # Without FLAG_NEEDS_SEGMENT the include mask is inert.
    assert select_all([0, 1], PAIR, [camp(100, inc=(1,)), camp(101)], params()) == PAIR_BOTH
    # With the flag and an empty mask, no shopper qualifies.
    campaigns = [camp(100, flags=FLAG_NEEDS_SEGMENT), camp(101)]
    assert select_all([0, 1], PAIR, campaigns, params(segments=(-1, -1, -1, -1))) == PAIR_ONLY_1


@pytest.mark.parametrize(
    ("blocked", "expected"),
    [
        pytest.param([0], PAIR_ONLY_1, id="one"),
        pytest.param([0, 1], [], id="both"),
        pytest.param([1, 1], [(0, 0)], id="listed-twice"),
    ],
)
def test_blocked_campaigns(blocked: list[int], expected: list) -> None:
    assert select_all([0, 1], PAIR, TWO, params(blocked=blocked)) == expected


# --- 4. replenishment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replenished", "expected"),
    [
        pytest.param([7], PAIR_ONLY_1, id="group-suppressed"),
        pytest.param([3, 8], PAIR_BOTH, id="other-groups"),
        # Row 1 has no group (-1): listing -1 suppresses nothing.
        pytest.param([-1], PAIR_BOTH, id="no-group-never-suppressed"),
    ],
)
def test_replenishment_groups(replenished: list[int], expected: list) -> None:
    rows = [row(0, 1, M, M, repl=7), row(1, 2, M // 2, M)]
    assert select_all([0, 1], rows, TWO, params(replenished=replenished)) == expected


# --- 8. silence ------------------------------------------------------------------------------

# Row 0: 400_000 x 300_000 = 1.2e11; row 1: 200_000 x 400_000 = 8e10.
SILENT_ROWS = [row(0, 1, 400_000, 300_000), row(1, 2, 200_000, 400_000)]


@pytest.mark.parametrize(
    ("prm", "expected"),
    [
        pytest.param(params(min_quality=500_000), [], id="quality-floor-silences-all"),
        pytest.param(params(min_quality=400_000), [(1, 0)], id="quality-floor-inclusive"),
        # 1.2e11 < 120_001 * 1e6: nobody clears the expected-value floor.
        pytest.param(params(min_ev=120_001), [], id="ev-floor-silences-all"),
        pytest.param(params(min_ev=120_000), [(0, 0)], id="ev-floor-inclusive"),
        # Fatigue K = 1, one exposure halves row 0: 400_000 x 150_000 = 6e10 < 8e10.
        pytest.param(params(min_ev=80_000, fatigue=1, marks=[(1, mark(exposures=1))]),
                     [(1, 0)], id="ev-uses-final-quality"),
        # A multiplier of 2x lifts row 1 to 400_000 x 400_000 = 1.6e11.
        pytest.param(params(min_ev=150_000, mults=[(1, 2000)]), [(1, 0)],
                     id="ev-uses-effective-bid"),
    ],
)
def test_silence_thresholds(prm: np.ndarray, expected: list) -> None:
    assert select_all([0, 1], SILENT_ROWS, TWO, prm) == expected


# --- per-request state and malformed tails ----------------------------------------------------


def test_marks_are_cleared_before_return() -> None:
    rows = i64(PAIR)
    campaigns = i64([camp(100, suppress=3, flags=FLAG_NEEDS_STORE), camp(101), camp(102)])
    prm = params(blocked=[2], store_ok=[0], mults=[(0, 2000), (1, 1500)],
                 marks=[(1, mark(days_since=9, exposures=2)), (2, mark(days_since=40))],
                 fatigue=2)
    scratch = np.zeros(len(rows) + 3, np.int32)
    out = np.zeros((2, 2), np.int64)
    n = select_and_clear(i64([0, 1]), rows, campaigns, prm, scratch, out,
                         np.zeros((0, 0), np.uint16))
    # Row 0: bid 2e6, quality 1e6 * 2 // 4 = 5e5 (fatigue): 1e12. Row 1: 7.5e5 x 1e6 =
    # 7.5e11. Row 0 pays 7.5e11 // 5e5 = 1_500_000.
    assert out[:n].tolist() == [[0, 1_500_000], [1, 0]]
    assert not scratch.any()
    assert not campaigns[:, CAMP_MARK].any() and not campaigns[:, CAMP_MULT].any()
    assert campaigns[:, CAMP_ELIGIBLE].tolist() == [1, 1, 0]


def test_out_of_range_tail_entries_are_ignored() -> None:
    prm = params(
        blocked=[-1, 99],
        store_ok=[99],
        mults=[(-5, 3000), (99, 3000)],
        # Product 10_000 is past scratch (2 rows + 3 products): no room, ignored.
        marks=[(-1, mark(days_since=0)), (10_000, mark(days_since=0))],
        replenished=[99],
    )
    campaigns = [camp(100, suppress=5), camp(101, suppress=5)]
    assert select_all([0, 1], PAIR, campaigns, prm) == PAIR_BOTH


def test_counts_are_clamped_to_the_vector() -> None:
    # One tail entry, every count 1000: 0 product pairs fit, then 1 blocked slot (0), then
    # nothing for the other lists.
    prm = i64([*params()[:PARAMS_LEN], 0])
    for at in (P_N_PMARK, P_N_BLOCK, P_N_STORE, P_N_MULT, P_N_REPL):
        prm[at] = 1000
    assert select_all([0, 1], PAIR, TWO, prm) == PAIR_ONLY_1


def test_marks_that_do_not_fit_scratch_are_ignored() -> None:
    # Scratch = 2 rows + room for product 0 only: product 1's purchase mark is dropped, so
    # campaign 100's 5-day window suppresses nothing.
    campaigns = [camp(100, suppress=5), camp(101)]
    prm = params(marks=[(1, mark(days_since=0))])
    assert select_all([0, 1], PAIR, campaigns, prm, scratch_len=3) == PAIR_BOTH
    assert select_all([0, 1], PAIR, campaigns, prm) == PAIR_ONLY_1


# --- 9. eligible counting ----------------------------------------------------------------------


def test_only_campaigns_passing_the_shopper_filters_are_counted() -> None:
    rows = i64([row(0, 1, M, M), row(1, 2, M, M), row(2, 3, M, M)])
    campaigns = i64([camp(100), camp(101, gate=0), camp(102)])
    prm = params(blocked=[2])
    out = np.zeros((3, 2), np.int64)
    n = select_and_clear(i64([0, 1, 2]), rows, campaigns, prm, np.zeros(7, np.int32), out,
                         np.zeros((0, 0), np.uint16))
    # Slot 2 is blocked (not counted); slot 1 is counted, then its closed gate keeps it out.
    assert out[:n, 0].tolist() == [0]
    assert campaigns[:, CAMP_ELIGIBLE].tolist() == [1, 1, 0]


# --- backward compatibility -----------------------------------------------------------------


def test_old_params_and_narrow_tables_switch_the_signals_off() -> None:
    stock = stock_of([[0, 0], [0, 0], [0, 0]])  # everything out of stock
    rows = [row(0, 1, M, M, repl=3), row(1, 2, M // 2, M)]
    prm = params(stock_cols=(0, 1), blocked=[0], replenished=[3])
    assert select_all([0, 1], rows, TWO, prm, stock) == []
    # A 13-entry vector has no stock columns and no tail.
    assert len(prm[:PARAMS_LEN_V1]) == 13
    assert select_all([0, 1], rows, TWO, prm[:PARAMS_LEN_V1], stock) == PAIR_BOTH
    # A 7-column campaigns table has no CAMP_MARK (blocked ignored), 8-column rows no
    # ROW_REPL (replenishment ignored); stock still applies: checked without the tail.
    old_rows = [r[:8] for r in rows]
    old_camps = [c[:7] for c in TWO]
    assert select_all([0, 1], old_rows, old_camps, prm) == PAIR_BOTH
    assert select_all([0, 1], old_rows, old_camps, prm, stock) == []
    # Vectors cut between the fields: stock columns present (index 18), the rest missing.
    assert select_all([0, 1], old_rows, old_camps, prm[:19], stock) == []


def test_stock_may_be_omitted_by_six_argument_callers() -> None:
    rows = i64(PAIR)
    out = np.zeros((2, 2), np.int64)
    prm = params(stock_cols=(0, 1))  # checked columns, but no stock array: all unknown
    n = select_and_clear(i64([0, 1]), rows, i64(TWO), prm, np.zeros(5, np.int32), out)
    assert out[:n].tolist() == [list(w) for w in PAIR_BOTH]
