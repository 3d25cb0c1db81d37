"""Invariants of GSP clearing and of the fused kernel, over random (tie-heavy) inputs."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from auction import tie_key_py
from tests.auction.harness import Winners, clear_all, params, select_all

PROPS = settings(max_examples=200, deadline=None)

# Small value sets make equal scores, equal campaigns and equal products common.
BIDS = st.one_of(st.sampled_from([0, 50, 100, 200, 400, 1000]), st.integers(0, 10**9))
QUALITIES = st.one_of(st.sampled_from([1, 250_000, 500_000, 1_000_000]), st.integers(-1, 10**6))


@dataclass(frozen=True)
class Auction:
    bid: list[int]
    quality: list[int]
    campaign: list[int]
    product: list[int]
    tiekey: npt.NDArray[np.uint64]
    reserve: int
    increment: int
    slots: int

    def clear(self) -> Winners:
        return clear_all(
            self.bid,
            self.quality,
            self.campaign,
            self.product,
            self.tiekey,
            self.reserve,
            self.increment,
            self.slots,
        )

    def score(self, i: int) -> int:
        return self.bid[i] * self.quality[i]


@st.composite
def auctions(draw: st.DrawFn) -> Auction:
    n = draw(st.integers(0, 30))
    bid = draw(st.lists(BIDS, min_size=n, max_size=n))
    quality = draw(st.lists(QUALITIES, min_size=n, max_size=n))
    campaign = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    product = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    if draw(st.booleans()):
        seed = draw(st.integers(0, 2**63 - 1))
        keys = [tie_key_py(seed, c, p) for c, p in zip(campaign, product, strict=True)]
    else:
        # Colliding keys exercise the last tie-break, the candidate index.
        keys = draw(st.lists(st.sampled_from([0, 1, 2**64 - 1]), min_size=n, max_size=n))
    return Auction(
        bid=bid,
        quality=quality,
        campaign=campaign,
        product=product,
        tiekey=np.array(keys, dtype=np.uint64),
        reserve=draw(st.sampled_from([0, 50, 100, 1000])),
        increment=draw(st.sampled_from([0, 1, 10_000])),
        slots=draw(st.integers(0, 6)),
    )


@PROPS
@given(auctions())
def test_numba_reference_and_numpy_agree(a: Auction) -> None:
    a.clear()  # clear_all asserts the three implementations agree


@PROPS
@given(auctions())
def test_prices_lie_between_reserve_and_own_bid(a: Auction) -> None:
    for i, price in a.clear():
        assert a.reserve <= price <= a.bid[i]


@PROPS
@given(auctions())
def test_winners_are_eligible_distinct_and_ordered_by_score(a: Auction) -> None:
    winners = [i for i, _ in a.clear()]
    assert len(winners) <= max(a.slots, 0)
    assert all(a.bid[i] >= a.reserve and a.quality[i] >= 1 for i in winners)
    assert len({a.campaign[i] for i in winners}) == len(winners)
    assert len({a.product[i] for i in winners}) == len(winners)
    scores = [a.score(i) for i in winners]
    assert scores == sorted(scores, reverse=True)


@PROPS
@given(auctions(), st.data())
def test_raising_a_bid_never_lowers_rank(a: Auction, data: st.DataObject) -> None:
    if not a.bid:
        return
    who = data.draw(st.integers(0, len(a.bid) - 1))
    raise_by = data.draw(st.integers(1, 10**9))

    def rank(winners: Winners) -> float:
        slots = [i for i, _ in winners]
        return slots.index(who) if who in slots else float("inf")

    higher = list(a.bid)
    higher[who] += raise_by
    assert rank(replace(a, bid=higher).clear()) <= rank(a.clear())


# --- the fused kernel -------------------------------------------------------------------


# Common-token bit patterns as the index stores them: int64, so bit 63 is the sign.
SIGNED_BITS = st.one_of(
    st.sampled_from([0, 1, 3, -(2**63), -1]),
    st.integers(0, 2**64 - 1).map(lambda u: u - 2**64 if u >= 2**63 else u),
)


@st.composite
def selections(
    draw: st.DrawFn,
) -> tuple[list[int], list[list[int]], list[list[int]], npt.NDArray[np.int64]]:
    n_camps = draw(st.integers(1, 5))
    bit_words = draw(st.sampled_from([0, 2, 4]))  # row tables of 4, 6 and 8 columns
    campaigns = [
        [
            draw(st.sampled_from([0, 1, 1, 1])),
            draw(st.sampled_from([0, 0, 100, 500])),
            draw(st.sampled_from([0, 0, 500, 900])),
            draw(st.integers(0, 3)),  # few ids, so distinct slots share a campaign id
        ]
        for _ in range(n_camps)
    ]
    n_rows = draw(st.integers(1, 20))
    rows = [
        [
            draw(st.integers(-1, n_camps - 1)),
            draw(st.integers(0, 5)),
            draw(BIDS),
            draw(st.one_of(st.sampled_from([1, 500_000, 1_000_000]), st.integers(0, 10**6))),
            *[draw(SIGNED_BITS) for _ in range(bit_words)],
        ]
        for _ in range(n_rows)
    ]
    cand = draw(st.lists(st.integers(0, n_rows - 1), max_size=40))
    tokens = draw(st.integers(0, 4))
    query_bits = tuple(draw(SIGNED_BITS) for _ in range(bit_words))
    prm = params(
        now=draw(st.sampled_from([0, 100, 500, 899, 900])),
        reserve=draw(st.sampled_from([0, 50, 100])),
        increment=draw(st.sampled_from([0, 1, 10_000])),
        slots=draw(st.integers(0, 5)),
        seed=draw(st.integers(0, 2**63 - 1)),
        exclude=draw(st.integers(-1, 5)),
        tokens=tokens,
        min_match=draw(st.integers(0, tokens)),
        query_bits=query_bits,
        n_extra=draw(st.integers(0, len(cand) + 1)),
    )
    return cand, rows, campaigns, prm


@PROPS
@given(selections())
def test_select_and_clear_matches_twin_and_cleans_scratch(
    case: tuple[list[int], list[list[int]], list[list[int]], npt.NDArray[np.int64]],
) -> None:
    cand, rows, campaigns, prm = case
    winners = select_all(cand, rows, campaigns, prm)  # asserts agreement and clean scratch
    assert len({r for r, _ in winners}) == len(winners)
    assert all(r in cand for r, _ in winners)
