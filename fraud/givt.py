"""General invalid traffic (GIVT, MRC IVT guidelines): requests refused before the auction.

``GivtFilter.check(ua, ip, purpose)`` answers ``""`` for valid traffic or one reason code
from ``GIVT_REASONS``. Checks run in this order and the first hit wins:

1. ``prefetch`` -- the purpose header (``Purpose``, ``Sec-Purpose``, ``X-Purpose``,
   ``X-Moz``; the caller passes its value) says prefetch, preview or prerender: nobody
   is looking at the page yet.
2. ``empty_user_agent`` -- no User-Agent, or only whitespace.
3. allow list -- a UA containing an allow-list entry skips the UA rules (4-6) but still
   goes through the data-centre IP check (7).
4. ``denied_user_agent`` -- the UA contains a retailer deny-list entry.
5. ``non_browser_user_agent`` -- HTTP libraries, headless browsers, self-declared agents,
   strings no browser sends (``fraud.useragent``).
6. ``known_crawler`` -- crawlerdetect's crawler list.
7. ``data_center_ip`` -- the client address is in a cloud / hosting provider's range.

Allow and deny entries are case-insensitive substrings. Everything in 3-6 depends on the
UA alone, so its verdict is computed once per distinct UA (truncated to ``max_ua_len``)
and kept in a bounded LRU: crawlerdetect costs ~250 µs a call, a cached verdict plus the
IP lookup ~1 µs. The verdict cached for an allow-listed UA is "valid", so the order above
is exactly what callers observe.

One filter per process; it is not thread-safe (the exchange calls it from its event loop).
"""

from __future__ import annotations

import re
import tomllib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from crawlerdetect import CrawlerDetect

from fraud.iprange import IpRanges
from fraud.useragent import is_non_browser

__all__ = [
    "DATA_CENTER_IP",
    "DENIED_USER_AGENT",
    "EMPTY_USER_AGENT",
    "GIVT_REASONS",
    "KNOWN_CRAWLER",
    "NON_BROWSER_USER_AGENT",
    "PREFETCH",
    "CrawlerDetector",
    "GivtFilter",
    "is_prefetch",
]

PREFETCH = "prefetch"  # purpose header: prefetch / preview / prerender
EMPTY_USER_AGENT = "empty_user_agent"  # no User-Agent at all, or only whitespace
DENIED_USER_AGENT = "denied_user_agent"  # matches the retailer's deny list
NON_BROWSER_USER_AGENT = "non_browser_user_agent"  # library, headless, self-declared agent
KNOWN_CRAWLER = "known_crawler"  # on crawlerdetect's list of crawlers
DATA_CENTER_IP = "data_center_ip"  # client address in a cloud / hosting provider range

# Stable snake_case codes, in the order the checks run; logged and counted by the edge.
GIVT_REASONS = (
    PREFETCH,
    EMPTY_USER_AGENT,
    DENIED_USER_AGENT,
    NON_BROWSER_USER_AGENT,
    KNOWN_CRAWLER,
    DATA_CENTER_IP,
)

_PREFETCH_VALUES = frozenset(("prefetch", "preview", "prerender"))
_PURPOSE_SEPARATORS = re.compile(r"[;,\s]+")
_CONFIG_KEYS = frozenset(
    (
        "deny_user_agents",
        "allow_user_agents",
        "datacenter_files",
        "cache_size",
        "max_user_agent_length",
    )
)
_WARM_UP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0"


class CrawlerDetector(Protocol):
    """The seam to crawlerdetect (``crawlerdetect.CrawlerDetect`` satisfies it)."""

    def is_crawler(self, user_agent: str | None = None) -> bool: ...


def is_prefetch(purpose: str) -> bool:
    """True if a purpose header value (``prefetch;prerender``, ``preview``...) names one."""
    return any(t in _PREFETCH_VALUES for t in _PURPOSE_SEPARATORS.split(purpose.lower()))


def _substring_regex(entries: Sequence[str], name: str) -> re.Pattern[str] | None:
    for entry in entries:
        if not entry or entry.isspace():
            raise ValueError(f"{name} has an empty entry, which would match every user agent")
    if not entries:
        return None
    return re.compile("|".join(re.escape(e) for e in entries), re.IGNORECASE)


class GivtFilter:
    """Decides whether a request is general invalid traffic. See the module docstring."""

    __slots__ = ("_allow", "_cache", "_cache_size", "_crawler", "_datacenter", "_deny", "_max")

    def __init__(
        self,
        *,
        deny_ua: Sequence[str] = (),
        allow_ua: Sequence[str] = (),
        datacenter: IpRanges | None = None,
        cache_size: int = 65_536,
        max_ua_len: int = 512,
        crawler: CrawlerDetector | None = None,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        if max_ua_len < 1:
            raise ValueError(f"max_ua_len must be at least 1, got {max_ua_len}")
        self._deny = _substring_regex(deny_ua, "deny_ua")
        self._allow = _substring_regex(allow_ua, "allow_ua")
        self._datacenter = datacenter
        self._cache_size = cache_size
        self._max = max_ua_len
        self._crawler: CrawlerDetector = CrawlerDetect() if crawler is None else crawler
        self._cache: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def from_config(cls, path: str | Path) -> GivtFilter:
        """A filter from ``config/givt.toml``; ``datacenter_files`` are relative to its folder.

        Unknown keys raise ``ValueError`` so that a typo does not silently disable a rule.
        """
        path = Path(path)
        with path.open("rb") as f:
            conf = tomllib.load(f)
        unknown = set(conf) - _CONFIG_KEYS
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        files = [path.parent / name for name in conf.get("datacenter_files", ())]
        return cls(
            deny_ua=conf.get("deny_user_agents", ()),
            allow_ua=conf.get("allow_user_agents", ()),
            datacenter=IpRanges.from_files(files) if files else None,
            cache_size=conf.get("cache_size", 65_536),
            max_ua_len=conf.get("max_user_agent_length", 512),
        )

    def warm_up(self) -> None:
        """Compile crawlerdetect's patterns now (~0.1 s) rather than on the first request."""
        self._crawler.is_crawler(_WARM_UP_UA)

    def check(self, ua: str | None, ip: str | None, purpose: str | None = None) -> str:
        """``""`` if the request is valid, else the first reason code that applies."""
        if purpose and is_prefetch(purpose):
            return PREFETCH
        if not ua or ua.isspace():
            return EMPTY_USER_AGENT
        if len(ua) > self._max:
            ua = ua[: self._max]
        cache = self._cache
        verdict = cache.get(ua)
        if verdict is None:
            verdict = self._classify(ua)
            cache[ua] = verdict
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(ua)
        if verdict:
            return verdict
        if ip and self._datacenter is not None and self._datacenter.contains(ip):
            return DATA_CENTER_IP
        return ""

    def _classify(self, ua: str) -> str:
        """The verdict of checks 3-6 for a (truncated) UA; the expensive, cached part."""
        if self._allow is not None and self._allow.search(ua):
            return ""
        if self._deny is not None and self._deny.search(ua):
            return DENIED_USER_AGENT
        if is_non_browser(ua):
            return NON_BROWSER_USER_AGENT
        if self._crawler.is_crawler(ua):
            return KNOWN_CRAWLER
        return ""

    @property
    def datacenter(self) -> IpRanges | None:
        """The data-centre ranges the IP check uses (None: no IP check)."""
        return self._datacenter

    @property
    def cached_user_agents(self) -> int:
        """How many UA verdicts the cache holds (for a metrics gauge)."""
        return len(self._cache)
