"""Seeded, deterministic tie-break keys for the auction.

Equal scores are common (bids and qualities cluster on round numbers), so the order among
them must be neither "whoever was indexed first" (which would favour old campaigns forever)
nor random per request (which would make replays disagree). A splitmix64 hash of the
request seed and the (campaign, product) pair gives a fair order that any replay with the
same seed reproduces.

The numba and pure-Python versions must agree bit for bit: numba works in ``uint64`` with
wrapping arithmetic, Python masks every step to 64 bits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

MASK64 = 0xFFFFFFFFFFFFFFFF

_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB

# numba turns mixed int64/uint64 arithmetic into float64, so every constant is a uint64.
_U_GAMMA = np.uint64(_GAMMA)
_U_MIX1 = np.uint64(_MIX1)
_U_MIX2 = np.uint64(_MIX2)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_U32 = np.uint64(32)


@njit(cache=True, nogil=True)
def splitmix64(x: np.uint64) -> np.uint64:
    """The standard splitmix64 finaliser (wrapping uint64 arithmetic)."""
    z = np.uint64(x) + _U_GAMMA
    z = (z ^ (z >> _U30)) * _U_MIX1
    z = (z ^ (z >> _U27)) * _U_MIX2
    return z ^ (z >> _U31)


@njit(cache=True, nogil=True)
def tie_key(seed: np.int64, campaign_id: np.int64, product_id: np.int64) -> np.uint64:
    """Tie-break key of one candidate; higher wins among equal scores."""
    pair = (np.uint64(campaign_id) << _U32) | np.uint64(product_id)
    return splitmix64(np.uint64(seed) ^ splitmix64(pair))


@njit(cache=True, nogil=True)
def tie_keys(
    seed: np.int64, campaign: npt.NDArray[np.int64], product: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """Tie-break keys for whole columns, for callers that hold candidates as arrays."""
    n = min(campaign.shape[0], product.shape[0])
    keys = np.empty(n, np.uint64)
    for i in range(n):
        keys[i] = tie_key(seed, campaign[i], product[i])
    return keys


def splitmix64_py(x: int) -> int:
    """Pure-Python twin of :func:`splitmix64`."""
    z = (x + _GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & MASK64
    return z ^ (z >> 31)


def tie_key_py(seed: int, campaign_id: int, product_id: int) -> int:
    """Pure-Python twin of :func:`tie_key`."""
    pair = ((campaign_id << 32) | product_id) & MASK64
    return splitmix64_py((seed & MASK64) ^ splitmix64_py(pair))
