"""The fused hot-path kernel: gather, filter, relevance and GSP clearing in one numba call.

numba charges a few microseconds per array argument at dispatch, so the exchange's
in-memory index is packed into two int64 tables (``rows``, ``campaigns``) and the request
into one int64 ``params`` vector; the kernel takes six arrays in all.

``cand`` lists row indices, one entry per query token the row matched, so a row's number
of occurrences is its match count. Two refinements keep very common tokens ("oz",
"pack", "organic") from flooding the kernel: (1) the index gives each of up to 256
common tokens a bit, rows carry their common-token bits in ``ROW_BITS0..3`` (64 each;
tables with fewer columns simply have fewer words), and the query's common tokens
arrive as ``P_QUERY_BITS0..3``, so a row's match count is its
occurrences in ``cand`` plus the popcount of the shared bits; (2) the last
``P_N_EXTRA`` entries of ``cand`` are candidates only (the best-scoring rows of the
common tokens' posting lists): they add rows without adding occurrences.

``scratch`` (int32, one per row, zero on entry) counts them without allocating an
R-sized array per request; the kernel zeroes each entry as it consumes it, so scratch
is all zeros again on return and can be reused by the next call.

Eligibility of a distinct row ``r`` (campaign slot ``c = rows[r, ROW_CAMPAIGN]``):
``c >= 0``, campaign live, through its pacing gate (``CAMP_GATE``: closed at 0, else
entered with probability ``gate / 65536`` drawn from a hash of the request seed and the
campaign id, so a replay with the same seed decides alike; tables without the column are
open; ``CAMP_ELIGIBLE`` counts the requests that found the campaign eligible, once per
request, before the gate), inside its flight (``start <= now < end``, 0 = open), product
not excluded, ``bid >= reserve``, base quality >= 1 and, when the query has tokens, at
least ``min_match`` of them matched. Relevance scales quality by the squared matched
fraction, ``max(1, q * m * m // (nq * nq))`` with ``m = min(matched, nq)``, so rows
matching more of the query rank higher without floating point. Row or campaign indices
out of range are skipped rather than read, because numba does not bounds-check.
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
ROW_COLS = ROW_BITS0 + BIT_WORDS

CAMP_LIVE = 0
CAMP_START_MS = 1
CAMP_END_MS = 2
CAMP_ID = 3
CAMP_GATE = 4  # pacing: 0 = closed, GATE_OPEN = always, else pass probability in 1/65536
CAMP_SEEN = 5  # the kernel's own: tag of the last request that found the campaign eligible
CAMP_ELIGIBLE = 6  # the kernel's own: requests that found it eligible (impression share)
CAMP_COLS = 7
GATE_OPEN = 65_536

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
P_N_EXTRA = P_QUERY_BITS0 + BIT_WORDS
PARAMS_LEN = P_N_EXTRA + 1

_EXTRA = np.int32(1 << 24)  # scratch flag: present as a candidate-only entry
_COUNT = np.int32((1 << 24) - 1)


@njit(cache=True, nogil=True, inline="always")
def _popcount(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True)
def select_and_clear(
    cand: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    campaigns: npt.NDArray[np.int64],
    params: npt.NDArray[np.int64],
    scratch: npt.NDArray[np.int32],
    out: npt.NDArray[np.int64],
) -> int:
    """Write ``(row index, price_micros)`` per winner into ``out``; return the count."""
    n_rows = rows.shape[0]
    n_camps = campaigns.shape[0]
    gated = campaigns.shape[1] > CAMP_GATE
    counting = campaigns.shape[1] > CAMP_ELIGIBLE
    tag = params[P_SEED] + 1  # per-request mark in CAMP_SEEN (seeds are >= 0)
    n_cand = cand.shape[0]
    if scratch.shape[0] < n_rows:
        raise ValueError("scratch must have one int32 per row")

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
        p = rows[r, ROW_PRODUCT]
        if p == exclude:
            continue
        b = rows[r, ROW_BID]
        if b < reserve:
            continue
        q = rows[r, ROW_QUALITY]
        if q < 1:
            continue
        if nq > 0:
            if matched < min_match:
                continue
            m = min(matched, nq)
            q = max(np.int64(1), q * m * m // nq2)
        # Eligible: counted once per request and campaign (impression share), before
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
        row_of[n] = r
        n += 1

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
    compiles another specialisation on first use.
    """
    i64 = np.int64
    one = np.ones(1, i64)
    out = np.zeros((1, 2), i64)
    clear_gsp(one, one, one, one, np.ones(1, np.uint64), 0, 0, 1, out)
    rows = np.zeros((1, ROW_COLS), i64)
    rows[0, :4] = [0, 1, 1, 1]
    campaigns = np.array([[1, 0, 0, 1, GATE_OPEN, 0, 0]], i64)
    params = np.zeros(PARAMS_LEN, i64)
    params[P_SLOTS] = 1
    params[P_EXCLUDE_PRODUCT] = -1
    select_and_clear(np.zeros(1, i64), rows, campaigns, params, np.zeros(1, np.int32), out)
