"""GSP clearing written with numpy, kept only as a speed comparison for the numba kernel.

numpy cannot express the greedy dedupe walk, so it narrows the field first: take every
candidate whose score reaches the k-th best score (all ties at the boundary included, so
the set is an exact prefix of the full ranking), sort that prefix with ``np.lexsort`` and
walk it in Python. If dedupe drops so many that fewer than ``n_slots + 1`` survive, the
prefix was too short and k doubles. Results are identical to :func:`auction.clearing.clear_gsp`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_MIN_PREFIX = 32


def clear_gsp_np(
    bid: npt.NDArray[np.int64],
    quality: npt.NDArray[np.int64],
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    tiekey: npt.NDArray[np.uint64],
    reserve: int,
    increment: int,
    n_slots: int,
) -> list[tuple[int, int]]:
    """``[(candidate index, price_micros), ...]`` in slot order."""
    if n_slots <= 0:
        return []
    n = min(len(bid), len(quality), len(campaign), len(product), len(tiekey))
    bid, quality = bid[:n], quality[:n]
    idx = np.flatnonzero((bid >= reserve) & (quality >= 1))
    score = bid[idx] * quality[idx]
    need = n_slots + 1
    k = max(4 * need, _MIN_PREFIX)

    while True:
        if k >= len(idx):
            prefix = np.arange(len(idx))
            complete = True
        else:
            threshold = np.partition(score, len(idx) - k)[len(idx) - k]
            prefix = np.flatnonzero(score >= threshold)
            complete = False
        # lexsort: last key is primary. ~tiekey orders uint64 descending without overflow.
        order = prefix[np.lexsort((idx[prefix], ~tiekey[idx[prefix]], -score[prefix]))]
        ranked = idx[order].tolist()
        kept = _walk(ranked, campaign, product, need)
        if len(kept) == need or complete:
            break
        k *= 2

    bids = bid[kept].tolist()
    quals = quality[kept].tolist()
    winners: list[tuple[int, int]] = []
    for w in range(min(len(kept), n_slots)):
        if w + 1 < len(kept):
            price = max(bids[w + 1] * quals[w + 1] // quals[w] + increment, reserve)
        else:
            price = reserve
        winners.append((kept[w], min(price, bids[w])))
    return winners


def _walk(
    ranked: list[int],
    campaign: npt.NDArray[np.int64],
    product: npt.NDArray[np.int64],
    need: int,
) -> list[int]:
    """Greedy dedupe over an already ranked prefix; stops once ``need`` are kept."""
    camps = campaign[ranked].tolist()
    prods = product[ranked].tolist()
    kept: list[int] = []
    seen_c: set[int] = set()
    seen_p: set[int] = set()
    for i, c, p in zip(ranked, camps, prods, strict=True):
        if c in seen_c or p in seen_p:
            continue
        kept.append(i)
        seen_c.add(c)
        seen_p.add(p)
        if len(kept) == need:
            break
    return kept
