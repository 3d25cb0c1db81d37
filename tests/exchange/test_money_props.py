"""Money strings: any text parses to micros or fails with MoneyError (a 400), nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.money import MAX_MICROS, MoneyError, format_micros, parse_micros

decimals = st.decimals(allow_nan=True, allow_infinity=True).map(str)
exponents = st.builds(lambda m, e: f"{m}e{e}", st.integers(-10**6, 10**6),
                      st.integers(-10**7, 10**7))


@given(st.text(max_size=40) | decimals | exponents)
def test_any_text_parses_or_is_a_money_error(text: str) -> None:
    try:
        micros = parse_micros(text)
    except MoneyError:
        return
    assert 0 <= micros <= MAX_MICROS


@pytest.mark.parametrize("text", ["1e40", "9" * 30, "1e999999", "1000000000.000001"])
def test_huge_amounts_are_refused_not_crashed(text: str) -> None:
    with pytest.raises(MoneyError, match="too large"):
        parse_micros(text)


@given(st.integers(0, MAX_MICROS))
def test_format_parse_round_trip(micros: int) -> None:
    assert parse_micros(format_micros(micros)) == micros
