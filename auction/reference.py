"""Plain-Python twins of the numba kernels, written for obviousness rather than speed.

They state the rules the way the design does (sort, then walk) so tests can check the
kernels' selection-scan shortcut against them. They accept numpy arrays or lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auction.selection import (
    BIT_WORDS,
    CAMP_END_MS,
    CAMP_ID,
    CAMP_LIVE,
    CAMP_START_MS,
    P_EXCLUDE_PRODUCT,
    P_INCREMENT,
    P_MIN_MATCH,
    P_N_EXTRA,
    P_NOW_MS,
    P_QUERY_BITS0,
    P_QUERY_TOKENS,
    P_RESERVE,
    P_SEED,
    P_SLOTS,
    ROW_BID,
    ROW_BITS0,
    ROW_CAMPAIGN,
    ROW_PRODUCT,
    ROW_QUALITY,
)
from auction.tiebreak import tie_key_py

_MASK64 = (1 << 64) - 1


def _ints(values: Any) -> list[int]:
    """Python ints, so nothing below wraps or promotes the way numpy scalars can."""
    if hasattr(values, "tolist"):
        return list(values.tolist())  # numpy: already Python ints, in one C loop
    return [int(v) for v in values]


def clear_gsp_py(
    bid: Sequence[int] | Any,
    quality: Sequence[int] | Any,
    campaign: Sequence[int] | Any,
    product: Sequence[int] | Any,
    tiekey: Sequence[int] | Any,
    reserve: int,
    increment: int,
    n_slots: int,
) -> list[tuple[int, int]]:
    """``[(candidate index, price_micros), ...]`` in slot order; see :mod:`auction.clearing`."""
    bids, quals, camps, prods, keys = (
        _ints(bid),
        _ints(quality),
        _ints(campaign),
        _ints(product),
        _ints(tiekey),
    )
    n = min(len(bids), len(quals), len(camps), len(prods), len(keys))
    reserve, increment, n_slots = int(reserve), int(increment), int(n_slots)
    if n_slots <= 0:
        return []

    eligible = [i for i in range(n) if bids[i] >= reserve and quals[i] >= 1]
    ranked = sorted(eligible, key=lambda i: (-bids[i] * quals[i], -keys[i], i))

    kept: list[int] = []
    seen_campaigns: set[int] = set()
    seen_products: set[int] = set()
    for i in ranked:
        if camps[i] in seen_campaigns or prods[i] in seen_products:
            continue
        kept.append(i)
        seen_campaigns.add(camps[i])
        seen_products.add(prods[i])
        if len(kept) > n_slots:
            break

    winners: list[tuple[int, int]] = []
    for w, i in enumerate(kept[:n_slots]):
        if w + 1 < len(kept):
            j = kept[w + 1]
            price = max(bids[j] * quals[j] // quals[i] + increment, reserve)
        else:
            price = reserve
        winners.append((i, min(price, bids[i])))
    return winners


def select_and_clear_py(
    cand: Sequence[int] | Any,
    rows: Sequence[Sequence[int]] | Any,
    campaigns: Sequence[Sequence[int]] | Any,
    params: Sequence[int] | Any,
) -> list[tuple[int, int]]:
    """``[(row index, price_micros), ...]``; see :mod:`auction.selection` for the rules."""
    row_table = [_ints(r) for r in rows]
    camp_table = [_ints(c) for c in campaigns]
    prm = _ints(params)
    now, reserve, increment = prm[P_NOW_MS], prm[P_RESERVE], prm[P_INCREMENT]
    n_slots, seed, exclude = prm[P_SLOTS], prm[P_SEED], prm[P_EXCLUDE_PRODUCT]
    nq, min_match = prm[P_QUERY_TOKENS], prm[P_MIN_MATCH]
    query_bits = [prm[P_QUERY_BITS0 + k] & _MASK64 for k in range(BIT_WORDS)]
    cand_list = _ints(cand)
    n_counted = len(cand_list) - min(max(prm[P_N_EXTRA], 0), len(cand_list))

    # dict keeps first-occurrence order, which is the kernel's candidate order.
    matches: dict[int, int] = {}
    for j, r in enumerate(cand_list):
        if 0 <= r < len(row_table):
            matches[r] = matches.get(r, 0) + (1 if j < n_counted else 0)

    bids: list[int] = []
    quals: list[int] = []
    camp_ids: list[int] = []
    prods: list[int] = []
    row_of: list[int] = []
    for r, occurrences in matches.items():
        matched = occurrences
        for k in range(min(max(len(row_table[r]) - ROW_BITS0, 0), BIT_WORDS)):
            matched += ((row_table[r][ROW_BITS0 + k] & _MASK64) & query_bits[k]).bit_count()
        slot, prod, b, q = (
            row_table[r][ROW_CAMPAIGN],
            row_table[r][ROW_PRODUCT],
            row_table[r][ROW_BID],
            row_table[r][ROW_QUALITY],
        )
        if not 0 <= slot < len(camp_table):
            continue
        camp = camp_table[slot]
        start, end = camp[CAMP_START_MS], camp[CAMP_END_MS]
        if camp[CAMP_LIVE] != 1:
            continue
        if (start != 0 and now < start) or (end != 0 and now >= end):
            continue
        if prod == exclude or b < reserve or q < 1:
            continue
        if nq > 0:
            if matched < min_match:
                continue
            m = min(matched, nq)
            q = max(1, q * m * m // (nq * nq))
        bids.append(b)
        quals.append(q)
        camp_ids.append(camp[CAMP_ID])
        prods.append(prod)
        row_of.append(r)

    keys = [tie_key_py(seed, c, p) for c, p in zip(camp_ids, prods, strict=True)]
    winners = clear_gsp_py(bids, quals, camp_ids, prods, keys, reserve, increment, n_slots)
    return [(row_of[i], price) for i, price in winners]
