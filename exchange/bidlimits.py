"""The retailer's bid limits per category: the least and the most a click may be bid.

Loaded from ``config/bid_limits.toml`` (retailer-editable)::

    [categories."Dairy & Eggs"]
    min_bid = "0.05"
    max_bid = "5.00"

Each limit comes from the most specific level of a product's category path that sets it
(a leaf's own ``min_bid`` over its department's, the department's ``max_bid`` if the leaf
sets none). Campaign writes check every SKU bid against its product's limits
and name the row that breaks one (``bid_below_floor`` / ``bid_above_ceiling``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from exchange.money import MoneyError, parse_micros
from exchange.settings import SettingsError
from exchange.tokenizer import category_path

NO_CEILING = 1_000_000_000  # campaigns.MAX_BID_MICROS: the typo guard still applies


class _Limit(msgspec.Struct, forbid_unknown_fields=True):
    min_bid: str | None = None
    max_bid: str | None = None


class _File(msgspec.Struct, forbid_unknown_fields=True):
    categories: dict[str, _Limit] = {}


@dataclass(frozen=True)
class BidLimits:
    # normalised category path -> (min, max) micros; None: not set at that level
    by_path: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)

    def for_categories(self, categories: list[str]) -> tuple[int, int]:
        """(min, max) micros for a product's category path (root first): each limit from
        the most specific level that sets it."""
        low: int | None = None
        high: int | None = None
        for path in reversed(categories):
            found = self.by_path.get(path)
            if found is not None:
                low = found[0] if low is None else low
                high = found[1] if high is None else high
        return (low or 0), (NO_CEILING if high is None else high)

    def for_category(self, category: str) -> tuple[int, int]:
        return self.for_categories(category_path(category))


def load_bid_limits(path: str | Path) -> BidLimits:
    try:
        raw = msgspec.convert(tomllib.loads(Path(path).read_text()), _File)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"bid limits file {path}: {exc}") from exc
    out: dict[str, tuple[int | None, int | None]] = {}
    for name, limit in raw.categories.items():
        norm = category_path(name)
        if not norm:
            raise SettingsError(f"bid limits file {path}: empty category {name!r}")
        try:
            low = parse_micros(limit.min_bid) if limit.min_bid is not None else None
            high = parse_micros(limit.max_bid) if limit.max_bid is not None else None
        except MoneyError as exc:
            raise SettingsError(f"bid limits file {path}: {name!r}: {exc}") from exc
        if (low is not None and low < 0) or (high is not None and high <= 0) or (
                low is not None and high is not None and low > high):
            raise SettingsError(f"bid limits file {path}: {name!r}: need 0 <= min <= max")
        out[norm[-1]] = (low, high)
    return BidLimits(out)
