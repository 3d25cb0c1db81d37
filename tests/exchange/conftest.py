"""An Exchange app on the session's real Redis, started like the server starts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis

from auction.selection import CAMP_GATE, CAMP_LIVE
from exchange.app import Exchange
from exchange.settings import Settings, load_settings

OPERATOR = "test-operator-key"
# Traffic is screened for bots: test clients present themselves as a shopper's browser.
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
              "Gecko) Chrome/131.0.0.0 Safari/537.36")
OP = {"Authorization": f"Bearer {OPERATOR}"}


def make_settings(**overrides: str) -> Settings:
    # Tests click right after the impression; the bot-speed rule has its own test.
    env = {"ENDCAP_OPERATOR_KEY": OPERATOR, "ENDCAP_EVENT_FLUSH_MS": "5",
           "ENDCAP_MIN_CLICK_DELAY_MS": "0", "ENDCAP_ROLLUP": "worker"}
    env.update({f"ENDCAP_{k.upper()}": v for k, v in overrides.items()})
    return load_settings(environ=env)


@pytest.fixture
async def exchange_app(redis_url: str, redis_sync: redis.Redis) -> AsyncIterator[Exchange]:
    app = Exchange(make_settings(), redis_url)
    await app.runtime.start()
    try:
        yield app
    finally:
        await app.runtime.stop()


@pytest.fixture
async def client(exchange_app: Exchange) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=exchange_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test",
                                 headers={"User-Agent": BROWSER_UA}) as c:
        yield c


async def wait_for(predicate: Callable[[], Any], timeout: float = 2.0) -> None:
    """Wait until the change feed has applied something (the 1 s propagation promise)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met within the propagation window")
        await asyncio.sleep(0.01)


def serving(app: Exchange) -> int:
    """Campaigns the auction would enter now: live, and their pacing gate open (a new
    campaign's first budget lease takes one pacing tick to arrive)."""
    index = app.runtime.index
    camps = index.campaigns[: index.n_campaigns]
    return int(((camps[:, CAMP_LIVE] == 1) & (camps[:, CAMP_GATE] > 0)).sum())


PRODUCTS = [
    {"sku": "OAT-1", "title": "Oatly Barista Oat Milk 1L", "brand": "Oatly",
     "category": "Dairy & Eggs > Milk > Oat Milk", "price": "2.49",
     "landing_url": "https://shop.test/p/OAT-1"},
    {"sku": "OAT-2", "title": "Minor Figures Oat Milk 1L", "brand": "Minor Figures",
     "category": "Dairy & Eggs > Milk > Oat Milk", "price": "2.29",
     "landing_url": "https://shop.test/p/OAT-2"},
    {"sku": "OAT-3", "title": "Alpro Oat Milk No Sugars 1L", "brand": "Alpro",
     "category": "Dairy & Eggs > Milk > Oat Milk", "price": "1.99"},
    {"sku": "COF-1", "title": "Lavazza Ground Coffee Crema e Gusto 250g", "brand": "Lavazza",
     "category": "Beverages > Coffee > Ground Coffee", "price": "4.99",
     "landing_url": "https://shop.test/p/COF-1"},
]


async def seed_catalog(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/catalog/products", json=PRODUCTS, headers=OP)
    assert r.status_code == 200, r.text


async def new_advertiser(client: httpx.AsyncClient, name: str = "Oatly") -> dict[str, str]:
    r = await client.post("/v1/advertisers", json={"name": name}, headers=OP)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['api_key']}"}


def campaign_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Oat milk push", "kind": "sponsored_product", "status": "active",
        "budget": {"daily": "50.00", "total": "1000.00"}, "pacing": "even",
        "products": [{"sku": "OAT-1", "bid": "0.80"}],
        "targeting": {"keywords": ["oat milk"], "categories": [],
                      "segments": {"include": [], "exclude": []}, "stores": []},
        "frequency_cap": {"impressions": 3, "per": "day"},
        "suppress_purchased_days": 7,
    }
    body.update(overrides)
    return body
