"""The complementary-categories table: loading, normalising, most specific level wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.complements import complements_of, load_complements
from exchange.settings import ROOT, SettingsError
from exchange.tokenizer import category_path


def test_the_shipped_table_loads_and_is_normalised() -> None:
    table = load_complements(ROOT / "config" / "complements.toml")
    assert table["pantry > pasta & rice"] == ("pantry > sauces & condiments",
                                              "dairy & eggs > cheese")
    assert all(k == k.lower() for k in table)


def test_most_specific_listed_level_wins(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[complements]\n"Pantry" = ["Snacks"]\n'
                 '"Pantry > Pasta & Rice" = ["Pantry > Sauces", "PANTRY > pasta & rice"]\n')
    table = load_complements(f)
    assert complements_of(category_path("Pantry > Pasta & Rice > Spaghetti"), table) == (
        "pantry > sauces",)  # a category is never its own complement
    assert complements_of(category_path("Pantry > Canned Goods > Beans"), table) == ("snacks",)
    assert complements_of(category_path("Toys > Games"), table) == ()


@pytest.mark.parametrize("text", ['[complements]\n"A" = "B"\n', "[complements\n",
                                  '[other]\n"A" = ["B"]\n', '[complements]\n" > " = ["B"]\n'])
def test_bad_files_stop_start_up_naming_the_file(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(SettingsError, match="complements file"):
        load_complements(f)
