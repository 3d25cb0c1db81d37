from __future__ import annotations

from pathlib import Path

import pytest
from crawlerdetect import CrawlerDetect

from fraud.givt import (
    DATA_CENTER_IP,
    DENIED_USER_AGENT,
    EMPTY_USER_AGENT,
    GIVT_REASONS,
    KNOWN_CRAWLER,
    NON_BROWSER_USER_AGENT,
    PREFETCH,
    GivtFilter,
    is_prefetch,
)
from fraud.iprange import IpRanges

CONFIG = Path(__file__).resolve().parents[2] / "config" / "givt.toml"

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
INSTAGRAM = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/22D82 Instagram 375.2.0.33.77 (iPhone16,1; iOS 18_3_2; en_US)"
)
# Browser-shaped and free of the non-browser tokens: only crawlerdetect knows it.
FAVICON = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/49.0.2623.75 Safari/537.36 Google Favicon"
)
HOME_IP = "81.2.69.160"
CLOUD_IP = "198.51.100.20"


class CountingCrawlerDetect(CrawlerDetect):
    """crawlerdetect itself, recording what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def is_crawler(self, user_agent: str | None = None) -> bool:
        self.seen.append(user_agent or "")
        return super().is_crawler(user_agent)


@pytest.fixture
def crawler() -> CountingCrawlerDetect:
    return CountingCrawlerDetect()


@pytest.fixture
def givt(crawler: CountingCrawlerDetect) -> GivtFilter:
    return GivtFilter(
        deny_ua=["EvilShopper/"],
        allow_ua=["AcmeUptime/"],
        datacenter=IpRanges(["198.51.100.0/24", "2001:db8::/32"]),
        crawler=crawler,
    )


def test_reason_codes_are_stable_snake_case_and_unique() -> None:
    assert GIVT_REASONS == (
        "prefetch",
        "empty_user_agent",
        "denied_user_agent",
        "non_browser_user_agent",
        "known_crawler",
        "data_center_ip",
    )


@pytest.mark.parametrize(
    ("ua", "ip", "purpose", "reason"),
    [
        (CHROME, HOME_IP, None, ""),
        (IPHONE, "2a02:c7f:1234::1", None, ""),
        (INSTAGRAM, HOME_IP, None, ""),
        (CHROME, HOME_IP, "prefetch", PREFETCH),
        (CHROME, HOME_IP, "prefetch;prerender", PREFETCH),
        (CHROME, HOME_IP, "Preview", PREFETCH),
        (CHROME, HOME_IP, "prerender", PREFETCH),
        (CHROME, HOME_IP, "", ""),
        (CHROME, HOME_IP, "navigate", ""),
        (None, HOME_IP, None, EMPTY_USER_AGENT),
        ("", HOME_IP, None, EMPTY_USER_AGENT),
        ("   ", HOME_IP, None, EMPTY_USER_AGENT),
        ("EvilShopper/2.0 " + CHROME, HOME_IP, None, DENIED_USER_AGENT),
        ("evilshopper/2.0", HOME_IP, None, DENIED_USER_AGENT),
        ("curl/8.5.0", HOME_IP, None, NON_BROWSER_USER_AGENT),
        ("python-requests/2.32.3", HOME_IP, None, NON_BROWSER_USER_AGENT),
        ("Go-http-client/2.0", HOME_IP, None, NON_BROWSER_USER_AGENT),
        ("Java/17.0.2", HOME_IP, None, NON_BROWSER_USER_AGENT),
        ("okhttp/4.12.0", HOME_IP, None, NON_BROWSER_USER_AGENT),
        ("Wget/1.21.4", HOME_IP, None, NON_BROWSER_USER_AGENT),
        ("libwww-perl/6.72", HOME_IP, None, NON_BROWSER_USER_AGENT),
        (CHROME.replace("Chrome/", "HeadlessChrome/"), HOME_IP, None, NON_BROWSER_USER_AGENT),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) PhantomJS/2.1.1",
            HOME_IP,
            None,
            NON_BROWSER_USER_AGENT,
        ),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            HOME_IP,
            None,
            NON_BROWSER_USER_AGENT,
        ),
        ("SomeTool/1.0", HOME_IP, None, NON_BROWSER_USER_AGENT),
        (FAVICON, HOME_IP, None, KNOWN_CRAWLER),
        (CHROME, CLOUD_IP, None, DATA_CENTER_IP),
        (CHROME, "2001:db8::7", None, DATA_CENTER_IP),
        (CHROME, "::ffff:198.51.100.20", None, DATA_CENTER_IP),
        (CHROME, None, None, ""),
        (CHROME, "", None, ""),
        (CHROME, "not-an-ip", None, ""),
        # The first rule that applies wins.
        (None, CLOUD_IP, "prefetch", PREFETCH),
        ("curl/8.5.0", CLOUD_IP, None, NON_BROWSER_USER_AGENT),
    ],
)
def test_check(
    givt: GivtFilter, ua: str | None, ip: str | None, purpose: str | None, reason: str
) -> None:
    assert givt.check(ua, ip, purpose) == reason
    assert reason == "" or reason in GIVT_REASONS


def test_prefetch_values() -> None:
    assert is_prefetch("prefetch")
    assert is_prefetch("prefetch; anonymous-client-ip")
    assert is_prefetch("PREFETCH,prerender")
    assert not is_prefetch("navigate")
    assert not is_prefetch("prefetched")


def test_allow_list_skips_user_agent_rules_but_not_the_ip_check(givt: GivtFilter) -> None:
    monitor = "AcmeUptime/3.1 (synthetic check; +https://status.acme.example) curl/8.5"
    assert GivtFilter().check(monitor, HOME_IP) == NON_BROWSER_USER_AGENT
    assert givt.check(monitor, HOME_IP) == ""
    assert givt.check(monitor.lower(), HOME_IP) == ""  # case-insensitive
    assert givt.check(monitor, CLOUD_IP) == DATA_CENTER_IP
    # Allow beats deny: the allow list is consulted first.
    both = GivtFilter(deny_ua=["acmeuptime"], allow_ua=["AcmeUptime/"])
    assert both.check(monitor, HOME_IP) == ""


def test_empty_list_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="deny_ua"):
        GivtFilter(deny_ua=["ok", ""])
    with pytest.raises(ValueError, match="allow_ua"):
        GivtFilter(allow_ua=["  "])


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        GivtFilter(cache_size=0)
    with pytest.raises(ValueError, match="max_ua_len"):
        GivtFilter(max_ua_len=0)


def test_crawlerdetect_runs_once_per_distinct_user_agent(
    givt: GivtFilter, crawler: CountingCrawlerDetect
) -> None:
    for _ in range(5):
        assert givt.check(CHROME, HOME_IP) == ""
        assert givt.check(FAVICON, HOME_IP) == KNOWN_CRAWLER
        assert givt.check(IPHONE, CLOUD_IP) == DATA_CENTER_IP  # the IP is checked every time
        assert givt.check(IPHONE, HOME_IP) == ""
    assert sorted(crawler.seen) == sorted([CHROME, FAVICON, IPHONE])
    assert givt.cached_user_agents == 3


def test_rules_that_decide_first_spare_crawlerdetect(
    givt: GivtFilter, crawler: CountingCrawlerDetect
) -> None:
    givt.check("curl/8.5.0", HOME_IP)
    givt.check("EvilShopper/2.0", HOME_IP)
    givt.check("AcmeUptime/3.1", HOME_IP)
    givt.check(None, HOME_IP)
    givt.check(CHROME, HOME_IP, "prefetch")
    assert crawler.seen == []


def test_cache_is_bounded_lru(crawler: CountingCrawlerDetect) -> None:
    givt = GivtFilter(cache_size=2, crawler=crawler)
    a, b, c = (CHROME.replace("126", v) for v in ("124", "125", "127"))
    givt.check(a, None)
    givt.check(b, None)
    givt.check(a, None)  # a is now the most recently used
    givt.check(c, None)  # evicts b
    assert givt.cached_user_agents == 2
    givt.check(a, None)
    assert crawler.seen == [a, b, c]
    givt.check(b, None)
    assert crawler.seen == [a, b, c, b]


def test_long_user_agent_is_truncated_before_any_rule(crawler: CountingCrawlerDetect) -> None:
    givt = GivtFilter(max_ua_len=512, crawler=crawler)
    huge = CHROME + " " + "x" * 10_240
    assert givt.check(huge, HOME_IP) == ""
    assert crawler.seen == [huge[:512]]
    # Different tails past the limit share one verdict.
    assert givt.check(CHROME + " " + "y" * 10_240, HOME_IP) == ""
    assert len(crawler.seen) == 2
    assert givt.check(huge, HOME_IP) == ""
    assert len(crawler.seen) == 2
    assert givt.cached_user_agents == 2
    # A token past the limit is not seen by any rule: that is the price of the bound.
    assert givt.check(CHROME + " " * 600 + "curl/8.0", HOME_IP) == ""


def test_from_config_reads_lists_relative_to_the_toml(tmp_path: Path) -> None:
    (tmp_path / "dc").mkdir()
    (tmp_path / "dc" / "cloud.txt").write_text("# test\n198.51.100.0/24\n")
    toml = tmp_path / "givt.toml"
    toml.write_text(
        'deny_user_agents = ["EvilShopper/"]\n'
        'allow_user_agents = ["AcmeUptime/"]\n'
        'datacenter_files = ["dc/cloud.txt"]\n'
        "cache_size = 10\n"
        "max_user_agent_length = 300\n"
    )
    givt = GivtFilter.from_config(toml)
    assert givt.check("EvilShopper/1", HOME_IP) == DENIED_USER_AGENT
    assert givt.check("AcmeUptime/1", HOME_IP) == ""
    assert givt.check(CHROME, CLOUD_IP) == DATA_CENTER_IP
    assert givt.check(CHROME, HOME_IP) == ""


def test_from_config_refuses_unknown_keys(tmp_path: Path) -> None:
    toml = tmp_path / "givt.toml"
    toml.write_text("deny_user_agent = []\n")
    with pytest.raises(ValueError, match="deny_user_agent"):
        GivtFilter.from_config(toml)


def test_shipped_config(tmp_path: Path) -> None:
    givt = GivtFilter.from_config(CONFIG)
    givt.warm_up()
    assert givt.check(CHROME, HOME_IP) == ""
    assert givt.check(CHROME, "3.80.10.20") == DATA_CENTER_IP  # AWS us-east-1
    assert givt.check(CHROME, "35.184.0.1") == DATA_CENTER_IP  # GCP
    assert givt.check(CHROME, "40.64.0.1") == DATA_CENTER_IP  # Azure
    assert givt.check(CHROME, "2a01:4f8::1") == DATA_CENTER_IP  # Hetzner
    assert givt.check("curl/8.5.0", HOME_IP) == NON_BROWSER_USER_AGENT
