"""Auction: generalized second-price clearing and the fused select-and-clear kernel.

The numba kernels (``clear_gsp``, ``select_and_clear``) serve requests; their plain-Python
twins (``clear_gsp_py``, ``select_and_clear_py``) define the rules for tests, and
``clear_gsp_np`` exists only to benchmark against.
"""

from __future__ import annotations

from auction.clearing import OUT_INDEX, OUT_PRICE, clear_gsp
from auction.reference import clear_gsp_py, select_and_clear_py
from auction.selection import (
    CAMP_COLS,
    CAMP_END_MS,
    CAMP_ID,
    CAMP_LIVE,
    CAMP_START_MS,
    P_EXCLUDE_PRODUCT,
    P_INCREMENT,
    P_MIN_MATCH,
    P_NOW_MS,
    P_QUERY_TOKENS,
    P_RESERVE,
    P_SEED,
    P_SLOTS,
    PARAMS_LEN,
    ROW_BID,
    ROW_CAMPAIGN,
    ROW_COLS,
    ROW_PRODUCT,
    ROW_QUALITY,
    select_and_clear,
    warm_up,
)
from auction.tiebreak import splitmix64, splitmix64_py, tie_key, tie_key_py, tie_keys
from auction.vectorized import clear_gsp_np

__all__ = [
    "CAMP_COLS",
    "CAMP_END_MS",
    "CAMP_ID",
    "CAMP_LIVE",
    "CAMP_START_MS",
    "OUT_INDEX",
    "OUT_PRICE",
    "PARAMS_LEN",
    "P_EXCLUDE_PRODUCT",
    "P_INCREMENT",
    "P_MIN_MATCH",
    "P_NOW_MS",
    "P_QUERY_TOKENS",
    "P_RESERVE",
    "P_SEED",
    "P_SLOTS",
    "ROW_BID",
    "ROW_CAMPAIGN",
    "ROW_COLS",
    "ROW_PRODUCT",
    "ROW_QUALITY",
    "clear_gsp",
    "clear_gsp_np",
    "clear_gsp_py",
    "select_and_clear",
    "select_and_clear_py",
    "splitmix64",
    "splitmix64_py",
    "tie_key",
    "tie_key_py",
    "tie_keys",
    "warm_up",
]
