"""Per-shopper state: what the auction reads in ONE round trip, and how it is written.

Everything the hot path needs about a shopper lives in one Redis hash,
``ex:shp:{<shopper>}`` (``keys.shopper``), so the request reads it with a single
``HGETALL``. Fields, by first letter:

- ``s:<segment>`` -> ``1``: loyalty segments (``POST /v1/signals/segments``, the intake stream);
- ``b:<pid>`` -> unix seconds of the latest purchase of the product (purchase suppression,
  replenishment windows, "purchased since" for exposure memory);
- ``f:<campaign>`` -> ``"<bucket> <count>"``: billed impressions of a frequency-capped
  campaign in the current hour/day/week bucket (retailer's time zone);
- ``x:<pid>`` -> ``"<imps> <clicks> <last_ms> <first_ms>"``: exposure to the product's ads
  since the shopper last bought it (a purchase starts a new cycle), for fatigue and the
  "seen N times, did not buy" signal.

Per-campaign exposure detail, read only by ``GET /v1/shoppers/{id}/exposures``, is kept
beside it in ``ex:shp:{<shopper>}:x`` (same hash tag: one cluster slot), field
``<pid>:<campaign>`` -> ``"<imps> <clicks> <last_ms> <first_ms>"``.

Writes go through ``exposure.lua`` (beacons) and ``purchase.lua`` (purchases), which also
prune stale fields, so a hash stays small however long the shopper is around.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from exchange import keys

STATE_TTL_S = 400 * 86_400  # a shopper silent for 400 days is forgotten
CAP_UNITS = {"hour": 3_600, "day": 86_400, "week": 7 * 86_400}
PRUNE_ABOVE = 256  # fields; the scripts drop stale ones beyond this
PURCHASE_KEEP_S = 366 * 86_400  # longest window a purchase can matter for
EXPOSURE_KEEP_MS = 30 * 86_400_000
_EXPOSURE_LUA = resources.files("exchange").joinpath("exposure.lua").read_text()
_PURCHASE_LUA = resources.files("exchange").joinpath("purchase.lua").read_text()


@dataclass(slots=True)
class ShopperState:
    """One shopper as the auction sees them (all empty for an unknown shopper)."""

    segments: list[str] = field(default_factory=list)
    purchases: dict[int, int] = field(default_factory=dict)     # pid -> unix s
    caps: dict[int, tuple[int, int]] = field(default_factory=dict)  # campaign -> (bucket, n)
    exposures: dict[int, int] = field(default_factory=dict)     # pid -> impressions


EMPTY = ShopperState()


def parse_state(flat: list[bytes] | dict[bytes, bytes] | None) -> ShopperState:
    """The state from an ``HGETALL`` reply (RESP2 flat list, or redis-py's dict).
    Malformed fields are skipped: a bad field must never fail an ad request."""
    if not flat:
        return ShopperState()
    items = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=False)
    st = ShopperState()
    for name, value in items:
        kind = name[:2]
        try:
            if kind == b"s:":
                st.segments.append(name[2:].decode())
            elif kind == b"b:":
                st.purchases[int(name[2:])] = int(value)
            elif kind == b"x:":
                st.exposures[int(name[2:])] = int(value.split(b" ", 1)[0])
            elif kind == b"f:":
                bucket, count = value.split(b" ")
                st.caps[int(name[2:])] = (int(bucket), int(count))
        except (ValueError, UnicodeDecodeError):
            continue
    return st


class ZoneClock:
    """The retailer zone's UTC offset, looked up at most once a minute (cap buckets)."""

    __slots__ = ("_offset", "_until", "_zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._until = 0
        self._offset = 0

    def offset_s(self, now_s: int) -> int:
        if now_s >= self._until:
            off = datetime.fromtimestamp(now_s, tz=self._zone).utcoffset()
            self._offset = int(off.total_seconds()) if off is not None else 0
            self._until = now_s + 60 - now_s % 60
        return self._offset

    def bucket(self, now_s: int, unit_s: int) -> int:
        """Calendar hour/day/week number in the retailer's zone (weeks start on Monday)."""
        local = now_s + self.offset_s(now_s)
        if unit_s == CAP_UNITS["week"]:
            local += 3 * 86_400  # the epoch was a Thursday
        return local // unit_s


class ShopperStore:
    """Writes shopper state (segments, purchases, exposures) through atomic scripts."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._exposure = client.register_script(_EXPOSURE_LUA)
        self._purchase = client.register_script(_PURCHASE_LUA)

    async def record_exposure(self, shopper: str, pid: int, campaign_id: int, kind: str,
                              now_ms: int, cap_unit_s: int = 0, cap_bucket: int = 0,
                              notify_at: int = 0) -> int:
        """Count an impression (``kind`` "i") or click ("c") of ``pid`` by ``campaign_id``.
        Returns the product's impressions in the current cycle when this impression made
        it exactly ``notify_at`` without a purchase since the cycle began, else 0."""
        reply = await self._exposure(
            keys=[keys.shopper(shopper), keys.shopper_exposures(shopper)],
            args=[pid, campaign_id, kind, now_ms, cap_unit_s, cap_bucket, notify_at,
                  STATE_TTL_S, PRUNE_ABOVE, now_ms - EXPOSURE_KEEP_MS,
                  now_ms // 1000 - PURCHASE_KEEP_S])
        return int(reply)

    async def record_purchases(self, lines: dict[str, list[tuple[int, int]]]) -> None:
        """Shopper -> (pid, unix s) lines, one script call per shopper, all in one
        pipelined round trip. Keeps the latest purchase time of each product."""
        now_ms = time.time_ns() // 1_000_000
        head: list[int] = [STATE_TTL_S, PRUNE_ABOVE, now_ms - EXPOSURE_KEEP_MS,
                           now_ms // 1000 - PURCHASE_KEEP_S]
        async with self._client.pipeline(transaction=False) as pipe:
            for shopper, bought in lines.items():
                await self._purchase(keys=[keys.shopper(shopper)],
                                     args=head + [v for line in bought for v in line],
                                     client=pipe)
            await pipe.execute()
