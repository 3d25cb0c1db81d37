"""Generalized second-price clearing (CPC) for sponsored-product slots, in numba.

Rules (see docs/DESIGN "Auction rules"):

- eligible: ``bid >= reserve`` and ``quality >= 1``;
- rank by ``score = bid * quality`` descending, then tie key descending, then candidate
  index ascending;
- dedupe greedily in rank order: a candidate is dropped when a better-ranked kept
  candidate has the same campaign or the same product;
- the first ``n_slots`` kept candidates win; winner ``i`` pays
  ``min(bid_i, max(reserve, score(next kept) // quality_i + increment))``, or
  ``min(bid_i, reserve)`` when nobody is kept after it.

Everything is int64 (micros, ppm) so the kernel and :mod:`auction.reference` agree exactly.

Instead of sorting all N candidates, the kernel makes one pass keeping the best
``max(16, 4 * (n_slots + 1))`` eligible candidates in a small sorted buffer (an exact
prefix of the ranking) and walks that greedily. Only when dedupe exhausts the buffer
before ``n_slots + 1`` are kept (one past the last slot, to price it) does it fall back to
the greedy walk over a full stable sort (``_sorted_walk``, O(N log N), two N-sized
scratch arrays). The common case costs one pass over N and allocates O(n_slots).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from auction.tiebreak import tie_key

OUT_INDEX = 0
OUT_PRICE = 1

# Size of the ranked prefix kept in the first pass: enough that dedupe rarely exhausts it.
PREFIX_MIN = 16
PREFIX_PER_KEPT = 4


@njit(cache=True, nogil=True)
def _clashes(
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    kept: npt.NDArray[np.int64],
    n_kept: int,
    i: int,
) -> bool:
    c = campaign[i]
    p = product[i]
    for k in range(n_kept):
        j = kept[k]
        if campaign[j] == c or product[j] == p:
            return True
    return False


@njit(cache=True, nogil=True)
def _key(
    tiekey: npt.NDArray[np.uint64],
    lazy: bool,
    seed: int,
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    i: int,
) -> np.uint64:
    """Candidate ``i``'s tie key: given, or hashed on demand when ``lazy``.

    Two splitmix64 rounds cost several ns each, more than the rest of the per-candidate
    work in the fused kernel, yet a key is only read on equal scores or when a candidate
    enters the top buffer; hashing on demand skips almost all of them.
    """
    if lazy:
        return tie_key(seed, campaign[i], product[i])
    return tiekey[i]


@njit(cache=True, nogil=True)
def _top_prefix(
    bid: npt.NDArray[np.int64],
    quality: npt.NDArray[np.int64],
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    tiekey: npt.NDArray[np.uint64],
    lazy: bool,
    seed: int,
    n: int,
    reserve: int,
    top_idx: npt.NDArray[np.int64],
    top_score: npt.NDArray[np.int64],
    top_tk: npt.NDArray[np.uint64],
) -> int:
    """Fill ``top_*`` with the best ``len(top_idx)`` eligible candidates in rank order.

    One pass with insertion into a small sorted buffer; after the buffer fills, almost
    every candidate is rejected by one comparison with the buffer's worst entry. Scanning
    in index order and moving a newcomer only past strictly better-keyed entries keeps the
    lower index first among equals, so the buffer is an exact prefix of the ranking.
    """
    cap = top_idx.shape[0]
    count = 0
    for i in range(n):
        b = bid[i]
        q = quality[i]
        if b < reserve or q <= 0:
            continue
        s = b * q
        if count == cap:
            ws = top_score[cap - 1]
            if s < ws:
                continue
            t = _key(tiekey, lazy, seed, campaign, product, i)
            if s == ws and t <= top_tk[cap - 1]:
                continue
            pos = cap - 1
        else:
            t = _key(tiekey, lazy, seed, campaign, product, i)
            pos = count
            count += 1
        while pos > 0 and (
            s > top_score[pos - 1] or (s == top_score[pos - 1] and t > top_tk[pos - 1])
        ):
            top_idx[pos] = top_idx[pos - 1]
            top_score[pos] = top_score[pos - 1]
            top_tk[pos] = top_tk[pos - 1]
            pos -= 1
        top_idx[pos] = i
        top_score[pos] = s
        top_tk[pos] = t
    return count


@njit(cache=True, nogil=True)
def _sorted_walk(
    bid: npt.NDArray[np.int64],
    quality: npt.NDArray[np.int64],
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    tiekey: npt.NDArray[np.uint64],
    lazy: bool,
    seed: int,
    n: int,
    reserve: int,
    kept: npt.NDArray[np.int64],
) -> int:
    """The whole greedy walk over a full sort: used when dedupe ate the top prefix.

    That happens when one campaign (or product) holds many of the best candidates, as a
    brand bidding on dozens of SKUs of one category does on its product pages. A stable
    sort by score keeps equal scores in index order; each run of equal scores is then
    ordered by tie key (descending), index breaking exact ties, as the ranking demands.
    O(n log n), where repeated selection scans were O(n · slots · kept).
    """
    idx = np.empty(n, np.int64)
    score = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        b = bid[i]
        q = quality[i]
        if b < reserve or q <= 0:
            continue
        idx[m] = i
        score[m] = -(b * q)
        m += 1
    order = np.argsort(score[:m], kind="mergesort")
    need = kept.shape[0]
    n_kept = 0
    start = 0
    while start < m and n_kept < need:
        end = start + 1
        while end < m and score[order[end]] == score[order[start]]:
            end += 1
        run = np.empty(end - start, np.int64)
        keys = np.empty(end - start, np.uint64)
        for r in range(end - start):
            i = idx[order[start + r]]
            t = _key(tiekey, lazy, seed, campaign, product, i)
            pos = r
            # Insertion by (key desc, index asc); runs of equal scores are short.
            while pos > 0 and (t > keys[pos - 1] or (t == keys[pos - 1] and i < run[pos - 1])):
                run[pos] = run[pos - 1]
                keys[pos] = keys[pos - 1]
                pos -= 1
            run[pos] = i
            keys[pos] = t
        for r in range(end - start):
            if n_kept == need:
                break
            i = run[r]
            if not _clashes(campaign, product, kept, n_kept, i):
                kept[n_kept] = i
                n_kept += 1
        start = end
    return n_kept


@njit(cache=True, nogil=True)
def clear_core(
    bid: npt.NDArray[np.int64],
    quality: npt.NDArray[np.int64],
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    tiekey: npt.NDArray[np.uint64],
    lazy: bool,
    seed: int,
    n: int,
    reserve: int,
    increment: int,
    n_slots: int,
    out: npt.NDArray[np.int64],
) -> int:
    """Clear the first ``n`` candidates; shared by :func:`clear_gsp` and the fused kernel.

    With ``lazy`` the tie keys are hashed from ``seed`` on demand and ``tiekey`` is unused
    (see :func:`_key`); otherwise ``tiekey`` holds them and ``seed`` is unused.

    ``n`` is explicit so the fused kernel can pass scratch arrays that are only partly
    filled. ``n_slots`` is capped at ``out.shape[0]`` because numba does not bounds-check
    and an undersized ``out`` would otherwise corrupt memory.
    """
    if n_slots > out.shape[0]:
        n_slots = out.shape[0]
    if n_slots <= 0:
        return 0
    need = n_slots + 1  # one past the last slot, to price the last winner
    kept = np.empty(need, np.int64)
    cap = max(PREFIX_MIN, PREFIX_PER_KEPT * need)
    top_idx = np.empty(cap, np.int64)
    top_score = np.empty(cap, np.int64)
    top_tk = np.empty(cap, np.uint64)
    count = _top_prefix(
        bid, quality, campaign, product, tiekey, lazy, seed, n, reserve, top_idx, top_score, top_tk
    )

    n_kept = 0
    for k in range(count):
        if n_kept == need:
            break
        i = top_idx[k]
        if not _clashes(campaign, product, kept, n_kept, i):
            kept[n_kept] = i
            n_kept += 1
    if n_kept < need and count == cap:
        # Dedupe ate the whole prefix and the rest of the ranking is unknown: redo the
        # walk over a full sort (its first n_kept picks are the ones made above).
        n_kept = _sorted_walk(
            bid, quality, campaign, product, tiekey, lazy, seed, n, reserve, kept
        )

    n_win = min(n_kept, n_slots)
    for w in range(n_win):
        i = kept[w]
        if w + 1 < n_kept:
            j = kept[w + 1]
            price = (bid[j] * quality[j]) // quality[i] + increment
            if price < reserve:
                price = reserve
        else:
            price = reserve
        if price > bid[i]:
            price = bid[i]
        out[w, OUT_INDEX] = i
        out[w, OUT_PRICE] = price
    return n_win


@njit(cache=True, nogil=True)
def clear_gsp(
    bid: npt.NDArray[np.int64],
    quality: npt.NDArray[np.int64],
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    tiekey: npt.NDArray[np.uint64],
    reserve: int,
    increment: int,
    n_slots: int,
    out: npt.NDArray[np.int64],
) -> int:
    """Write ``(candidate index, price_micros)`` per winner into ``out``; return the count.

    Columns must have equal length; the shortest one bounds the candidates considered,
    again because numba does not bounds-check.
    """
    n = min(bid.shape[0], quality.shape[0], campaign.shape[0], product.shape[0], tiekey.shape[0])
    return clear_core(
        bid, quality, campaign, product, tiekey, False, 0, n, reserve, increment, n_slots, out
    )
