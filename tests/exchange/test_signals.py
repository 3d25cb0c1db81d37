"""Real-time retail signals end to end: ingest through the API (or the intake stream),
then the very next auction for that shopper, through the real ASGI app and Redis."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
import redis

from exchange import keys
from exchange.app import Exchange
from exchange.tracking import ExposedNotConverted
from tests.exchange.conftest import (
    BROWSER_UA,
    OP,
    PRODUCTS,
    campaign_body,
    make_settings,
    new_advertiser,
    serving,
    wait_for,
)

HOST = "http://shop.test"
TVS = [
    {"sku": "TV-1", "title": "Vizio 55 inch 4K Smart TV", "brand": "Vizio",
     "category": "Electronics > TV & Video > Televisions", "price": "399.00"},
    {"sku": "TV-2", "title": "Hisense 65 inch 4K Smart TV", "brand": "Hisense",
     "category": "Electronics > TV & Video > Televisions", "price": "549.00"},
]


def _search(query: str = "oat milk", shopper: str | None = None, **extra: Any
            ) -> dict[str, Any]:
    body: dict[str, Any] = {"placement": "search_top",
                            "page": {"type": "search", "query": query}, **extra}
    if shopper:
        body["shopper"] = {"loyalty_id": shopper}
    return body


async def _ads(client: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = await client.post("/v1/ads", json=body)
    assert r.status_code == 200, r.text
    ads: list[dict[str, Any]] = r.json()["ads"]
    return ads


def _skus(ads: list[dict[str, Any]]) -> list[str]:
    return [a["sku"] for a in ads]


async def _setup(client: httpx.AsyncClient, app: Exchange, *bodies: dict[str, Any]
                 ) -> list[str]:
    """The test catalogue, then one advertiser and campaign per body; waits until all serve."""
    r = await client.put("/v1/catalog/products", json=PRODUCTS + TVS, headers=OP)
    assert r.status_code == 200, r.text
    ids = []
    for i, body in enumerate(bodies):
        adv = await new_advertiser(client, f"Brand {i}")
        r = await client.post("/v1/campaigns", headers=adv, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    await wait_for(lambda: serving(app) == len(bodies))
    return ids


async def _post(client: httpx.AsyncClient, path: str, body: Any) -> dict[str, Any]:
    r = await client.post(path, json=body, headers=OP)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _one(sku: str, bid: str, **overrides: Any) -> dict[str, Any]:
    return campaign_body(products=[{"sku": sku, "bid": bid}], frequency_cap=None, **overrides)


async def test_segment_include_and_exclude_apply_to_the_next_auction(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    vegan_only = _one("OAT-1", "1.00", targeting={
        "keywords": ["oat milk"], "segments": {"include": ["vegan"], "exclude": []}})
    no_bargains = _one("OAT-2", "0.60", targeting={
        "keywords": ["oat milk"], "segments": {"include": [], "exclude": ["bargain_hunter"]}})
    await _setup(client, exchange_app, vegan_only, no_bargains)
    assert _skus(await _ads(client, _search(shopper="L1"))) == ["OAT-2"]
    assert _skus(await _ads(client, _search())) == ["OAT-2"]  # anonymous: in no segment
    await _post(client, "/v1/signals/segments", [{"shopper_id": "L1", "add": ["vegan"]}])
    assert _skus(await _ads(client, _search(shopper="L1"))) == ["OAT-1", "OAT-2"]
    await _post(client, "/v1/signals/segments",
                [{"shopper_id": "L1", "add": ["bargain_hunter"]}])
    assert _skus(await _ads(client, _search(shopper="L1"))) == ["OAT-1"]
    await _post(client, "/v1/signals/segments",
                [{"shopper_id": "L1", "remove": ["vegan", "bargain_hunter"]}])
    assert _skus(await _ads(client, _search(shopper="L1"))) == ["OAT-2"]


async def test_segment_bid_multiplier_lifts_the_bid_and_caps_the_price(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    # B bids 0.60 x 2 = 1.20 for gamers: above A's 1.00. B pays A's bid + 0.01 = 1.01.
    a = _one("OAT-1", "1.00")
    b = _one("OAT-2", "0.60", targeting={"keywords": ["oat milk"], "segments": {
        "include": [], "exclude": [], "bid_multipliers": {"gamer": "2"}}})
    await _setup(client, exchange_app, a, b)
    assert _skus(await _ads(client, _search(shopper="G1"))) == ["OAT-1", "OAT-2"]
    await _post(client, "/v1/signals/segments", [{"shopper_id": "G1", "add": ["gamer"]}])
    ads = await _ads(client, _search(shopper="G1"))
    assert _skus(ads) == ["OAT-2", "OAT-1"]
    signer = exchange_app.runtime.signer
    top = signer.verify(ads[0]["click_url"].rsplit("/", 1)[1], 0)
    assert top.price_micros == 1_010_000
    assert top.shopper == "G1"  # the token carries the shopper for exposure memory


async def test_out_of_stock_product_is_replaced_by_the_brands_in_stock_one(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    both = campaign_body(products=[{"sku": "OAT-1", "bid": "1.00"},
                                   {"sku": "OAT-3", "bid": "0.50"}], frequency_cap=None)
    await _setup(client, exchange_app, both)
    assert _skus(await _ads(client, _search())) == ["OAT-1"]  # one ad per campaign
    version = exchange_app.runtime.stock.version
    out = await _post(client, "/v1/signals/stock", [
        {"sku": "OAT-1", "store_id": "online", "quantity": 0},
        {"sku": "OAT-3", "store_id": "online", "quantity": 40},
        {"sku": "OAT-1", "store_id": "S1", "quantity": 12},
        {"sku": "NOPE", "store_id": "S1", "quantity": 1}])
    assert out == {"applied": 3, "unknown_skus": ["NOPE"]}
    await wait_for(lambda: exchange_app.runtime.stock.version > version)
    # Online, OAT-1 is sold out: the campaign keeps its slot with OAT-3.
    assert _skus(await _ads(client, _search())) == ["OAT-3"]
    # With a pick-up store that has it, OAT-1 can be bought: it is advertised again.
    assert _skus(await _ads(client, _search(store_id="S1"))) == ["OAT-1"]
    # Sold out everywhere, no substitute in stock either: no ad at all.
    version = exchange_app.runtime.stock.version
    await _post(client, "/v1/signals/stock", [
        {"sku": "OAT-3", "store_id": "online", "quantity": 0}])
    await wait_for(lambda: exchange_app.runtime.stock.version > version)
    assert await _ads(client, _search()) == []


async def test_in_store_screen_uses_that_stores_shelf(
        client: httpx.AsyncClient, exchange_app: Exchange, tmp_path: Any,
        redis_url: str) -> None:
    placements = tmp_path / "placements.toml"
    placements.write_text('[[placement]]\nid = "aisle_screen"\nkind = "sponsored_product"\n'
                          'page_type = "in_store"\nslots = 2\nformats = ["product_tile"]\n'
                          'floor = "0.10"\n')
    app = Exchange(make_settings(placements_file=str(placements)), redis_url)
    await app.runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=HOST,
                                     headers={"User-Agent": BROWSER_UA}) as c:
            await _setup(c, app, _one("OAT-1", "1.00", targeting={
                "keywords": [], "categories": ["Dairy & Eggs > Milk"]}))
            version = app.runtime.stock.version
            await _post(c, "/v1/signals/stock", [
                {"sku": "OAT-1", "store_id": "S1", "quantity": 0},
                {"sku": "OAT-1", "store_id": "S2", "quantity": 2},
                {"sku": "OAT-1", "store_id": "online", "quantity": 100}])
            await wait_for(lambda: app.runtime.stock.version > version)
            screen = {"placement": "aisle_screen",
                      "page": {"type": "in_store", "category": "Dairy & Eggs > Milk"}}
            assert await _ads(c, {**screen, "store_id": "S1"}) == []  # not on this shelf
            assert _skus(await _ads(c, {**screen, "store_id": "S2"})) == ["OAT-1"]
            r = await c.post("/v1/ads", json=screen)
            assert r.status_code == 400 and r.json()["error"]["field"] == "store_id"
    finally:
        await app.runtime.stop()


async def test_purchase_suppresses_the_product_and_returns_do_not(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    await _setup(client, exchange_app, _one("OAT-1", "1.00"), _one("OAT-2", "0.60"),
                 _one("OAT-3", "0.40", suppress_purchased_days=0))
    line = {"order_id": "o-1", "shopper_id": "P1", "quantity": 1, "unit_price": "2.49",
            "ts": "2026-11-20T10:00:00Z"}
    out = await _post(client, "/v1/signals/purchases", [
        {**line, "sku": "OAT-1"}, {**line, "sku": "OAT-3"},
        {**line, "sku": "OAT-2", "shopper_id": "P2", "quantity": -1}])  # a return
    assert out == {"applied": 3}
    assert _skus(await _ads(client, _search(shopper="P1"))) == ["OAT-2", "OAT-3"]
    assert _skus(await _ads(client, _search(shopper="P2"))) == ["OAT-1", "OAT-2", "OAT-3"]
    # A purchase older than the 7-day window no longer suppresses.
    await _post(client, "/v1/signals/purchases", [
        {**line, "sku": "OAT-2", "shopper_id": "P3", "ts": "2026-01-01T00:00:00Z"}])
    assert _skus(await _ads(client, _search(shopper="P3"))) == ["OAT-1", "OAT-2", "OAT-3"]
    # The lines are conversions on the event stream, one id per order line.
    conversions = [msgspec.json.decode(f[b"e"]) for _, f in redis_sync.xrange(keys.EVENTS)
                   if b"e" in f and b'"conversion"' in f[b"e"]]
    assert {c["id"] for c in conversions} == {"o:o-1:OAT-1:1", "o:o-1:OAT-3:1",
                                             "o:o-1:OAT-2:-1", "o:o-1:OAT-2:1"}
    assert {c["price_micros"] for c in conversions} == {2_490_000}


async def test_a_bought_tv_stops_tv_ads_for_the_replenishment_window(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    tv = _one("TV-2", "2.00", targeting={"keywords": ["tv"]})
    await _setup(client, exchange_app, tv)
    assert _skus(await _ads(client, _search("4k tv", shopper="T1"))) == ["TV-2"]
    await _post(client, "/v1/signals/purchases", [{
        "order_id": "o-9", "shopper_id": "T1", "sku": "TV-1", "quantity": 1,
        "unit_price": "399.00", "ts": "2026-11-01T12:00:00Z", "store_id": "S1"}])
    assert await _ads(client, _search("4k tv", shopper="T1")) == []  # another TV: no
    assert _skus(await _ads(client, _search("4k tv", shopper="T2"))) == ["TV-2"]


async def test_frequency_cap_counts_billed_impressions(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    capped = campaign_body(products=[{"sku": "OAT-1", "bid": "1.00"}],
                           frequency_cap={"impressions": 2, "per": "day"})
    await _setup(client, exchange_app, capped)
    for _ in range(2):
        ads = await _ads(client, _search(shopper="F1"))
        assert _skus(ads) == ["OAT-1"]
        # Served is not seen: only the impression beacon counts.
        assert _skus(await _ads(client, _search(shopper="F1"))) == ["OAT-1"]
        r = await client.get(ads[0]["impression_url"][len(HOST):])
        assert r.status_code == 204
    assert await _ads(client, _search(shopper="F1")) == []
    assert _skus(await _ads(client, _search(shopper="F2"))) == ["OAT-1"]
    assert _skus(await _ads(client, _search())) == ["OAT-1"]  # anonymous: not capped


async def test_exposure_memory_and_exposed_not_converted(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    await _setup(client, exchange_app, _one("OAT-1", "1.00"))
    for i in range(4):
        ads = await _ads(client, _search(shopper="E1"))
        assert _skus(ads) == ["OAT-1"]
        await client.get(ads[0]["impression_url"][len(HOST):])
        if i == 0:
            await client.get(ads[0]["click_url"][len(HOST):])
    events = redis_sync.xrange(keys.EXPOSED)
    assert len(events) == 1  # at exactly the third impression, once
    event = msgspec.json.decode(events[0][1][b"e"], type=ExposedNotConverted)
    assert (event.shopper_id, event.sku, event.impressions) == ("E1", "OAT-1", 3)
    r = await client.get("/v1/shoppers/E1/exposures", headers=OP)
    assert r.status_code == 200, r.text
    (exp,) = r.json()["exposures"]
    assert (exp["sku"], exp["impressions"], exp["clicks"], exp["purchased_since"]) == (
        "OAT-1", 4, 1, False)
    assert exp["last_seen"] >= exp["first_seen"] > 0
    await _post(client, "/v1/signals/purchases", [{
        "order_id": "o-2", "shopper_id": "E1", "sku": "OAT-1", "quantity": 2,
        "unit_price": "2.49", "ts": "2099-01-01T00:00:00Z"}])
    r = await client.get("/v1/shoppers/E1/exposures", headers=OP)
    assert r.json()["exposures"][0]["purchased_since"] is True
    assert (await client.get("/v1/shoppers/nobody/exposures", headers=OP)).json() == {
        "shopper_id": "nobody", "exposures": []}


async def test_exposure_fatigue_lowers_the_ads_rank(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    # Equal quality; A bids 1.00, B 0.80. After 2 impressions of OAT-1 with k = 5,
    # A's quality is x 5/7 = 0.71: score 0.71 < B's 0.80, so B ranks first.
    await _setup(client, exchange_app, _one("OAT-1", "1.00"), _one("OAT-2", "0.80"))
    for _ in range(2):
        ads = await _ads(client, _search(shopper="W1"))
        assert _skus(ads) == ["OAT-1", "OAT-2"]
        await client.get(ads[0]["impression_url"][len(HOST):])
    assert _skus(await _ads(client, _search(shopper="W1"))) == ["OAT-2", "OAT-1"]
    assert _skus(await _ads(client, _search(shopper="W2"))) == ["OAT-1", "OAT-2"]


async def test_placement_silence_threshold_answers_no_ad(
        tmp_path: Any, redis_url: str, redis_sync: redis.Redis) -> None:
    placements = tmp_path / "placements.toml"
    placements.write_text(
        '[[placement]]\nid = "picky"\nkind = "sponsored_product"\npage_type = "search"\n'
        'slots = 2\nformats = ["product_tile"]\nfloor = "0.10"\n'
        'min_expected_value = "0.40"\n')
    app = Exchange(make_settings(placements_file=str(placements)), redis_url)
    await app.runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=HOST, headers={"User-Agent": BROWSER_UA}) as c:
            # Quality 0.5 (the catalogue's default): expected values 0.50 and 0.30.
            await _setup(c, app, _one("OAT-1", "1.00"), _one("OAT-2", "0.60"))
            assert _skus(await _ads(c, {**_search(), "placement": "picky"})) == ["OAT-1"]
    finally:
        await app.runtime.stop()


async def test_unreadable_shopper_state_degrades_to_no_ad(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    await _setup(client, exchange_app, _one("OAT-1", "1.00"))
    resp = exchange_app.runtime.resp
    assert resp is not None
    await resp.close()
    assert await _ads(client, _search(shopper="D1")) == []
    assert _skus(await _ads(client, _search())) == ["OAT-1"]  # anonymous needs no state
    metrics = (await client.get("/metrics")).text
    assert 'endcap_ad_requests_degraded_total{placement="search_top"} 1.0' in metrics


async def test_segment_intake_stream_applies_in_order_and_rejects_bad_entries(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    redis_sync.xadd(keys.SEGMENT_INTAKE, {"shopper_id": "S9", "add": "a,b,c"})
    redis_sync.xadd(keys.SEGMENT_INTAKE, {"shopper_id": "S9", "remove": "b"})
    redis_sync.xadd(keys.SEGMENT_INTAKE, {"add": "x"})  # no shopper: rejected
    intake = exchange_app.runtime.intake
    await wait_for(lambda: intake.applied == 4 and intake.rejected == 1)
    fields = {f.decode() for f in redis_sync.hkeys(keys.shopper("S9"))}
    assert fields == {"s:a", "s:c"}
    assert redis_sync.xpending(keys.SEGMENT_INTAKE, keys.SEGMENT_GROUP)["pending"] == 0


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/signals/segments", [{"add": ["x"]}], "[0].shopper_id"),
    ("/v1/signals/segments", [{"shopper_id": "a b", "add": ["x"]}], "[0].shopper_id"),
    ("/v1/signals/segments", [{"shopper_id": "L1", "add": [""]}], "[0].add[0]"),
    ("/v1/signals/segments", {"shopper_id": "L1"}, ""),
    ("/v1/signals/purchases", [{"order_id": "o", "shopper_id": "L1", "sku": "OAT-1",
                                "quantity": 1, "unit_price": "abc",
                                "ts": "2026-11-20T10:00:00Z"}], "[0].unit_price"),
    ("/v1/signals/purchases", [{"order_id": "o", "shopper_id": "L1", "sku": "OAT-1",
                                "quantity": 1, "unit_price": "1.00",
                                "ts": "2026-11-20T10:00:00"}], "[0].ts"),
    ("/v1/signals/purchases", [{"order_id": "o", "shopper_id": "L1", "sku": "OAT-1",
                                "unit_price": "1.00", "ts": "2026-11-20T10:00:00Z"}],
     "[0].quantity"),
    ("/v1/signals/stock", [{"sku": "OAT-1", "store_id": "S1", "quantity": -1}],
     "[0].quantity"),
    ("/v1/signals/stock", [{"sku": "OAT-1", "quantity": 1}], "[0].store_id"),
])
async def test_bad_signals_are_400_naming_the_field(
        client: httpx.AsyncClient, path: str, body: Any, field: str) -> None:
    r = await client.post(path, json=body, headers=OP)
    assert r.status_code == 400, r.text
    assert r.json()["error"].get("field", "") == field


async def test_signals_need_the_operator_key(client: httpx.AsyncClient) -> None:
    adv = await new_advertiser(client)
    for path in ("/v1/signals/segments", "/v1/signals/purchases", "/v1/signals/stock"):
        assert (await client.post(path, json=[])).status_code == 401
        assert (await client.post(path, json=[], headers=adv)).status_code == 403
    assert (await client.get("/v1/shoppers/L1/exposures", headers=adv)).status_code == 403


async def test_segment_intake_runs_in_the_workers_when_reports_are_off(
        redis_url: str, redis_sync: redis.Redis) -> None:
    app = Exchange(make_settings(rollup="off"), redis_url)
    await app.runtime.start()
    try:
        redis_sync.xadd(keys.SEGMENT_INTAKE, {"shopper_id": "S8", "add": "vegan"})
        await wait_for(lambda: app.runtime.intake.applied == 1)
        assert redis_sync.hget(keys.shopper("S8"), "s:vegan") == b"1"
    finally:
        await app.runtime.stop()
