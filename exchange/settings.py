"""Settings: ``config/endcap.toml`` overridden by ``ENDCAP_*`` environment variables.

Every field of :class:`Settings` can be set by ``ENDCAP_<FIELD>`` (upper case);
``REDIS_URL`` is honoured too. Values are decoded and checked by msgspec; a bad value
stops start-up with :class:`SettingsError` naming the key and where it came from.
Placements live in their own TOML file (``placements_file``).
"""

from __future__ import annotations

import os
import re
import tomllib
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from exchange.decoding import field_of
from exchange.money import MoneyError, parse_micros

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "endcap.toml"

PageType = Literal["search", "product", "category", "home", "in_store"]
PlacementKind = Literal["sponsored_product", "display"]


class SettingsError(ValueError):
    """A setting is missing, malformed or out of range; the message names the key."""


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "0.0.0.0"
    port: Port = 8080
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    data_dir: str = ".data"
    redis_url: str = ""
    operator_key: Annotated[str, msgspec.Meta(min_length=8)] = "dev-operator-key-change-me"
    signing_keys: dict[str, Annotated[str, msgspec.Meta(min_length=16)]] = msgspec.field(
        default_factory=lambda: {"k1": "dev-signing-secret-change-me-0123456789"}
    )
    signing_key_id: str = "k1"
    # Rotation: key id -> when its overlap window ends (its tokens are refused from then).
    retired_signing_keys: dict[str, datetime] = msgspec.field(default_factory=dict)
    token_ttl_s: Annotated[int, msgspec.Meta(ge=10, le=7 * 86400)] = 3600
    timezone: str = "UTC"
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "USD"
    min_increment: str = "0.01"
    event_stream_maxlen: Annotated[int, msgspec.Meta(ge=1000)] = 1_000_000
    event_flush_ms: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 20
    event_queue_max: Positive = 100_000
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 65536
    max_slots: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10
    placements_file: str = "config/placements.toml"
    complements_file: str = "config/complements.toml"
    bid_limits_file: str = "config/bid_limits.toml"
    # Base of tracking URLs (e.g. https://ads.example.com); empty: the request's Host.
    public_url: str = ""
    # Where a click on an unreadable token lands (the storefront's home page).
    fallback_landing_url: str = "/"
    # Invalid traffic (docs/invalid-traffic.md)
    givt_file: str = "config/givt.toml"
    min_click_delay_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 250
    rate_limit_sync_ms: Annotated[int, msgspec.Meta(ge=20, le=5_000)] = 200
    # Peers whose X-Forwarded-For is believed (uvicorn's forwarded_allow_ips).
    trusted_proxies: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Where the report rollup runs: its own process started by `serve` (default: analytics
    # never takes the ad workers' CPU), inside each request worker, or not at all.
    rollup: Literal["process", "worker", "off"] = "process"
    # Pacing (docs/pacing.md)
    pacing_interval_ms: Annotated[int, msgspec.Meta(ge=100, le=60_000)] = 2_000
    pacing_report_ms: Annotated[int, msgspec.Meta(ge=50, le=10_000)] = 1_000
    pacing_lease_ttl_ms: Annotated[int, msgspec.Meta(ge=500, le=600_000)] = 60_000
    pacing_in_flight_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 600
    # Shopper signals (docs/signals.md)
    replenishment_file: str = "config/replenishment.toml"
    # How long an ad request waits for the shopper's state before answering without an ad.
    shopper_state_timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 20
    low_stock_threshold: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 3
    fatigue_k: Annotated[int, msgspec.Meta(ge=0, le=1_000)] = 5
    # "Seen N times, did not buy": the exposed_not_converted event fires at N impressions.
    exposure_notify_at: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 3
    exposed_stream_maxlen: Annotated[int, msgspec.Meta(ge=1_000)] = 1_000_000

    @property
    def min_increment_micros(self) -> int:
        return parse_micros(self.min_increment)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def resolve(self, path: str) -> Path:
        """A path from the settings, relative to the project root unless absolute."""
        p = Path(path)
        return p if p.is_absolute() else ROOT / p


class Placement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,64}$")]
    kind: PlacementKind
    page_type: PageType
    slots: Annotated[int, msgspec.Meta(ge=1, le=50)]
    formats: list[str]
    floor: str
    open_to_dsps: bool = False
    # Silence: an ad must reach this relevance (its quality: predicted CTR x query match,
    # 0..1) and this expected value per impression (bid x quality, currency units), or
    # the slot stays empty. Better no ad than a wrong one.
    min_relevance: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    min_expected_value: str = "0"

    @property
    def floor_micros(self) -> int:
        return parse_micros(self.floor)

    @property
    def min_quality_ppm(self) -> int:
        return round(self.min_relevance * 1_000_000)

    @property
    def min_expected_value_micros(self) -> int:
        return parse_micros(self.min_expected_value)


class _PlacementFile(msgspec.Struct, forbid_unknown_fields=True):
    placement: list[Placement]


def _env_overrides(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        key = f"ENDCAP_{field.name.upper()}"
        if key in environ:
            raw = environ[key]
            if field.name in ("signing_keys", "retired_signing_keys", "trusted_proxies"):
                try:
                    out[field.name] = msgspec.json.decode(raw)
                except msgspec.DecodeError as exc:
                    raise SettingsError(f"{key}: expected JSON") from exc
            else:
                out[field.name] = raw
    if "redis_url" not in out and environ.get("REDIS_URL"):
        out["redis_url"] = environ["REDIS_URL"]
    return out


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | os._Environ[str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    config_path = Path(path or environ.get("ENDCAP_CONFIG") or DEFAULT_CONFIG)
    try:
        raw: dict[str, Any] = tomllib.loads(config_path.read_text())
    except FileNotFoundError as exc:
        raise SettingsError(f"config file not found: {config_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{config_path}: {exc}") from exc
    env = _env_overrides(environ)
    raw.update(env)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        # The setting: the first segment of the failing path ("signing_keys.k1" -> ...).
        name = re.split(r"[.\[]", field_of(exc), maxsplit=1)[0]
        where = f"ENDCAP_{name.upper()}" if name in env else f"{config_path}"
        raise SettingsError(f"setting {name or '?'} ({where}): {exc}") from exc
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    for key_id, at in s.retired_signing_keys.items():
        if key_id not in s.signing_keys:
            raise SettingsError(f"setting retired_signing_keys: {key_id!r} is not a signing key")
        if key_id == s.signing_key_id:
            raise SettingsError("setting retired_signing_keys: the current key cannot retire")
        if at.tzinfo is None:
            raise SettingsError(f"setting retired_signing_keys: {key_id!r} needs a time zone")
    if s.signing_key_id not in s.signing_keys:
        raise SettingsError(
            f"setting signing_key_id: {s.signing_key_id!r} is not a key of signing_keys"
        )
    try:
        zoneinfo.ZoneInfo(s.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"setting timezone: unknown time zone {s.timezone!r}") from exc
    try:
        s.min_increment_micros  # noqa: B018 - validation
    except MoneyError as exc:
        raise SettingsError(f"setting min_increment: {exc}") from exc


def load_placements(path: str | Path) -> dict[str, Placement]:
    try:
        raw = tomllib.loads(Path(path).read_text())
        parsed = msgspec.convert(raw, _PlacementFile)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"placements file {path}: {exc}") from exc
    out: dict[str, Placement] = {}
    for p in parsed.placement:
        if p.id in out:
            raise SettingsError(f"placements file {path}: duplicate placement id {p.id!r}")
        try:
            p.floor_micros  # noqa: B018 - validation
        except MoneyError as exc:
            raise SettingsError(f"placements file {path}: placement {p.id} floor: {exc}") from exc
        out[p.id] = p
    return out
