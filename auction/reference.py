"""Plain-Python twins of the numba kernels, written for obviousness rather than speed.

They state the rules the way the design does (sort, then walk) so tests can check the
kernels' selection-scan shortcut against them. They accept numpy arrays or lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from auction.selection import (
    BIT_WORDS,
    CAMP_ELIGIBLE,
    CAMP_END_MS,
    CAMP_FLAGS,
    CAMP_GATE,
    CAMP_ID,
    CAMP_LIVE,
    CAMP_MARK,
    CAMP_MULT,
    CAMP_SEG_EXC0,
    CAMP_SEG_INC0,
    CAMP_START_MS,
    CAMP_SUPPRESS_DAYS,
    FLAG_NEEDS_SEGMENT,
    FLAG_NEEDS_STORE,
    GATE_OPEN,
    MARK_BITS,
    MARK_DAYS_MASK,
    MARK_EXPOSURE_MASK,
    MARK_EXPOSURE_SHIFT,
    MIN_EV_UNIT,
    MULT_UNIT,
    P_EXCLUDE_PRODUCT,
    P_FATIGUE,
    P_INCREMENT,
    P_LOW_STOCK,
    P_MIN_EV,
    P_MIN_MATCH,
    P_MIN_QUALITY,
    P_N_BLOCK,
    P_N_EXTRA,
    P_N_MULT,
    P_N_PMARK,
    P_N_REPL,
    P_N_STORE,
    P_NOW_MS,
    P_QUERY_BITS0,
    P_QUERY_TOKENS,
    P_RESERVE,
    P_SEED,
    P_SEG0,
    P_SLOTS,
    P_STOCK_A,
    P_STOCK_B,
    P_TAIL,
    ROW_BID,
    ROW_BITS0,
    ROW_CAMPAIGN,
    ROW_PRODUCT,
    ROW_QUALITY,
    ROW_REPL,
    ROW_SUB,
    SEG_WORDS,
    STOCK_UNKNOWN,
    SUB_HOPS,
)
from auction.tiebreak import splitmix64_py, tie_key_py

_MASK64 = (1 << 64) - 1


def _ints(values: Any) -> list[int]:
    """Python ints, so nothing below wraps or promotes the way numpy scalars can."""
    if hasattr(values, "tolist"):
        return list(values.tolist())  # numpy: already Python ints, in one C loop
    return [int(v) for v in values]


def _table(values: Any) -> list[list[int]]:
    """A 2D table as lists of Python ints (numpy arrays in one C loop)."""
    if hasattr(values, "tolist"):
        return list(values.tolist())
    return [_ints(row) for row in values]


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


@dataclass
class Shopper:
    """The request's shopper signals, decoded from ``params`` as the kernel decodes them."""

    segments: list[int]
    stock_columns: list[int]  # the checked stock columns (negative = none)
    low_stock: int  # T, 0 = off
    fatigue: int  # K, 0 = off
    min_quality: int  # 0 = off
    min_ev: int  # 0 = off
    product_marks: dict[int, int] = field(default_factory=dict)  # product id -> mark
    blocked: set[int] = field(default_factory=set)  # campaign slots
    store_ok: set[int] = field(default_factory=set)  # campaign slots
    multiplier: dict[int, int] = field(default_factory=dict)  # campaign slot -> permille
    replenished: set[int] = field(default_factory=set)  # suppressed replenishment groups

    def days_field(self, product: int) -> int:
        """Days since the shopper last bought ``product``, plus one; 0 = never."""
        return self.product_marks.get(product, 0) & MARK_DAYS_MASK

    def exposures(self, product: int) -> int:
        return (self.product_marks.get(product, 0) >> MARK_EXPOSURE_SHIFT) & MARK_EXPOSURE_MASK


def _param(prm: list[int], i: int, default: int = 0) -> int:
    """A params entry; vectors too short to hold it (older callers) read as ``default``."""
    return prm[i] if i < len(prm) else default


def _column(row: list[int], i: int, default: int = 0) -> int:
    """A table cell; tables too narrow to hold the column read as ``default``."""
    return row[i] if i < len(row) else default


def decode_shopper(
    prm: list[int], n_rows: int, n_camps: int, camp_cols: int, scratch_len: int | None
) -> Shopper:
    """Read the shopper signals and the params tail (see :mod:`auction.selection`)."""
    shopper = Shopper(
        segments=[_param(prm, P_SEG0 + k) for k in range(SEG_WORDS)],
        stock_columns=[c for c in (_param(prm, P_STOCK_A, -1), _param(prm, P_STOCK_B, -1))
                       if c >= 0],
        low_stock=_param(prm, P_LOW_STOCK),
        fatigue=_param(prm, P_FATIGUE),
        min_quality=_param(prm, P_MIN_QUALITY),
        min_ev=_param(prm, P_MIN_EV),
    )

    # The tail, in order; each count is clamped to the entries the vector really holds.
    pos = P_TAIL

    def take(count_at: int, width: int) -> list[list[int]]:
        nonlocal pos
        count = min(max(_param(prm, count_at), 0), max(len(prm) - pos, 0) // width)
        entries = [prm[pos + width * i : pos + width * (i + 1)] for i in range(count)]
        pos += width * count
        return entries

    product_marks = take(P_N_PMARK, 2)
    blocked = take(P_N_BLOCK, 1)
    store_ok = take(P_N_STORE, 1)
    multipliers = take(P_N_MULT, 2)
    replenished = take(P_N_REPL, 1)

    for product, mark in product_marks:
        # The kernel keeps marks in scratch after the row counters: no room, no mark.
        room = scratch_len is None or n_rows + product < scratch_len
        if product >= 0 and room:
            shopper.product_marks[product] = mark & MARK_BITS  # a repeat overwrites
    # Campaign marks live in campaign columns: a table without them has none.
    if camp_cols > CAMP_MARK:
        shopper.blocked = {s for (s,) in blocked if 0 <= s < n_camps}
        shopper.store_ok = {s for (s,) in store_ok if 0 <= s < n_camps}
    if camp_cols > CAMP_MULT:
        for slot, permille in multipliers:
            if 0 <= slot < n_camps and permille > shopper.multiplier.get(slot, 0):
                shopper.multiplier[slot] = permille  # the largest wins
    shopper.replenished = {g for (g,) in replenished}
    return shopper


def select_and_clear_py(
    cand: Sequence[int] | Any,
    rows: Sequence[Sequence[int]] | Any,
    campaigns: Sequence[Sequence[int]] | Any,
    params: Sequence[int] | Any,
    stock: Sequence[Sequence[int]] | Any = None,
    *,
    scratch_len: int | None = None,
    counted: set[int] | None = None,
) -> list[tuple[int, int]]:
    """``[(row index, price_micros), ...]``; see :mod:`auction.selection` for the rules.

    ``stock`` is the kernel's stock array (None: no stock information). ``scratch_len`` is
    the length of the kernel's scratch, which decides which product marks fit (None: all
    do). ``counted``, if given, receives the campaign slots this request counts as
    eligible (the kernel's ``CAMP_ELIGIBLE``).
    """
    row_table = [_ints(r) for r in rows]
    camp_table = [_ints(c) for c in campaigns]
    prm = _ints(params)
    now, reserve, increment = prm[P_NOW_MS], prm[P_RESERVE], prm[P_INCREMENT]
    n_slots, seed, exclude = prm[P_SLOTS], prm[P_SEED], prm[P_EXCLUDE_PRODUCT]
    nq, min_match = prm[P_QUERY_TOKENS], prm[P_MIN_MATCH]
    query_bits = [prm[P_QUERY_BITS0 + k] & _MASK64 for k in range(BIT_WORDS)]
    cand_list = _ints(cand)
    n_counted = len(cand_list) - min(max(prm[P_N_EXTRA], 0), len(cand_list))
    camp_cols = len(camp_table[0]) if camp_table else 0
    shopper = decode_shopper(prm, len(row_table), len(camp_table), camp_cols, scratch_len)
    stock_table = _table(stock) if stock is not None else []  # one row per column (store)
    stock_cols = len(stock_table)
    if stock is not None and hasattr(stock, "shape"):
        stock_products = stock.shape[1]
    else:
        stock_products = len(stock_table[0]) if stock_table else 0

    def stock_level(product: int) -> int:
        """Max quantity over the checked columns; unknown (65535 or off the array) is max."""
        if not shopper.stock_columns:
            return STOCK_UNKNOWN  # no stock check
        level = 0
        for c in shopper.stock_columns:
            if not 0 <= product < stock_products or c >= stock_cols:
                return STOCK_UNKNOWN
            level = max(level, stock_table[c][product])
        return level

    def replenishment_suppressed(row: list[int]) -> bool:  # rule 4
        group = _column(row, ROW_REPL, -1)
        return group >= 0 and group in shopper.replenished

    def purchase_suppressed(product: int, window_days: int) -> bool:  # rule 5
        d = shopper.days_field(product)
        return d != 0 and d - 1 < window_days

    def effective_bid(row: list[int], slot: int) -> int:  # rule 7
        permille = shopper.multiplier.get(slot, 0)
        return row[ROW_BID] * permille // MULT_UNIT if permille > 0 else row[ROW_BID]

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
        row = row_table[r]
        matched = occurrences
        for k in range(min(max(len(row) - ROW_BITS0, 0), BIT_WORDS)):
            matched += ((row[ROW_BITS0 + k] & _MASK64) & query_bits[k]).bit_count()

        # 1. campaign slot in range, live, inside its flight
        slot = row[ROW_CAMPAIGN]
        if not 0 <= slot < len(camp_table):
            continue
        camp = camp_table[slot]
        start, end = camp[CAMP_START_MS], camp[CAMP_END_MS]
        if camp[CAMP_LIVE] != 1:
            continue
        if (start != 0 and now < start) or (end != 0 and now >= end):
            continue

        # 2. campaign level: frequency cap, store targeting, segment include / exclude
        if slot in shopper.blocked:
            continue
        flags = _column(camp, CAMP_FLAGS)
        if flags & FLAG_NEEDS_STORE and slot not in shopper.store_ok:
            continue
        include = [_column(camp, CAMP_SEG_INC0 + k) for k in range(SEG_WORDS)]
        exclude_segs = [_column(camp, CAMP_SEG_EXC0 + k) for k in range(SEG_WORDS)]
        segments = shopper.segments
        if flags & FLAG_NEEDS_SEGMENT and not any(
            i & s != 0 for i, s in zip(include, segments, strict=True)
        ):
            continue
        if any(x & s != 0 for x, s in zip(exclude_segs, segments, strict=True)):
            continue

        # 3. excluded product, enough of the query matched
        prod = row[ROW_PRODUCT]
        if prod == exclude:
            continue
        if nq > 0 and matched < min_match:
            continue

        # 4. replenishment group suppressed, 5. bought within the suppression window
        window = _column(camp, CAMP_SUPPRESS_DAYS)
        if replenishment_suppressed(row) or purchase_suppressed(prod, window):
            continue

        # 6. stock: out of stock everywhere checked -> the first usable substitute
        chosen = r
        level = stock_level(prod)
        if level == 0:
            chosen = -1
            s = r
            for _hop in range(SUB_HOPS):
                s = _column(row_table[s], ROW_SUB, -1)
                if not 0 <= s < len(row_table) or s == r:
                    break  # end of the chain (or a loop back to the candidate)
                sub = row_table[s]
                if sub[ROW_CAMPAIGN] != slot:
                    break  # substitutes stay within the campaign
                sub_level = stock_level(sub[ROW_PRODUCT])
                if (
                    sub[ROW_PRODUCT] != exclude
                    and not replenishment_suppressed(sub)
                    and not purchase_suppressed(sub[ROW_PRODUCT], window)
                    and effective_bid(sub, slot) >= reserve
                    and sub[ROW_QUALITY] >= 1
                    and sub_level != 0
                ):
                    chosen, level = s, sub_level
                    break
            if chosen < 0:
                continue
        prod = row_table[chosen][ROW_PRODUCT]

        # 7. multiplier; 8. reserve and base quality on the chosen row
        b = effective_bid(row_table[chosen], slot)
        q = row_table[chosen][ROW_QUALITY]
        if b < reserve or q < 1:
            continue
        if nq > 0:  # relevance: squared matched fraction (r's matches)
            m = min(matched, nq)
            q = max(1, q * m * m // (nq * nq))
        if shopper.low_stock > 0 and 0 < level < shopper.low_stock and level != STOCK_UNKNOWN:
            q = max(1, q * level // shopper.low_stock)
        if shopper.fatigue > 0:
            k = shopper.fatigue
            q = max(1, q * k // (k + shopper.exposures(prod)))
        # silence: better no ad than a poor one
        if shopper.min_quality > 0 and q < shopper.min_quality:
            continue
        if shopper.min_ev > 0 and b * q < shopper.min_ev * MIN_EV_UNIT:
            continue

        # 9. counted eligible (before the gate), then pacing's gate
        if counted is not None and len(camp) > CAMP_ELIGIBLE:
            counted.add(slot)
        if len(camp) > CAMP_GATE:
            gate = camp[CAMP_GATE]
            if gate <= 0:
                continue
            if gate < GATE_OPEN:
                mixed = (camp[CAMP_ID] * 0x9E3779B97F4A7C15) & _MASK64
                draw = splitmix64_py((seed & _MASK64) ^ mixed)
                if draw >> 48 >= gate:
                    continue

        bids.append(b)
        quals.append(q)
        camp_ids.append(camp[CAMP_ID])
        prods.append(prod)
        row_of.append(chosen)

    keys = [tie_key_py(seed, c, p) for c, p in zip(camp_ids, prods, strict=True)]
    winners = clear_gsp_py(bids, quals, camp_ids, prods, keys, reserve, increment, n_slots)
    return [(row_of[i], price) for i, price in winners]
