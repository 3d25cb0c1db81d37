"""Errors raised by the pacing package.

Hierarchy::

    PacingError              base for everything this package raises
    └── InvalidCharge        (also a ValueError) a charge the ledger refuses before
                             touching Redis: negative money, bad day, empty event id...

Redis failures (connection, timeout) pass through as ``redis.exceptions.RedisError``:
whether to retry a beacon is the caller's call, and a retry is safe (billing is
idempotent per event id).
"""

from __future__ import annotations


class PacingError(Exception):
    """Base class of the errors raised by ``pacing``."""


class InvalidCharge(PacingError, ValueError):
    """Arguments to ``Ledger.record`` that could never be billed."""
