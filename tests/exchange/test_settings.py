"""Settings and placements: TOML defaults, environment overrides, and errors that name the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exchange.settings import DEFAULT_CONFIG, ROOT, SettingsError, load_placements, load_settings

SECRET = "a-signing-secret-of-enough-length"


def test_defaults_come_from_the_config_file() -> None:
    s = load_settings(environ={})
    assert DEFAULT_CONFIG == ROOT / "config" / "endcap.toml" and DEFAULT_CONFIG.is_file()
    assert (s.host, s.port, s.workers, s.log_level) == ("0.0.0.0", 8080, 1, "info")
    assert (s.data_dir, s.redis_url) == (".data", "")
    assert s.operator_key == "dev-operator-key-change-me"
    assert s.signing_keys == {"k1": "dev-signing-secret-change-me-0123456789"}
    assert (s.signing_key_id, s.token_ttl_s) == ("k1", 3600)
    assert (s.timezone, s.currency, s.min_increment_micros) == ("UTC", "USD", 10_000)
    assert s.placements_file == "config/placements.toml"
    assert s.fallback_landing_url == "/"
    assert s.resolve(s.placements_file) == ROOT / "config" / "placements.toml"
    assert s.resolve("/abs/path") == Path("/abs/path")


def test_environment_overrides() -> None:
    keys = '{"k1": "' + SECRET + '", "k2": "' + SECRET[::-1] + '"}'
    s = load_settings(environ={
        "ENDCAP_PORT": "9000",
        "ENDCAP_WORKERS": "4",
        "ENDCAP_DATA_DIR": "/var/lib/endcap",
        "ENDCAP_OPERATOR_KEY": "operator-secret-key",
        "REDIS_URL": "redis://cache.internal:6380/2",
        "ENDCAP_SIGNING_KEYS": keys,
        "ENDCAP_SIGNING_KEY_ID": "k2",
        "ENDCAP_TIMEZONE": "Europe/Paris",
        "ENDCAP_MIN_INCREMENT": "0.005",
    })
    assert s.port == 9000 and isinstance(s.port, int)
    assert s.workers == 4
    assert s.data_dir == "/var/lib/endcap"
    assert s.operator_key == "operator-secret-key"
    assert s.redis_url == "redis://cache.internal:6380/2"
    assert s.signing_keys == {"k1": SECRET, "k2": SECRET[::-1]}
    assert s.signing_key_id == "k2"
    assert s.zone.key == "Europe/Paris"
    assert s.min_increment_micros == 5_000


def test_redis_url_precedence() -> None:
    both = {"ENDCAP_REDIS_URL": "redis://a:1/0", "REDIS_URL": "redis://b:2/0"}
    assert load_settings(environ=both).redis_url == "redis://a:1/0"
    # An empty REDIS_URL means "unset": the embedded Redis.
    assert load_settings(environ={"REDIS_URL": ""}).redis_url == ""


def test_config_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "endcap.toml"
    config.write_text('port = 1234\ntimezone = "America/New_York"\n')
    s = load_settings(config, environ={})
    assert (s.port, s.timezone) == (1234, "America/New_York")
    assert s.workers == 1  # a field the file leaves out keeps its default
    assert load_settings(config, environ={"ENDCAP_PORT": "4321"}).port == 4321
    assert load_settings(environ={"ENDCAP_CONFIG": str(config)}).port == 1234


@pytest.mark.parametrize(("env", "names"), [
    ({"ENDCAP_PORT": "abc"}, ["port", "ENDCAP_PORT"]),
    ({"ENDCAP_PORT": "70000"}, ["port", "ENDCAP_PORT"]),
    ({"ENDCAP_PORT": "-1"}, ["port", "ENDCAP_PORT"]),
    ({"ENDCAP_WORKERS": "0"}, ["workers", "ENDCAP_WORKERS"]),
    ({"ENDCAP_TIMEZONE": "Mars/Base"}, ["timezone", "Mars/Base"]),
    ({"ENDCAP_SIGNING_KEY_ID": "nope"}, ["signing_key_id", "nope"]),
    ({"ENDCAP_MIN_INCREMENT": "0.0000001"}, ["min_increment"]),
    ({"ENDCAP_MIN_INCREMENT": "cheap"}, ["min_increment"]),
    ({"ENDCAP_OPERATOR_KEY": "short"}, ["operator_key", "ENDCAP_OPERATOR_KEY"]),
    ({"ENDCAP_SIGNING_KEYS": "{not json"}, ["ENDCAP_SIGNING_KEYS"]),
    ({"ENDCAP_SIGNING_KEYS": '{"k1": "too-short"}'}, ["signing_keys", "ENDCAP_SIGNING_KEYS"]),
    ({"ENDCAP_SIGNING_KEYS": '{"k2": "' + SECRET + '"}'}, ["signing_key_id", "k1"]),
    ({"ENDCAP_LOG_LEVEL": "loud"}, ["log_level", "ENDCAP_LOG_LEVEL"]),
    ({"ENDCAP_CURRENCY": "usd"}, ["currency", "ENDCAP_CURRENCY"]),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None)
def test_invalid_environment_values_name_the_key(env: dict[str, str], names: list[str]) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=env)
    for name in names:
        assert name in str(info.value), (name, str(info.value))


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    config = tmp_path / "endcap.toml"
    config.write_text('port = 8080\nbogus_setting = 1\n')
    with pytest.raises(SettingsError, match="bogus_setting") as info:
        load_settings(config, environ={})
    assert str(config) in str(info.value)


def test_bad_value_in_config_file_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "endcap.toml"
    config.write_text('port = "eighty"\n')
    with pytest.raises(SettingsError, match="port") as info:
        load_settings(config, environ={})
    assert str(config) in str(info.value) and "ENDCAP_PORT" not in str(info.value)


def test_malformed_and_missing_config_file(tmp_path: Path) -> None:
    config = tmp_path / "endcap.toml"
    config.write_text('port = = 8080\n[unclosed\n')
    with pytest.raises(SettingsError, match=r"endcap\.toml"):
        load_settings(config, environ={})
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(SettingsError, match="not found") as info:
        load_settings(missing, environ={})
    assert str(missing) in str(info.value)
    with pytest.raises(SettingsError, match=r"nowhere\.toml"):
        load_settings(environ={"ENDCAP_CONFIG": str(missing)})


def test_default_placements() -> None:
    placements = load_placements(ROOT / "config" / "placements.toml")
    page_types = {p.page_type for p in placements.values()}
    assert {"search", "product", "home", "in_store"} <= page_types
    assert page_types <= {"search", "product", "category", "home", "in_store"}
    assert all(p.id == key for key, p in placements.items())
    top = placements["search_top"]
    assert (top.kind, top.page_type, top.slots, top.floor_micros) == (
        "sponsored_product", "search", 4, 100_000)
    assert placements["home_banner"].open_to_dsps is True
    assert placements["in_store_screen"].floor_micros == 4_000_000


PLACEMENT = """
[[placement]]
id = "{id}"
kind = "sponsored_product"
page_type = "{page_type}"
slots = 4
formats = ["product_tile"]
floor = "{floor}"
"""


def _placements(tmp_path: Path, *entries: dict[str, str]) -> Path:
    path = tmp_path / "placements.toml"
    defaults = {"id": "search_top", "page_type": "search", "floor": "0.10"}
    path.write_text("".join(PLACEMENT.format(**{**defaults, **e}) for e in entries))
    return path


def test_custom_placements_file(tmp_path: Path) -> None:
    path = _placements(tmp_path, {}, {"id": "pdp", "page_type": "product", "floor": "0.25"})
    placements = load_placements(path)
    assert list(placements) == ["search_top", "pdp"]
    assert placements["pdp"].floor_micros == 250_000


@pytest.mark.parametrize(("entries", "names"), [
    ([{"floor": "ten cents"}], ["search_top", "floor"]),
    ([{"floor": "-0.10"}], ["search_top", "floor"]),
    ([{}, {"floor": "0.20"}], ["duplicate", "search_top"]),
    ([{"page_type": "checkout"}], ["page_type"]),
    ([{"id": "Bad Id!"}], ["id"]),
], ids=["floor-text", "floor-negative", "duplicate-id", "page-type", "bad-id"])
def test_bad_placements_name_the_problem(tmp_path: Path, entries: list[dict[str, str]],
                                         names: list[str]) -> None:
    path = _placements(tmp_path, *entries)
    with pytest.raises(SettingsError) as info:
        load_placements(path)
    message = str(info.value)
    assert str(path) in message
    for name in names:
        assert name in message, (name, message)


def test_placements_file_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"absent\.toml"):
        load_placements(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[placement]\n")
    with pytest.raises(SettingsError, match=r"bad\.toml"):
        load_placements(bad)
    extra = _placements(tmp_path, {})
    extra.write_text(extra.read_text() + 'colour = "red"\n')
    with pytest.raises(SettingsError, match="colour"):
        load_placements(extra)


def test_serve_refuses_bad_settings_with_status_2() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ENDCAP_") and k != "REDIS_URL"}
    env["ENDCAP_PORT"] = "abc"
    proc = subprocess.run(
        [sys.executable, "-m", "exchange", "serve"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "ENDCAP_PORT" in proc.stderr and "port" in proc.stderr
    assert "serving" not in proc.stderr
