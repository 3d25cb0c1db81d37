"""Catalogue, advertisers, campaigns and placements through the real ASGI app."""

from __future__ import annotations

import re

import httpx

from exchange.app import Exchange
from tests.exchange.conftest import (
    OP,
    PRODUCTS,
    campaign_body,
    new_advertiser,
    seed_catalog,
    wait_for,
)


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_placements_come_from_config(client: httpx.AsyncClient) -> None:
    placements = (await client.get("/v1/placements")).json()
    by_id = {p["id"]: p for p in placements}
    assert by_id["search_top"] == {
        "id": "search_top", "kind": "sponsored_product", "page_type": "search", "slots": 4,
        "formats": ["product_tile"], "floor": "0.10", "open_to_dsps": False,
    }
    assert {p["page_type"] for p in placements} >= {"search", "product", "home", "in_store"}


async def test_catalog_upsert_and_list(client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    await seed_catalog(client)
    await wait_for(lambda: "OAT-3" in exchange_app.runtime.index.sku_to_pid)
    page = (await client.get("/v1/catalog/products?limit=2", headers=OP)).json()
    assert [p["sku"] for p in page["items"]] == ["OAT-1", "OAT-2"]
    assert page["items"][0]["price"] == "2.49"
    rest = (await client.get(f"/v1/catalog/products?limit=2&cursor={page['next_cursor']}",
                             headers=OP)).json()
    assert [p["sku"] for p in rest["items"]] == ["OAT-3", "COF-1"]
    found = (await client.get("/v1/catalog/products?q=coffee", headers=OP)).json()
    assert [p["sku"] for p in found["items"]] == ["COF-1"]
    dairy = (await client.get("/v1/catalog/products?category=Dairy %26 Eggs", headers=OP)).json()
    assert {p["sku"] for p in dairy["items"]} == {"OAT-1", "OAT-2", "OAT-3"}
    # A re-upsert changes the product in place (same SKU, no duplicate).
    changed = dict(PRODUCTS[0], price="2.99")
    assert (await client.put("/v1/catalog/products", json=[changed], headers=OP)).status_code == 200
    await wait_for(lambda: exchange_app.runtime.index.products[1].price_micros == 2_990_000)


async def test_catalog_needs_operator(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/catalog/products")).status_code == 401
    bad = await client.get("/v1/catalog/products", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    adv = await new_advertiser(client)
    assert (await client.get("/v1/catalog/products", headers=adv)).status_code == 403


async def test_catalog_rejects_bad_rows_whole(client: httpx.AsyncClient) -> None:
    rows = [PRODUCTS[0], dict(PRODUCTS[1], price="abc")]
    r = await client.put("/v1/catalog/products", json=rows, headers=OP)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "[1].price"
    listed = (await client.get("/v1/catalog/products", headers=OP)).json()
    assert listed["items"] == []  # all-or-nothing: the good row was not written either
    missing = await client.put("/v1/catalog/products", json=[{"sku": "X"}], headers=OP)
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "[0].title"
    huge = await client.put("/v1/catalog/products", json=[dict(PRODUCTS[0], price="1e40")],
                            headers=OP)
    assert huge.status_code == 400 and huge.json()["error"]["field"] == "[0].price"


async def test_odd_numbers_are_4xx_not_500(client: httpx.AsyncClient) -> None:
    # "²".isdigit() is true but int() refuses it; int() refuses more than 4300 digits.
    for query in ("limit=²", "cursor=" + "9" * 5000):
        r = await client.get(f"/v1/catalog/products?{query}", headers=OP)
        assert r.status_code == 400, (query, r.text)
    huge = {"content-length": "9" * 5000}
    r = await client.put("/v1/catalog/products", content=b"[]", headers={**OP, **huge})
    assert r.status_code == 413
    r = await client.post("/v1/ads", content=b"{}", headers=huge)
    assert r.status_code == 413


async def test_campaign_create_get_list_patch(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    adv = await new_advertiser(client)
    r = await client.post("/v1/campaigns", json=campaign_body(), headers=adv)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"].startswith("cmp_")
    assert created["spend"] == {"today": "0.00", "total": "0.00"}
    assert created["budget"] == {"daily": "50.00", "total": "1000.00"}
    assert created["products"] == [{"sku": "OAT-1", "bid": "0.80"}]
    assert created["targeting"]["keywords"] == ["oat milk"]
    got = (await client.get(f"/v1/campaigns/{created['id']}", headers=adv)).json()
    assert got == created
    listed = (await client.get("/v1/campaigns", headers=adv)).json()["items"]
    assert [c["id"] for c in listed] == [created["id"]]
    patched = await client.patch(f"/v1/campaigns/{created['id']}",
                                 json={"status": "paused"}, headers=adv)
    assert patched.status_code == 200
    body = patched.json()
    assert body["status"] == "paused" and body["version"] == 2
    assert body["products"] == created["products"]  # untouched fields stay


async def test_campaigns_are_tenant_private(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    a = await new_advertiser(client, "A")
    b = await new_advertiser(client, "B")
    cid = (await client.post("/v1/campaigns", json=campaign_body(), headers=a)).json()["id"]
    assert (await client.get(f"/v1/campaigns/{cid}", headers=b)).status_code == 404
    r = await client.patch(f"/v1/campaigns/{cid}", json={"status": "paused"}, headers=b)
    assert r.status_code == 404
    assert (await client.get("/v1/campaigns", headers=b)).json()["items"] == []
    assert (await client.get("/v1/campaigns/cmp_999999", headers=a)).status_code == 404
    assert (await client.get("/v1/campaigns", headers=OP)).status_code == 403
    assert (await client.get("/v1/campaigns")).status_code == 401


async def test_campaign_validation_names_fields(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    adv = await new_advertiser(client)
    cases = [
        (campaign_body(products=[{"sku": "NOPE", "bid": "1.00"}]), "products[0].sku"),
        (campaign_body(products=[{"sku": "OAT-1", "bid": "-1"}]), "products[0].bid"),
        (campaign_body(products=[{"sku": "OAT-1", "bid": "0.1234567"}]), "products[0].bid"),
        (campaign_body(budget={"daily": "zero"}), "budget.daily"),
        (campaign_body(budget={"daily": "10.00", "total": "5.00"}), "budget.total"),
        (campaign_body(kind="video"), "kind"),
        (campaign_body(status="running"), "status"),
        (campaign_body(name=""), "name"),
        (campaign_body(frequency_cap={"impressions": 0, "per": "day"}),
         "frequency_cap.impressions"),
        (campaign_body(schedule={"start": "2026-01-01T00:00:00"}), "schedule.start"),
        (campaign_body(unknown_field=1), "unknown_field"),
    ]
    for body, field in cases:
        r = await client.post("/v1/campaigns", json=body, headers=adv)
        assert r.status_code == 400, (field, r.text)
        assert r.json()["error"]["field"] == field, (field, r.json())
    assert (await client.get("/v1/campaigns", headers=adv)).json()["items"] == []
    r = await client.post("/v1/campaigns", content=b"{not json", headers=adv)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.delete("/v1/placements")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = await client.get("/v1/ads")
    assert r.status_code == 405


async def test_openapi_documents_every_route(client: httpx.AsyncClient,
                                             exchange_app: Exchange) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {("/v1/ads", "POST")}
    for route in exchange_app.starlette.routes:
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD" and route.path not in ("/openapi.json", "/docs"):
                served.add((route.path, method))
    assert served <= documented, served - documented
    ad_request = doc["components"]["schemas"]["AdRequest"]
    assert set(ad_request["required"]) == {"placement", "page"}


async def test_docs_page_is_self_contained(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '"/openapi.json"' in r.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    for asset in assets:
        assert asset.startswith("/docs/"), f"{asset}: the page must not need the network"
        got = await client.get(asset)
        assert got.status_code == 200 and len(got.content) > 100, asset
    assert (await client.get("/docs/assets/nope.js")).status_code == 404
