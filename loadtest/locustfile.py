"""A storefront traffic mix for Locust: search and product pages asking for ads.

    locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8080

Each simulated shopper lists one page of the catalogue on start (operator key from
``ENDCAP_OPERATOR_KEY``, else the development default) to build search queries and product
pages from real titles, brands, categories and SKUs. Then it browses: search results
(weight 7, placement ``search_top``) and product pages (weight 3, ``product_carousel``).
Like a real page, it sometimes fires the impression beacon of an ad it was shown and,
more rarely, clicks one (``/t/c/...`` must answer 302; the redirect is not followed).

Locust measures throughput from a closed loop of users with think time; the figures
that count against the floor come from ``loadtest/bench.py`` (wrk), not from here.
"""

from __future__ import annotations

import os
import random
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, between, task

OPERATOR_KEY = os.environ.get("ENDCAP_OPERATOR_KEY") or "dev-operator-key-change-me"
IMPRESSION_PROBABILITY = float(os.environ.get("ENDCAP_LOAD_IMPRESSION_P", "0.3"))
CLICK_PROBABILITY = float(os.environ.get("ENDCAP_LOAD_CLICK_P", "0.03"))

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
]

_WORD = re.compile(r"[a-z0-9][a-z0-9'&-]*[a-z0-9]|[a-z]")
_STOP = {"a", "an", "and", "the", "of", "for", "with", "in", "by", "to", "&", "x", "oz", "ct"}
FALLBACK_QUERIES = ["milk", "oat milk", "coffee", "bread", "greek yogurt", "pasta sauce"]


def _words(text: object) -> list[str]:
    return [w for w in _WORD.findall(str(text).lower()) if w not in _STOP and not w.isdigit()]


def _public_ip(rnd: random.Random) -> str:
    # First octets of large, globally routed consumer ISP blocks.
    first = rnd.choice((24, 45, 62, 73, 81, 86, 92, 98, 109, 151, 174, 188, 203))
    return f"{first}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"


class StorefrontUser(FastHttpUser):
    """One shopper on the storefront: a device, an id, sometimes a loyalty card."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.rnd = random.Random()
        self.shopper: dict[str, str] = {"id": f"shp_{self.rnd.getrandbits(48):012x}"}
        if self.rnd.random() < 0.35:
            self.shopper["loyalty_id"] = f"LY{self.rnd.randrange(10**9):09d}"
        self.device = {"ua": self.rnd.choice(USER_AGENTS), "ip": _public_ip(self.rnd)}
        self.store_id = f"S{self.rnd.randrange(1, 41):03d}" if self.rnd.random() < 0.6 else None
        self.products: list[dict[str, Any]] = []
        with self.client.get(
            "/v1/catalog/products?limit=500",
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
            name="/v1/catalog/products",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"catalogue listing: {resp.status_code}")
                return
            try:
                items = resp.json().get("items") or []
            except ValueError:
                resp.failure("catalogue listing: not JSON")
                return
            self.products = [p for p in items if isinstance(p, dict) and p.get("sku")]

    # --- pages --------------------------------------------------------------------------

    def _query(self) -> str:
        if not self.products:
            return self.rnd.choice(FALLBACK_QUERIES)
        product = self.rnd.choice(self.products)
        roll = self.rnd.random()
        if roll < 0.2:
            ws = _words(product.get("brand", ""))[:1] + _words(product.get("title", ""))[:1]
        elif roll < 0.4:
            ws = _words(product.get("category", ""))[:2]
        else:
            title = _words(product.get("title", ""))
            n = min(len(title), self.rnd.choices((1, 2, 3), weights=(35, 45, 20))[0])
            start = self.rnd.randrange(len(title) - n + 1) if title else 0
            ws = title[start : start + n]
        return " ".join(ws) or self.rnd.choice(FALLBACK_QUERIES)

    def _ask(self, placement: str, page: dict[str, str], name: str) -> None:
        body: dict[str, Any] = {
            "request_id": str(uuid.uuid4()),
            "placement": placement,
            "page": page,
            "shopper": self.shopper,
            "device": self.device,
        }
        if self.store_id:
            body["store_id"] = self.store_id
        with self.client.post("/v1/ads", json=body, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")
                return
            try:
                ads = resp.json().get("ads") or []
            except ValueError:
                resp.failure("answer is not JSON")
                return
            resp.success()
        self._react(ads)

    @task(7)
    def search(self) -> None:
        query = self._query()
        self._ask("search_top", {"type": "search", "query": query}, "/v1/ads [search]")

    @task(3)
    def product_page(self) -> None:
        if not self.products:
            self.search()
            return
        sku = self.rnd.choice(self.products)["sku"]
        self._ask("product_carousel", {"type": "product", "sku": sku}, "/v1/ads [product]")

    # --- what the page does with the ads ------------------------------------------------

    def _react(self, ads: list[dict[str, Any]]) -> None:
        if not ads:
            return
        ad = self.rnd.choice(ads)
        # Beacons come from the shopper's browser (its UA), and a click only ever follows
        # the impression: anything else is screened out as invalid traffic.
        browser = {"User-Agent": self.device["ua"]}
        if not (self.rnd.random() < IMPRESSION_PROBABILITY and ad.get("impression_url")):
            return
        with self.client.get(
            _path(ad["impression_url"]), name="/t/i/[token]", headers=browser,
            catch_response=True,
        ) as resp:
            if resp.status_code not in (200, 204):
                resp.failure(f"impression beacon: {resp.status_code}")
            else:
                resp.success()
        if self.rnd.random() < CLICK_PROBABILITY and ad.get("click_url"):
            with self.client.get(
                _path(ad["click_url"]),
                name="/t/c/[token]",
                headers=browser,
                allow_redirects=False,
                catch_response=True,
            ) as resp:
                if resp.status_code != 302:
                    resp.failure(f"click: expected 302, got {resp.status_code}")
                else:
                    resp.success()


def _path(url: str) -> str:
    """The path and query of a tracking URL (the host is the one Locust targets)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
