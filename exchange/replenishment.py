"""Replenishment windows: a bought category is not advertised again for a while.

Loaded from ``config/replenishment.toml``. Each listed category (normalised like the
index's, ``tokenizer.category_path``) is a *group*; a product belongs to the group of the
most specific listed level of its category path. After a shopper buys a product of a
group, no row of that group competes for them for the group's window (``ROW_REPL`` in the
kernel's tables).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import msgspec

from exchange.settings import SettingsError
from exchange.tokenizer import category_path

Days = Annotated[int, msgspec.Meta(ge=1, le=3650)]


class _File(msgspec.Struct, forbid_unknown_fields=True):
    windows: dict[str, Days] = {}


class Replenishment:
    """Category path -> (group id, window days)."""

    def __init__(self, windows: dict[str, int] | None = None) -> None:
        self.groups: dict[str, int] = {}
        self.days: list[int] = []
        for key, days in (windows or {}).items():
            norm = category_path(key)
            if not norm:
                raise SettingsError(f"replenishment: empty category {key!r}")
            if norm[-1] not in self.groups:
                self.groups[norm[-1]] = len(self.days)
                self.days.append(days)

    def group_of(self, categories: list[str]) -> int:
        """The group of a product (``categories`` root first), or -1."""
        for path in reversed(categories):
            g = self.groups.get(path)
            if g is not None:
                return g
        return -1


def load_replenishment(path: str | Path) -> Replenishment:
    try:
        raw = msgspec.convert(tomllib.loads(Path(path).read_text()), _File)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"replenishment file {path}: {exc}") from exc
    return Replenishment(raw.windows)
