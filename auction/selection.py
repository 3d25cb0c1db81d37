"""The fused hot-path kernel: gather, filter, relevance and GSP clearing in one numba call.

numba charges a few microseconds per array argument at dispatch, so the exchange's
in-memory index is packed into two int64 tables (``rows``, ``campaigns``) and the request
into one int64 ``params`` vector; the kernel takes seven arrays in all (``stock`` is the
seventh; while callers are being moved over it may still be omitted, which means no stock
information: every product unknown, hence available).

``cand`` lists row indices, one entry per query token the row matched, so a row's number
of occurrences is its match count. Two refinements keep very common tokens ("oz",
"pack", "organic") from flooding the kernel: (1) the index gives each of up to 256
common tokens a bit, rows carry their common-token bits in ``ROW_BITS0..3`` (64 each;
tables with fewer columns simply have fewer words), and the query's common tokens
arrive as ``P_QUERY_BITS0..3``, so a row's match count is its
occurrences in ``cand`` plus the popcount of the shared bits; (2) the last
``P_N_EXTRA`` entries of ``cand`` are candidates only (the best-scoring rows of the
common tokens' posting lists): they add rows without adding occurrences.

``scratch`` (int32, zero on entry) has one counter per row, then one shopper mark per
product at ``rows.shape[0] + product_id`` (so the caller sizes it ``>= n_rows +
max_product_id + 1``; marks that do not fit are ignored). The kernel counts candidates
without allocating an R-sized array per request and zeroes every entry it used, so
scratch is all zeros again on return and can be reused by the next call.

Layout
------
Rows (int64): ``ROW_CAMPAIGN`` 0 (campaign slot), ``ROW_PRODUCT`` 1, ``ROW_BID`` 2
(micros), ``ROW_QUALITY`` 3 (ppm), ``ROW_BITS0..3`` 4..7, ``ROW_SUB`` 8 (next-best
substitute row of the same campaign for a similar product, or -1), ``ROW_REPL`` 9
(replenishment group id >= 0, or -1); ``ROW_COLS`` = 10.

Campaigns (int64): ``CAMP_LIVE`` 0, ``CAMP_START_MS`` 1, ``CAMP_END_MS`` 2, ``CAMP_ID`` 3,
``CAMP_GATE`` 4, ``CAMP_SEEN`` 5, ``CAMP_ELIGIBLE`` 6, ``CAMP_SUPPRESS_DAYS`` 7
(purchase-suppression window in days, 0 = none), ``CAMP_FLAGS`` 8 (``FLAG_NEEDS_STORE``
1, ``FLAG_NEEDS_SEGMENT`` 2), ``CAMP_MARK`` 9 (the kernel's own, per request:
``MARK_BLOCKED`` 1, ``MARK_STORE_OK`` 2), ``CAMP_MULT`` 10 (the kernel's own, per request:
bid multiplier in permille, 0 = none), ``CAMP_SEG_INC0..3`` 11..14 and
``CAMP_SEG_EXC0..3`` 15..18 (256-bit include / exclude segment masks, int64 bit
patterns); ``CAMP_COLS`` = 19. ``CAMP_MARK`` and ``CAMP_MULT`` must be zero between
calls: the kernel fills them from the params tail at entry and zeroes them again before
it returns.

Params (int64): ``P_NOW_MS`` 0 .. ``P_N_EXTRA`` 12 as before, then ``P_SEG0..3`` 13..16
(the shopper's segment bits), ``P_STOCK_A`` 17 and ``P_STOCK_B`` 18 (stock columns to
check, negative = none), ``P_LOW_STOCK`` 19 (threshold, 0 = off), ``P_FATIGUE`` 20 (K, 0 =
off), ``P_MIN_QUALITY`` 21 and ``P_MIN_EV`` 22 (silence thresholds, 0 = off), and the
tail counts ``P_N_PMARK`` 23, ``P_N_BLOCK`` 24, ``P_N_STORE`` 25, ``P_N_MULT`` 26,
``P_N_REPL`` 27. The tail starts at ``P_TAIL`` = ``PARAMS_LEN`` = 28, in this order:
``P_N_PMARK`` pairs (product id, mark), ``P_N_BLOCK`` blocked campaign slots,
``P_N_STORE`` store-allowed campaign slots, ``P_N_MULT`` pairs (campaign slot, permille;
the max wins when a slot repeats) and ``P_N_REPL`` suppressed replenishment group ids.
Each count is clamped to what the vector actually holds; entries naming a slot or
product out of range are ignored. A product mark (int32) holds ``days since the
shopper last bought it + 1`` in bits 0..15 (0 = never bought, cap 65535) and exposure
impressions in bits 16..30 (cap 32767).

``stock`` is a C-contiguous uint16 ``(n_columns, n_products)`` array (``(0, 0)`` is fine):
one row per store, so one request's lookups stay inside one or two contiguous rows
(~100 KB for 50k products) instead of striding across the whole table.
A product's stock level is the max over the checked columns, a quantity of
``STOCK_UNKNOWN`` (65535), a product or column outside the array counting as unknown =
available and not low; level 0 means known out of stock everywhere checked.

Backward compatibility: every column or parameter a table or vector lacks reads as 0
(``P_STOCK_A``/``P_STOCK_B`` as -1, ``ROW_SUB``/``ROW_REPL`` as -1), so 4/6/8-column rows,
4/7-column campaigns and 13-entry params behave exactly as before the shopper signals.

Rules
-----
For each distinct candidate row ``r`` (campaign slot ``c = rows[r, ROW_CAMPAIGN]``), in
this order; any failed test drops the row:

1. ``c`` in range, campaign live, inside its flight (``start <= now < end``, 0 = open).
2. Campaign level: not ``MARK_BLOCKED``; with ``FLAG_NEEDS_STORE`` it needs
   ``MARK_STORE_OK``; with ``FLAG_NEEDS_SEGMENT`` some ``CAMP_SEG_INC_k & P_SEG_k != 0``;
   no ``CAMP_SEG_EXC_k & P_SEG_k != 0``.
3. Product not ``P_EXCLUDE_PRODUCT``; when the query has tokens, at least ``min_match``
   of them matched.
4. Replenishment: ``ROW_REPL`` is not one of the tail's suppressed groups.
5. Purchase suppression: with the product's days field ``d != 0``, not
   ``d - 1 < CAMP_SUPPRESS_DAYS``.
6. Stock: a product known out of stock is substituted: follow ``ROW_SUB`` for at most
   ``SUB_HOPS`` hops (stopping at a row out of range, ``r`` itself or another campaign
   slot) to the first row whose product is available, not the excluded product, passes
   rules 4 and 5 and whose base quality is >= 1 and effective bid (rule 7) >= reserve.
   The candidate becomes that row (its product, bid, base quality; ``r``'s match count);
   no such row drops it.
7. Multiplier: effective bid ``bid * CAMP_MULT // 1000`` when ``CAMP_MULT > 0``; it is
   the bid the reserve, the ranking and the price cap see.
8. Effective bid >= reserve and base quality >= 1; then quality is scaled by relevance,
   ``max(1, q * m * m // (nq * nq))`` with ``m = min(matched, nq)`` when ``nq > 0``; by
   low stock, ``max(1, q * level // T)`` when ``0 < level < T`` and the level is known;
   by fatigue, ``max(1, q * K // (K + e))`` with ``e`` the product's exposures; then
   ``q >= P_MIN_QUALITY`` and ``bid * q >= P_MIN_EV * 1_000_000`` ("silence": better no
   ad than a poor one).
9. Counted eligible (``CAMP_ELIGIBLE``, once per request and campaign) and through the
   pacing gate (``CAMP_GATE``: closed at 0, else entered with probability
   ``gate / 65536`` drawn from a hash of the request seed and the campaign id, so a replay
   with the same seed decides alike; tables without the column are open). ``CAMP_SEEN``
   holds the tag of the last request that counted the campaign.

Survivors go to :func:`auction.clearing.clear_core` (which dedupes by campaign id and by
product). Row, campaign, product and stock indices out of range are skipped rather than
read, because numba does not bounds-check. Everything is int64, so
:func:`auction.reference.select_and_clear_py` agrees exactly.

The per-request state (scratch marks, ``CAMP_MARK``, ``CAMP_MULT``) makes a call on a
given index single-threaded, as the scratch counters already did.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from auction.clearing import OUT_INDEX, clear_core, clear_gsp
from auction.tiebreak import splitmix64

ROW_CAMPAIGN = 0
ROW_PRODUCT = 1
ROW_BID = 2
ROW_QUALITY = 3
ROW_BITS0 = 4  # common-token bits 0..63 (int64 bit pattern), then 64..127, ...
BIT_WORDS = 4
ROW_SUB = ROW_BITS0 + BIT_WORDS  # 8: next substitute row (same campaign), or -1
ROW_REPL = ROW_SUB + 1  # 9: replenishment group id, or -1
ROW_COLS = ROW_REPL + 1  # 10

CAMP_LIVE = 0
CAMP_START_MS = 1
CAMP_END_MS = 2
CAMP_ID = 3
CAMP_GATE = 4  # pacing: 0 = closed, GATE_OPEN = always, else pass probability in 1/65536
CAMP_SEEN = 5  # the kernel's own: tag of the last request that found the campaign eligible
CAMP_ELIGIBLE = 6  # the kernel's own: requests that found it eligible (impression share)
CAMP_SUPPRESS_DAYS = 7  # purchase-suppression window in days (0 = none)
CAMP_FLAGS = 8  # FLAG_* bits
CAMP_MARK = 9  # the kernel's own, per request: MARK_* bits (zero between calls)
CAMP_MULT = 10  # the kernel's own, per request: bid multiplier in permille (0 = none)
SEG_WORDS = 4
CAMP_SEG_INC0 = 11  # include-segment mask, 4 int64 words (11..14)
CAMP_SEG_EXC0 = CAMP_SEG_INC0 + SEG_WORDS  # 15: exclude-segment mask (15..18)
CAMP_COLS = CAMP_SEG_EXC0 + SEG_WORDS  # 19
GATE_OPEN = 65_536

FLAG_NEEDS_STORE = 1  # eligible only where the request marks the campaign store-allowed
FLAG_NEEDS_SEGMENT = 2  # eligible only if the shopper is in one of its include segments
MARK_BLOCKED = 1  # frequency-capped for this shopper
MARK_STORE_OK = 2  # the request's store is one the campaign targets

P_NOW_MS = 0
P_RESERVE = 1
P_INCREMENT = 2
P_SLOTS = 3
P_SEED = 4
P_EXCLUDE_PRODUCT = 5
P_QUERY_TOKENS = 6
P_MIN_MATCH = 7
# ``out`` columns: (row, price) always; the rest when ``out`` has OUT_COLS columns.
OUT_CAMPAIGN_SLOT = 2
OUT_PRODUCT = 3
OUT_CAMPAIGN_ID = 4
OUT_COLS = 5

P_QUERY_BITS0 = 8  # .. P_QUERY_BITS0 + BIT_WORDS - 1
P_N_EXTRA = P_QUERY_BITS0 + BIT_WORDS  # 12
PARAMS_LEN_V1 = P_N_EXTRA + 1  # 13: params before the shopper signals
P_SEG0 = 13  # shopper segment bits, 4 int64 words (13..16)
P_STOCK_A = P_SEG0 + SEG_WORDS  # 17: stock column to check (-1 = none)
P_STOCK_B = 18
P_LOW_STOCK = 19  # low-stock threshold T (0 = off)
P_FATIGUE = 20  # fatigue constant K (0 = off)
P_MIN_QUALITY = 21  # silence: final quality floor (0 = off)
P_MIN_EV = 22  # silence: bid * quality >= P_MIN_EV * MIN_EV_UNIT (0 = off)
P_N_PMARK = 23  # tail counts, in tail order
P_N_BLOCK = 24
P_N_STORE = 25
P_N_MULT = 26
P_N_REPL = 27
P_TAIL = 28
PARAMS_LEN = P_TAIL  # minimum length; the caller allocates more for the tail

STOCK_UNKNOWN = 65_535
MARK_DAYS_MASK = 0xFFFF  # product mark bits 0..15: days since last purchase + 1, 0 = never
MARK_EXPOSURE_SHIFT = 16  # bits 16..30: exposure impressions
MARK_EXPOSURE_MASK = 0x7FFF
MARK_BITS = 0x7FFF_FFFF
SUB_HOPS = 8
MULT_UNIT = 1_000  # CAMP_MULT is in permille
MIN_EV_UNIT = 1_000_000

_EXTRA = np.int32(1 << 24)  # scratch flag: present as a candidate-only entry
_COUNT = np.int32((1 << 24) - 1)


@njit(cache=True, nogil=True, inline="always")
def _popcount(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True)
def _param(params: npt.NDArray[np.int64], i: int, default: int) -> np.int64:
    """``params[i]``, or ``default`` for a vector too short to hold it."""
    if i < params.shape[0]:
        return params[i]
    return np.int64(default)


@njit(cache=True, nogil=True)
def _mark(scratch: npt.NDArray[np.int32], n_rows: int, p: int) -> np.int64:
    """Product ``p``'s shopper mark from scratch, 0 when it has none (or no room)."""
    if p < 0 or p >= scratch.shape[0] - n_rows:
        return np.int64(0)
    return np.int64(scratch[n_rows + p])


@njit(cache=True, nogil=True)
def _stock_level(stock: npt.NDArray[np.uint16], p: int, col_a: int, col_b: int) -> np.int64:
    """Max quantity over the checked columns; outside the array counts as STOCK_UNKNOWN."""
    level = np.int64(0)
    for c in (col_a, col_b):
        if c < 0:
            continue
        if p < 0 or c >= stock.shape[0] or p >= stock.shape[1]:
            return np.int64(STOCK_UNKNOWN)
        qty = np.int64(stock[c, p])
        if qty > level:
            level = qty
    return level


@njit(cache=True, nogil=True)
def _listed(params: npt.NDArray[np.int64], at: int, n: int, value: int) -> bool:
    for i in range(at, at + n):
        if params[i] == value:
            return True
    return False


@njit(cache=True, nogil=True)
def _set_request_marks(
    rows_n: int,
    campaigns: npt.NDArray[np.int64],
    params: npt.NDArray[np.int64],
    scratch: npt.NDArray[np.int32],
    pmark_at: int,
    n_pmark: int,
    block_at: int,
    n_block: int,
    store_at: int,
    n_store: int,
    mult_at: int,
    n_mult: int,
    clear: bool,
) -> None:
    """Write the tail's per-request marks into scratch and the campaigns table, or zero them."""
    n_camps = campaigns.shape[0]
    room = scratch.shape[0] - rows_n
    for i in range(n_pmark):
        p = params[pmark_at + 2 * i]
        if p >= 0 and p < room:
            if clear:
                scratch[rows_n + p] = 0
            else:
                scratch[rows_n + p] = np.int32(params[pmark_at + 2 * i + 1] & MARK_BITS)
    if campaigns.shape[1] > CAMP_MARK:
        for i in range(n_block):
            s = params[block_at + i]
            if s >= 0 and s < n_camps:
                campaigns[s, CAMP_MARK] = 0 if clear else campaigns[s, CAMP_MARK] | MARK_BLOCKED
        for i in range(n_store):
            s = params[store_at + i]
            if s >= 0 and s < n_camps:
                campaigns[s, CAMP_MARK] = 0 if clear else campaigns[s, CAMP_MARK] | MARK_STORE_OK
    if campaigns.shape[1] > CAMP_MULT:
        for i in range(n_mult):
            s = params[mult_at + 2 * i]
            if s >= 0 and s < n_camps:
                if clear:
                    campaigns[s, CAMP_MULT] = 0
                elif params[mult_at + 2 * i + 1] > campaigns[s, CAMP_MULT]:
                    campaigns[s, CAMP_MULT] = params[mult_at + 2 * i + 1]


@njit(cache=True, nogil=True)
def select_and_clear(
    cand: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    campaigns: npt.NDArray[np.int64],
    params: npt.NDArray[np.int64],
    scratch: npt.NDArray[np.int32],
    out: npt.NDArray[np.int64],
    stock: npt.NDArray[np.uint16] | None = None,
) -> int:
    """Write ``(row index, price_micros)`` per winner into ``out``; return the count."""
    n_rows = rows.shape[0]
    n_camps = campaigns.shape[0]
    n_ccols = campaigns.shape[1]
    gated = n_ccols > CAMP_GATE
    counting = n_ccols > CAMP_ELIGIBLE
    tag = params[P_SEED] + 1  # per-request mark in CAMP_SEEN (seeds are >= 0)
    n_cand = cand.shape[0]
    if scratch.shape[0] < n_rows:
        raise ValueError("scratch must have one int32 per row")
    if stock is None:
        stk = np.zeros((0, 0), np.uint16)
    else:
        stk = stock

    # The params tail: each count clamped to what the vector holds.
    n_params = params.shape[0]
    at = P_TAIL
    n_pmark = min(max(_param(params, P_N_PMARK, 0), 0), max(n_params - at, 0) // 2)
    pmark_at = at
    at += 2 * n_pmark
    n_block = min(max(_param(params, P_N_BLOCK, 0), 0), max(n_params - at, 0))
    block_at = at
    at += n_block
    n_store = min(max(_param(params, P_N_STORE, 0), 0), max(n_params - at, 0))
    store_at = at
    at += n_store
    n_mult = min(max(_param(params, P_N_MULT, 0), 0), max(n_params - at, 0) // 2)
    mult_at = at
    at += 2 * n_mult
    n_repl = min(max(_param(params, P_N_REPL, 0), 0), max(n_params - at, 0))
    repl_at = at
    _set_request_marks(n_rows, campaigns, params, scratch, pmark_at, n_pmark, block_at,
                       n_block, store_at, n_store, mult_at, n_mult, False)

    n_extra = min(max(params[P_N_EXTRA], np.int64(0)), np.int64(n_cand))
    n_counted = n_cand - n_extra
    for j in range(n_counted):
        r = cand[j]
        if r >= 0 and r < n_rows:
            scratch[r] += 1
    for j in range(n_counted, n_cand):
        r = cand[j]
        if r >= 0 and r < n_rows:
            scratch[r] |= _EXTRA
    n_words = min(max(rows.shape[1] - ROW_BITS0, 0), BIT_WORDS)
    qbits = np.zeros(BIT_WORDS, np.uint64)
    for k in range(n_words):
        qbits[k] = np.uint64(params[P_QUERY_BITS0 + k])

    now = params[P_NOW_MS]
    reserve = params[P_RESERVE]
    increment = params[P_INCREMENT]
    n_slots = params[P_SLOTS]
    seed = params[P_SEED]
    exclude = params[P_EXCLUDE_PRODUCT]
    nq = params[P_QUERY_TOKENS]
    min_match = params[P_MIN_MATCH]
    nq2 = nq * nq

    # Shopper signals; whatever a table or the vector lacks is off.
    seg = np.zeros(SEG_WORDS, np.int64)
    any_seg = False
    for k in range(SEG_WORDS):
        seg[k] = _param(params, P_SEG0 + k, 0)
        any_seg = any_seg or seg[k] != 0
    n_inc = min(max(n_ccols - CAMP_SEG_INC0, 0), SEG_WORDS)
    n_exc = min(max(n_ccols - CAMP_SEG_EXC0, 0), SEG_WORDS)
    col_a = _param(params, P_STOCK_A, -1)
    col_b = _param(params, P_STOCK_B, -1)
    stock_on = col_a >= 0 or col_b >= 0
    low_t = _param(params, P_LOW_STOCK, 0)
    fatigue = _param(params, P_FATIGUE, 0)
    min_quality = _param(params, P_MIN_QUALITY, 0)
    min_ev = _param(params, P_MIN_EV, 0)
    has_flags = n_ccols > CAMP_FLAGS
    use_marks = n_ccols > CAMP_MARK and n_block + n_store > 0
    use_mult = n_ccols > CAMP_MULT and n_mult > 0
    use_suppress = n_ccols > CAMP_SUPPRESS_DAYS and n_pmark > 0
    use_fatigue = fatigue > 0 and n_pmark > 0
    has_sub = rows.shape[1] > ROW_SUB
    use_repl = rows.shape[1] > ROW_REPL and n_repl > 0

    bid = np.empty(n_cand, np.int64)
    quality = np.empty(n_cand, np.int64)
    camp_id = np.empty(n_cand, np.int64)
    product = np.empty(n_cand, np.int64)
    row_of = np.empty(n_cand, np.int64)
    n = 0
    for j in range(n_cand):
        r = cand[j]
        if r < 0 or r >= n_rows:
            continue
        seen = scratch[r]
        if seen == 0:
            continue  # a repeat of a row already handled (and reset) earlier
        scratch[r] = 0
        matched = np.int64(seen & _COUNT)
        for k in range(n_words):
            if qbits[k]:
                matched += _popcount(np.uint64(rows[r, ROW_BITS0 + k]) & qbits[k])

        # 1. campaign slot, live, flight
        slot = rows[r, ROW_CAMPAIGN]
        if slot < 0 or slot >= n_camps:
            continue
        if campaigns[slot, CAMP_LIVE] != 1:
            continue
        start = campaigns[slot, CAMP_START_MS]
        if start != 0 and now < start:
            continue
        end = campaigns[slot, CAMP_END_MS]
        if end != 0 and now >= end:
            continue
        # 2. campaign level: frequency cap, store targeting, segments
        mark = campaigns[slot, CAMP_MARK] if use_marks else np.int64(0)
        if mark & MARK_BLOCKED:
            continue
        if has_flags:
            flags = campaigns[slot, CAMP_FLAGS]
            if flags & FLAG_NEEDS_STORE and not mark & MARK_STORE_OK:
                continue
            if flags & FLAG_NEEDS_SEGMENT:
                hit = False
                for k in range(n_inc):
                    if campaigns[slot, CAMP_SEG_INC0 + k] & seg[k] != 0:
                        hit = True
                        break
                if not hit:
                    continue
        if any_seg:
            hit = False
            for k in range(n_exc):
                if campaigns[slot, CAMP_SEG_EXC0 + k] & seg[k] != 0:
                    hit = True
                    break
            if hit:
                continue
        # 3. excluded product, min_match
        p = rows[r, ROW_PRODUCT]
        if p == exclude:
            continue
        if nq > 0 and matched < min_match:
            continue
        # 4. replenishment group, 5. purchase suppression
        if use_repl:
            g = rows[r, ROW_REPL]
            if g >= 0 and _listed(params, repl_at, n_repl, g):
                continue
        suppress = campaigns[slot, CAMP_SUPPRESS_DAYS] if use_suppress else np.int64(0)
        if suppress > 0:
            d = _mark(scratch, n_rows, p) & MARK_DAYS_MASK
            if d != 0 and d - 1 < suppress:
                continue
        mult = campaigns[slot, CAMP_MULT] if use_mult else np.int64(0)
        # 6. stock: a product known out of stock is replaced by the next-best substitute
        level = np.int64(STOCK_UNKNOWN)
        rr = r
        if stock_on:
            level = _stock_level(stk, p, col_a, col_b)
            if level == 0:
                rr = -1
                s = r
                for _hop in range(SUB_HOPS):
                    if not has_sub:
                        break
                    s = rows[s, ROW_SUB]
                    if s < 0 or s >= n_rows or s == r or rows[s, ROW_CAMPAIGN] != slot:
                        break
                    ps = rows[s, ROW_PRODUCT]
                    if ps == exclude:
                        continue
                    if use_repl:
                        g = rows[s, ROW_REPL]
                        if g >= 0 and _listed(params, repl_at, n_repl, g):
                            continue
                    if suppress > 0:
                        d = _mark(scratch, n_rows, ps) & MARK_DAYS_MASK
                        if d != 0 and d - 1 < suppress:
                            continue
                    bs = rows[s, ROW_BID]
                    if mult > 0:
                        bs = bs * mult // MULT_UNIT
                    if bs < reserve or rows[s, ROW_QUALITY] < 1:
                        continue
                    ls = _stock_level(stk, ps, col_a, col_b)
                    if ls == 0:
                        continue
                    rr = s
                    p = ps
                    level = ls
                    break
                if rr < 0:
                    continue
        # 7. multiplier, 8. reserve, quality and its scalings, silence
        b = rows[rr, ROW_BID]
        if mult > 0:
            b = b * mult // MULT_UNIT
        if b < reserve:
            continue
        q = rows[rr, ROW_QUALITY]
        if q < 1:
            continue
        if nq > 0:
            m = min(matched, nq)
            q = max(np.int64(1), q * m * m // nq2)
        if low_t > 0 and level < low_t and level != STOCK_UNKNOWN:
            q = max(np.int64(1), q * level // low_t)
        if use_fatigue:
            e = (_mark(scratch, n_rows, p) >> MARK_EXPOSURE_SHIFT) & MARK_EXPOSURE_MASK
            if e > 0:
                q = max(np.int64(1), q * fatigue // (fatigue + e))
        if min_quality > 0 and q < min_quality:
            continue
        if min_ev > 0 and b * q < min_ev * MIN_EV_UNIT:
            continue
        # 9. Eligible: counted once per request and campaign (impression share), before
        # pacing's gate decides whether it enters.
        if counting and campaigns[slot, CAMP_SEEN] != tag:
            campaigns[slot, CAMP_SEEN] = tag
            campaigns[slot, CAMP_ELIGIBLE] += 1
        if gated:
            gate = campaigns[slot, CAMP_GATE]
            if gate < GATE_OPEN:
                if gate <= 0:
                    continue
                draw = splitmix64(np.uint64(seed) ^ (np.uint64(campaigns[slot, CAMP_ID])
                                                     * np.uint64(0x9E3779B97F4A7C15)))
                if np.int64(draw >> np.uint64(48)) >= gate:
                    continue

        cid = campaigns[slot, CAMP_ID]
        bid[n] = b
        quality[n] = q
        camp_id[n] = cid
        product[n] = p
        row_of[n] = rr
        n += 1

    # The marks were only needed by the loop above: scratch and tables are clean again.
    _set_request_marks(n_rows, campaigns, params, scratch, pmark_at, n_pmark, block_at,
                       n_block, store_at, n_store, mult_at, n_mult, True)

    # Tie keys are hashed lazily inside the clearing, only for the few candidates that
    # need one (see clearing._key), so no key column is built here.
    no_keys = np.empty(0, np.uint64)
    n_win = clear_core(
        bid, quality, camp_id, product, no_keys, True, seed, n, reserve, increment, n_slots, out
    )
    # With room for them, also hand back what the caller needs to build each ad, so it
    # does not index the tables again from Python (numpy scalar access is slow).
    wide = out.shape[1] >= OUT_COLS
    for w in range(n_win):
        r = row_of[out[w, OUT_INDEX]]
        out[w, OUT_INDEX] = r
        if wide:
            slot = rows[r, ROW_CAMPAIGN]
            out[w, OUT_CAMPAIGN_SLOT] = slot
            out[w, OUT_PRODUCT] = rows[r, ROW_PRODUCT]
            out[w, OUT_CAMPAIGN_ID] = campaigns[slot, CAMP_ID]
    return n_win


def warm_up() -> None:
    """Compile (or load from the on-disk cache) both kernels for the production types.

    Called once at start-up so the first request does not pay ~1 s of compilation. The
    dtypes and C-contiguous layouts here must match what the exchange passes, or numba
    compiles another specialisation on first use. ``select_and_clear`` is compiled both
    with ``stock`` (uint16, 2D) and without it, the six-argument call callers still make.
    """
    i64 = np.int64
    one = np.ones(1, i64)
    out = np.zeros((1, 2), i64)
    clear_gsp(one, one, one, one, np.ones(1, np.uint64), 0, 0, 1, out)
    rows = np.zeros((1, ROW_COLS), i64)
    rows[0, :4] = [0, 1, 1, 1]
    rows[0, ROW_SUB] = rows[0, ROW_REPL] = -1
    campaigns = np.zeros((1, CAMP_COLS), i64)
    campaigns[0, [CAMP_LIVE, CAMP_ID, CAMP_GATE]] = [1, 1, GATE_OPEN]
    params = np.zeros(PARAMS_LEN, i64)
    params[P_SLOTS] = 1
    params[P_EXCLUDE_PRODUCT] = -1
    params[P_STOCK_A] = params[P_STOCK_B] = -1
    scratch = np.zeros(3, np.int32)
    stock = np.zeros((0, 0), np.uint16)
    select_and_clear(np.zeros(1, i64), rows, campaigns, params, scratch, out, stock)
    select_and_clear(np.zeros(1, i64), rows, campaigns, params, scratch, out)
