"""User-Agent rules that catch what crawlerdetect does not: HTTP libraries, automation
frameworks, self-declared agents, and strings no browser sends.

``is_non_browser`` is the ``non_browser_user_agent`` rule of ``fraud.givt``. It is a small
regex plus a shape test, measured against the public crawler-user-agents list and
fake-useragent's real browser strings (``tests/fraud/test_givt_quality.py``). It stays
conservative: every token below is something a browser or an in-app webview (Facebook,
Instagram, Line, the Google app, Twitter, DuckDuckGo, Ecosia...) never sends, and in-app
browsers that append their own product name are left alone on purpose, even where the
crawler list includes them, because people use them.
"""

from __future__ import annotations

import re

__all__ = ["is_non_browser"]

# Tokens that mark automated clients. Case-insensitive search anywhere in the string.
_NON_BROWSER = re.compile(
    r"""
    # HTTP client libraries and command-line tools
      curl/ | wget | python | aiohttp | httpx | go-http-client | \bjava/ | okhttp
    | libwww | lwp-trivial | httpclient | node-fetch | undici | axios/ | \bruby\b | \bphp/
    | guzzlehttp | \bscrapy | \bcolly
    # headless and automated browsers
    | headlesschrome | phantomjs | playwright | puppeteer | selenium | webdriver
    | lighthouse | electron/ | \bsplash\b
    # words agents use to describe themselves
    | bot\b | bot[/_-] | robot | crawl | spider | scrap | scan | monitor | uptime
    | synthetic | checker | \bcheck\b | verif | validator | preview | prefetch | proxy
    | fetch | parser | archiv | harvest | webhook | \bfeed | \brss | agent\b | sitemap
    | screenshot | research | \baudit
    # a contact address: URL, www., e-mail or a bare domain name ("example.com/bot")
    | https?:// | \+https? | \bwww\. | [\w.+-]+@[\w-]+\.[a-z]{2,}
    | [a-z0-9]\.(?:com|net|org|io|ai)\b
    # "compatible;" is how crawlers dress up; only old Internet Explorer uses it for real
    | \bcompatible;(?!\s*(?:msie|konqueror))
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Every browser and in-app webview starts "Mozilla/5.0 (platform...)"; Presto-era Opera
# Mini starts "Opera/9.80 (...)". Native app HTTP stacks (a retailer's own app) carry
# Dalvik/ (Android) or CFNetwork/ (iOS) and are not refused for their shape.
_BROWSER_SHAPE = re.compile(r"(?:Mozilla|Opera)/\d+\.\d+ \(")
_NATIVE_APP = re.compile(r"Dalvik/|CFNetwork/")
_QUOTES = "\"' \t"


def is_non_browser(ua: str) -> bool:
    """True if ``ua`` names an automated client or is not shaped like a browser's.

    The caller bounds the length (``GivtFilter`` truncates to ``max_ua_len``), so the
    regex work is bounded too. Surrounding quotes are ignored: some proxies and log
    pipelines add them, browsers never do.
    """
    ua = ua.strip(_QUOTES)
    if _NON_BROWSER.search(ua):
        return True
    return _BROWSER_SHAPE.match(ua) is None and _NATIVE_APP.search(ua) is None
