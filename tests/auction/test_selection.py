"""Hand-worked examples for the fused select-and-clear kernel (numba and twin, via harness)."""

from __future__ import annotations

import numpy as np
import pytest

from auction import select_and_clear
from tests.auction.harness import i64, params, select_all

M = 1_000_000

# Campaign slots: [live, start_ms, end_ms, public id]
LIVE = [1, 0, 0, 100]
PAUSED = [0, 0, 0, 101]
FLIGHT = [1, 1000, 2000, 102]
OTHER = [1, 0, 0, 103]
SAME_ID_AS_LIVE = [1, 0, 0, 100]
CAMPAIGNS = [LIVE, PAUSED, FLIGHT, OTHER, SAME_ID_AS_LIVE]


def test_more_matched_tokens_outrank_a_higher_bid() -> None:
    # Row 0 matches 1 of 2 tokens: q = 1e6 * 1 // 4 = 250_000, score 1e6 * 2.5e5 = 2.5e11.
    # Row 1 matches 2 of 2: q = 800_000, score 5e5 * 8e5 = 4e11 -> first.
    # Row 1 pays 2.5e11 // 8e5 = 312_500; row 0 pays the reserve (0).
    rows = [[0, 1, M, M], [3, 2, M // 2, 800_000]]
    got = select_all([0, 1, 1], rows, CAMPAIGNS, params(tokens=2, min_match=1))
    assert got == [(1, 312_500), (0, 0)]


def test_common_token_bits_count_as_matches_and_extras_add_no_occurrences() -> None:
    # Query "oat milk": "oat" is rare (row 0 occurs once in cand), "milk" is common (bit 0).
    # Row 0 has the milk bit: matched 1 + 1 = 2 of 2, q stays 1e6, score 1e6 * 1e6.
    # Row 1 only arrives as a candidate-only extra with the milk bit: matched 0 + 1 = 1,
    # q = 1e6 // 4 = 250_000, score 2e6 * 2.5e5 = 5e11, so it ranks second.
    # Row 2 is an extra without the bit: matched 0 < min_match 1, dropped.
    rows = [[0, 1, M, M, 1, 0], [3, 2, 2 * M, M, 1, 0], [3, 3, 9 * M, M, 0, 0]]
    prm = params(tokens=2, min_match=1, query_bits=(1, 0), n_extra=3)
    got = select_all([0, 0, 1, 2], rows, CAMPAIGNS, prm)
    # Row 0 pays 5e11 // 1e6 = 500_000; row 1 pays the reserve (0).
    assert got == [(0, 500_000), (1, 0)]
    # The high 64 bits work the same way (bit 127 is the int64 sign bit of ROW_BITS1).
    rows[0][4:] = [0, -(2**63)]
    prm = params(tokens=2, min_match=2, query_bits=(0, -(2**63)), n_extra=0)
    assert select_all([0], rows, CAMPAIGNS, prm) == [(0, 0)]


def test_min_match_drops_rows_matching_too_few_tokens() -> None:
    rows = [[0, 1, M, M], [3, 2, M // 2, 800_000]]
    got = select_all([0, 1, 1], rows, CAMPAIGNS, params(reserve=7, tokens=2, min_match=2))
    assert got == [(1, 7)]


def test_match_count_is_capped_at_query_tokens() -> None:
    # Three occurrences of a row in a two-token query count as two: quality unchanged.
    rows = [[0, 1, M, 400_000], [3, 2, M, 300_000]]
    got = select_all([0, 0, 0, 1, 1], rows, CAMPAIGNS, params(tokens=2, min_match=1))
    # Row 0 pays 3e11 // 4e5 = 750_000.
    assert got == [(0, 750_000), (1, 0)]


def test_without_query_tokens_repeats_do_not_change_quality() -> None:
    rows = [[0, 1, M, 400_000], [3, 2, M, 300_000]]
    assert select_all([1, 1, 1, 0], rows, CAMPAIGNS, params()) == [(0, 750_000), (1, 0)]


@pytest.mark.parametrize(
    ("row", "prm"),
    [
        pytest.param([-1, 1, M, M], params(), id="dead-row"),
        pytest.param([1, 1, M, M], params(), id="paused-campaign"),
        pytest.param([2, 1, M, M], params(now=999), id="before-start"),
        pytest.param([2, 1, M, M], params(now=2000), id="at-end"),
        pytest.param([0, 1, M, M], params(exclude=1), id="excluded-product"),
        pytest.param([0, 1, 99, M], params(reserve=100), id="below-reserve"),
        pytest.param([0, 1, M, 0], params(), id="no-quality"),
        pytest.param([9, 1, M, M], params(), id="campaign-slot-out-of-range"),
    ],
)
def test_ineligible_rows_never_win(row: list[int], prm: np.ndarray) -> None:
    assert select_all([0], [row], CAMPAIGNS, prm) == []


def test_flight_window_is_start_inclusive_end_exclusive() -> None:
    rows = [[2, 1, M, M]]
    assert select_all([0], rows, CAMPAIGNS, params(now=1000, reserve=5)) == [(0, 5)]
    assert select_all([0], rows, CAMPAIGNS, params(now=1999, reserve=5)) == [(0, 5)]


def test_dedupe_uses_public_campaign_id_not_slot() -> None:
    # Slots 0 and 4 are the same campaign (id 100); only the better row wins a slot.
    rows = [[0, 1, 2 * M, M], [4, 2, M, M], [3, 3, M // 2, M]]
    got = select_all([0, 1, 2], rows, CAMPAIGNS, params())
    assert got == [(0, M // 2), (2, 0)]


def test_out_of_range_candidates_are_skipped_and_scratch_is_clean() -> None:
    rows = [[0, 1, M, M]]
    assert select_all([-1, 5, 0, 1], rows, CAMPAIGNS, params(reserve=3)) == [(0, 3)]


def test_scratch_shorter_than_rows_is_refused() -> None:
    out = np.zeros((4, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="scratch"):
        select_and_clear(
            i64([0]),
            i64([[0, 1, M, M], [0, 2, M, M]]),
            i64(CAMPAIGNS),
            params(),
            np.zeros(1, dtype=np.int32),
            out,
        )


def test_wide_out_also_returns_campaign_slot_product_and_id() -> None:
    from auction.selection import OUT_COLS

    rows = np.array([[0, 7, M, M, 0, 0, 0, 0], [3, 9, 2 * M, M, 0, 0, 0, 0]], np.int64)
    campaigns = np.array(CAMPAIGNS, np.int64)
    out = np.zeros((2, OUT_COLS), np.int64)
    n = select_and_clear(np.array([0, 1], np.int64), rows, campaigns, params(slots=2),
                         np.zeros(2, np.int32), out)
    assert n == 2
    assert out.tolist() == [[1, M + 0, 3, 9, 103], [0, 0, 0, 7, 100]]
