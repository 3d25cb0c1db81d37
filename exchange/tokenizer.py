"""Text to match tokens, shared by the catalogue index and search queries.

Both sides go through the same function, so a crude normalisation (lower case,
alphanumeric runs, plural ``s`` dropped, stop words removed) is consistent by
construction. This is retrieval for ads, not a search engine: the storefront's own
search ranks results; the exchange only needs "is this product about this query".
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[0-9a-z]+")
STOP_WORDS = frozenset(
    "a an and the of for with in on to by from or at as is my our your best new".split()
)


def _norm(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Distinct match tokens of ``text`` in first-seen order."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        tok = _norm(word)
        if tok not in out:
            out.append(tok)
    return out


def phrase(text: str) -> str:
    """``text``'s match tokens joined by spaces: how phrase, exact and negative keywords
    are stored and how a query's n-grams are looked up."""
    return " ".join(tokens(text))


def category_path(category: str) -> list[str]:
    """``"Dairy > Milk > Oat milk"`` -> its normalised ancestors, root first."""
    parts = [p.strip().lower() for p in category.split(">") if p.strip()]
    return [" > ".join(parts[: i + 1]) for i in range(len(parts))]
