"""POST /v1/ads end to end through the ASGI app: retrieval, ranking, pricing, errors."""

from __future__ import annotations

import httpx
import redis

from exchange import keys
from exchange.app import Exchange
from exchange.events import decode_entry
from tests.exchange.conftest import (
    OP,
    campaign_body,
    new_advertiser,
    seed_catalog,
    serving,
    wait_for,
)


async def _two_bidders(client: httpx.AsyncClient, app: Exchange) -> tuple[str, str]:
    """Oatly bids 1.00 on OAT-1 (keyword "oat milk"), Minor Figures 0.60 on OAT-2."""
    await seed_catalog(client)
    a = await new_advertiser(client, "Oatly")
    b = await new_advertiser(client, "Minor Figures")
    ra = await client.post("/v1/campaigns", headers=a, json=campaign_body(
        products=[{"sku": "OAT-1", "bid": "1.00"}]))
    rb = await client.post("/v1/campaigns", headers=b, json=campaign_body(
        products=[{"sku": "OAT-2", "bid": "0.60"}], targeting={"keywords": []}))
    ids = ra.json()["id"], rb.json()["id"]
    app.state_keys = (a, b)  # type: ignore[attr-defined]
    await wait_for(lambda: serving(app) == 2)
    return ids


def _search(query: str, **extra: object) -> dict[str, object]:
    return {"placement": "search_top", "page": {"type": "search", "query": query}, **extra}


async def test_search_ranks_and_prices_second_price(client: httpx.AsyncClient,
                                                    exchange_app: Exchange) -> None:
    a, b = await _two_bidders(client, exchange_app)
    r = await client.post("/v1/ads", json=_search("oat milk", request_id="req-1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == "req-1"
    ads = body["ads"]
    assert [(ad["slot"], ad["campaign_id"], ad["sku"]) for ad in ads] == [
        (0, a, "OAT-1"), (1, b, "OAT-2")]
    assert ads[0]["impression_url"].startswith("http://shop.test/t/i/")
    assert ads[0]["click_url"].startswith("http://shop.test/t/c/")
    assert ads[0]["product"]["title"] == "Oatly Barista Oat Milk 1L"
    # Equal quality: the winner pays the runner-up's bid plus one increment.
    token = ads[0]["click_url"].rsplit("/", 1)[1]
    paid = exchange_app.runtime.signer.verify(token, 0).price_micros
    assert paid == 600_000 + 10_000
    last = exchange_app.runtime.signer.verify(ads[1]["click_url"].rsplit("/", 1)[1], 0)
    assert last.price_micros == 100_000  # nobody below: the placement floor


async def test_no_match_and_slots(client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    await _two_bidders(client, exchange_app)
    r = await client.post("/v1/ads", json=_search("garden hose"))
    assert r.status_code == 200 and r.json()["ads"] == []
    one = await client.post("/v1/ads", json=_search("oat milk", slots=1))
    assert len(one.json()["ads"]) == 1
    assert one.json()["request_id"]  # generated when absent


async def test_product_page_never_shows_its_own_sku(client: httpx.AsyncClient,
                                                    exchange_app: Exchange) -> None:
    await _two_bidders(client, exchange_app)
    page = {"placement": "product_carousel", "page": {"type": "product", "sku": "OAT-1"}}
    ads = (await client.post("/v1/ads", json=page)).json()["ads"]
    assert [ad["sku"] for ad in ads] == ["OAT-2"]
    # Coffee lists milk as a complement (config/complements.toml): milk ads may show.
    page["page"] = {"type": "product", "sku": "COF-1"}
    ads = (await client.post("/v1/ads", json=page)).json()["ads"]
    assert [ad["sku"] for ad in ads] == ["OAT-1", "OAT-2"]
    page["page"] = {"type": "product", "sku": "UNKNOWN"}
    assert (await client.post("/v1/ads", json=page)).json()["ads"] == []


async def test_category_page(client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    await _two_bidders(client, exchange_app)
    page = {"placement": "category_grid", "page": {"type": "category", "category": "Dairy & Eggs"}}
    ads = (await client.post("/v1/ads", json=page)).json()["ads"]
    assert {ad["sku"] for ad in ads} == {"OAT-1", "OAT-2"}


async def test_paused_campaign_stops_within_a_second(client: httpx.AsyncClient,
                                                     exchange_app: Exchange) -> None:
    a, _ = await _two_bidders(client, exchange_app)
    owner, _ = exchange_app.state_keys  # type: ignore[attr-defined]
    stranger = await new_advertiser(client, "other")
    r = await client.patch(f"/v1/campaigns/{a}", json={"status": "paused"}, headers=stranger)
    assert r.status_code == 404
    rt = exchange_app.runtime
    slot = rt.index.campaign_slot[int(a[4:])]
    assert rt.index.campaigns[slot, 0] == 1
    r = await client.patch(f"/v1/campaigns/{a}", json={"status": "paused"}, headers=owner)
    assert r.status_code == 200
    await wait_for(lambda: rt.index.campaigns[slot, 0] == 0, timeout=1.0)
    ads = (await client.post("/v1/ads", json=_search("oat milk"))).json()["ads"]
    assert [ad["sku"] for ad in ads] == ["OAT-2"]


async def test_bid_change_reaches_the_auction(client: httpx.AsyncClient,
                                              exchange_app: Exchange) -> None:
    await seed_catalog(client)
    adv = await new_advertiser(client)
    cid = (await client.post("/v1/campaigns", headers=adv, json=campaign_body())).json()["id"]
    other = await new_advertiser(client, "Alpro")
    await client.post("/v1/campaigns", headers=other, json=campaign_body(
        products=[{"sku": "OAT-3", "bid": "0.90"}]))
    rt = exchange_app.runtime
    await wait_for(lambda: serving(exchange_app) == 2)
    first = (await client.post("/v1/ads", json=_search("oat milk"))).json()["ads"]
    assert first[0]["sku"] == "OAT-3"
    version = rt.index.version  # before the write: the feed may apply it at once
    r = await client.patch(f"/v1/campaigns/{cid}", headers=adv,
                           json={"products": [{"sku": "OAT-1", "bid": "2.00"}]})
    assert r.status_code == 200
    await wait_for(lambda: rt.index.version > version, timeout=1.0)
    again = (await client.post("/v1/ads", json=_search("oat milk"))).json()["ads"]
    assert again[0]["sku"] == "OAT-1"


async def test_wins_are_logged(client: httpx.AsyncClient, exchange_app: Exchange,
                               redis_sync: redis.Redis) -> None:
    await _two_bidders(client, exchange_app)
    await client.post("/v1/ads", json=_search("oat milk", request_id="logged",
                                              shopper={"id": "shp_1"}))
    await exchange_app.runtime.events.flush()
    entries = redis_sync.xrange(keys.EVENTS)
    events = [e for _, fields in entries for e in decode_entry(fields)]
    wins = [e for e in events if e.type == "win"]
    assert [(e.request_id, e.slot, e.sku, e.shopper_id) for e in wins] == [
        ("logged", 0, "OAT-1", "shp_1"), ("logged", 1, "OAT-2", "shp_1")]
    assert wins[0].price_micros == 610_000 and len({e.id for e in wins}) == 2


async def test_bad_requests_are_4xx_naming_the_field(client: httpx.AsyncClient,
                                                     exchange_app: Exchange) -> None:
    cases: list[tuple[bytes, int, str, str | None]] = [
        (b"{", 400, "malformed_json", None),
        (b"", 400, "malformed_json", None),
        (b"[]", 400, "invalid_field", ""),
        (b'{"page": {"type": "search", "query": "x"}}', 400, "invalid_field", "placement"),
        (b'{"placement": "nope", "page": {"type": "search", "query": "x"}}', 400,
         "unknown_placement", "placement"),
        (b'{"placement": "search_top", "page": {"type": "product", "sku": "A"}}', 400,
         "invalid_field", "page.type"),
        (b'{"placement": "search_top", "page": {"type": "moon"}}', 400, "invalid_field",
         "page.type"),
        (b'{"placement": "search_top", "page": {"type": "search"}}', 400, "invalid_field",
         "page.query"),
        (b'{"placement": "search_top", "page": {"type": "search", "query": 5}}', 400,
         "invalid_field", "page.query"),
        (b'{"placement": "search_top", "page": {"type": "search", "query": "x"}, "slots": 0}',
         400, "invalid_field", "slots"),
        (b'{"placement": "product_carousel", "page": {"type": "product"}}', 400,
         "invalid_field", "page.sku"),
        (b'{"placement": "search_top", "page": {"type": "search", "query": "x"}, '
         b'"shopper": {"id": 1}}', 400, "invalid_field", "shopper.id"),
    ]
    for raw, status, code, field in cases:
        r = await client.post("/v1/ads", content=raw)
        assert r.status_code == status, (raw, r.text)
        error = r.json()["error"]
        assert error["code"] == code, (raw, error)
        if field is not None:
            assert error.get("field", "") == field, (raw, error)
    big = b'{"placement": "search_top", "page": {"type": "search", "query": "' + b"a" * 70000
    r = await client.post("/v1/ads", content=big + b'"}}')
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


async def test_display_placement_answers_empty_for_now(client: httpx.AsyncClient,
                                                       exchange_app: Exchange) -> None:
    await _two_bidders(client, exchange_app)
    r = await client.post("/v1/ads", json={"placement": "home_banner", "page": {"type": "home"}})
    assert r.status_code == 200 and r.json()["ads"] == []


async def test_product_page_prefers_its_own_category_over_complements(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    await _two_bidders(client, exchange_app)  # milk bids 1.00 and 0.60
    coffee = await new_advertiser(client, "Lavazza")
    await client.post("/v1/campaigns", headers=coffee, json=campaign_body(
        products=[{"sku": "COF-1", "bid": "0.30"}], targeting={"keywords": []}))
    await client.put("/v1/catalog/products", headers=OP, json=[{
        "sku": "COF-2", "title": "Illy Ground Coffee Classico 250g", "brand": "Illy",
        "category": "Beverages > Coffee > Ground Coffee", "price": "5.99"}])
    await wait_for(lambda: serving(exchange_app) == 3
                   and "COF-2" in exchange_app.runtime.index.sku_to_pid)
    page = {"placement": "product_carousel", "page": {"type": "product", "sku": "COF-2"}}
    ads = (await client.post("/v1/ads", json=page)).json()["ads"]
    # Same category at full quality (0.30) beats complements at a quarter (0.25, 0.15).
    assert [ad["sku"] for ad in ads] == ["COF-1", "OAT-1", "OAT-2"]
    price = exchange_app.runtime.signer.verify(ads[0]["click_url"].rsplit("/", 1)[1], 0)
    # COF-1 pays what keeps it above OAT-1's quarter-quality score: 0.25 + 0.01.
    assert price.price_micros == 260_000
