"""Replays every JSON auction case against the numba kernels and their twins.

Each case under ``tests/cases/auction/{exemplary,edge}`` states its candidates and the
winners and prices worked out by hand (the reasoning is in ``description``). The same
case also runs through the fused kernel, one row and one campaign slot per candidate,
with no query tokens and nothing excluded, which must reproduce plain clearing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.auction.harness import clear_all, keys_for, params, select_all

CASES_DIR = Path(__file__).resolve().parents[1] / "cases" / "auction"
CASE_FILES = sorted(CASES_DIR.glob("*/*.json"))
FIELDS = {"description", "reserve", "increment", "slots", "seed", "candidates", "expected"}


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    assert set(case) == FIELDS, f"{path.name}: fields {sorted(case)}"
    return case


def test_case_sets_are_populated() -> None:
    kinds = {p.parent.name for p in CASE_FILES}
    assert kinds == {"exemplary", "edge"}
    assert all(sum(p.parent.name == k for p in CASE_FILES) >= 4 for k in kinds)


@pytest.mark.parametrize(
    "path", CASE_FILES, ids=[str(p.relative_to(CASES_DIR)) for p in CASE_FILES]
)
def test_case(path: Path) -> None:
    case = _load(path)
    cands = case["candidates"]
    bid = [c["bid"] for c in cands]
    quality = [c["quality"] for c in cands]
    campaign = [c["campaign"] for c in cands]
    product = [c["product"] for c in cands]
    expected = [(w["index"], w["price"]) for w in case["expected"]]

    keys = keys_for(case["seed"], campaign, product)
    got = clear_all(
        bid, quality, campaign, product, keys, case["reserve"], case["increment"], case["slots"]
    )
    assert got == expected

    rows = [[i, c["product"], c["bid"], c["quality"]] for i, c in enumerate(cands)]
    campaigns = [[1, 0, 0, c["campaign"]] for c in cands]
    prm = params(
        reserve=case["reserve"],
        increment=case["increment"],
        slots=case["slots"],
        seed=case["seed"],
    )
    assert select_all(list(range(len(cands))), rows, campaigns, prm) == expected
