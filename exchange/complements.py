"""Complementary categories: what else may be advertised on a product's page.

Loaded from ``config/complements.toml`` (retailer-editable). Keys and values are
category paths at any level, normalised like the index's (``tokenizer.category_path``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec

from exchange.settings import SettingsError
from exchange.tokenizer import category_path


class _File(msgspec.Struct, forbid_unknown_fields=True):
    complements: dict[str, list[str]] = {}


def load_complements(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Normalised category path -> its complementary category paths."""
    try:
        raw = msgspec.convert(tomllib.loads(Path(path).read_text()), _File)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"complements file {path}: {exc}") from exc
    out: dict[str, tuple[str, ...]] = {}
    for key, values in raw.complements.items():
        norm = category_path(key)
        if not norm:
            raise SettingsError(f"complements file {path}: empty category {key!r}")
        paths = tuple(dict.fromkeys(p[-1] for v in values if (p := category_path(v))))
        out[norm[-1]] = tuple(p for p in paths if p != norm[-1])
    return out


def complements_of(categories: list[str], table: dict[str, tuple[str, ...]]
                   ) -> tuple[str, ...]:
    """The complements of the most specific listed level of a product's category path
    (``categories`` root first, as ``Index.product_categories`` gives it)."""
    for path in reversed(categories):
        found = table.get(path)
        if found is not None:
            return found
    return ()
