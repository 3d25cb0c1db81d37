"""Money at the edge: decimal strings in currency units <-> integer micro-units.

The API speaks ``"0.85"``; everything inside speaks ``850_000``. Parsing is exact
(``Decimal``, never ``float``) and refuses more precision than a micro-unit.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS = 1_000_000
_QUANTUM = Decimal("0.000001")
MAX_MICROS = 10**15  # a billion currency units: far above any real budget
_MAX = Decimal(MAX_MICROS) / MICROS


class MoneyError(ValueError):
    """A string that is not a non-negative amount with at most six decimals."""


def parse_micros(text: str) -> int:
    if not isinstance(text, str) or not text or len(text) > 32:
        raise MoneyError("expected a decimal string such as \"0.85\"")
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise MoneyError("expected a decimal string such as \"0.85\"") from exc
    if not value.is_finite() or value < 0:
        raise MoneyError("must be a finite, non-negative amount")
    # Before quantize: a huge amount ("1e40", 30 nines) overflows its precision and raises.
    if value > _MAX:
        raise MoneyError("amount too large")
    if value != value.quantize(_QUANTUM):
        raise MoneyError("at most 6 decimal places")
    return int(value * MICROS)


def format_micros(micros: int) -> str:
    """``850000`` -> ``"0.85"``; at least two decimals, trailing zeros beyond dropped."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS)
    digits = f"{frac:06d}".rstrip("0")
    if len(digits) < 2:
        digits = digits.ljust(2, "0")
    return f"{sign}{whole}.{digits}"
