"""The invalid-traffic seams the exchange screens requests and beacons through.

``fraud.givt.GivtFilter`` (general invalid traffic: crawlers, data centres, prefetch)
and ``fraud.ratelimit.RateLimiter`` (sophisticated: rates and spikes per source) satisfy
these; both answer ``""`` for valid traffic or a stable reason code. :class:`PassAll`
stands in where no check is configured (unit tests of other parts).
"""

from __future__ import annotations

from typing import Protocol


class TrafficCheck(Protocol):
    """General invalid traffic, decided from the request alone."""

    def check(self, ua: str | None, ip: str | None, purpose: str | None = None) -> str: ...


class RateCheck(Protocol):
    """Sophisticated invalid traffic: counts the event, says if its source is blocked."""

    def hit(self, kind: str, dimension: str, key: str) -> str: ...


class PassAll:
    """No screening: everything is valid."""

    def check(self, ua: str | None, ip: str | None, purpose: str | None = None) -> str:
        return ""

    def hit(self, kind: str, dimension: str, key: str) -> str:
        return ""


def device_key(device_id: str | None, ua: str | None, ip: str | None) -> str:
    """A device for rate limits: its id when the storefront sends one, else UA + address."""
    if device_id:
        return device_id
    return f"{ip or '-'}|{(ua or '')[:128]}"
