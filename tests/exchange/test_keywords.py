"""Keyword match types and negative keywords, through the real app and auction."""

from __future__ import annotations

import httpx

from exchange.app import Exchange
from tests.exchange.conftest import campaign_body, new_advertiser, seed_catalog, serving, wait_for


def _search(query: str) -> dict[str, object]:
    return {"placement": "search_top", "page": {"type": "search", "query": query}}


async def _skus(client: httpx.AsyncClient, query: str) -> list[str]:
    r = await client.post("/v1/ads", json=_search(query))
    assert r.status_code == 200, r.text
    return [ad["sku"] for ad in r.json()["ads"]]


async def test_exact_phrase_and_negative_keywords(client: httpx.AsyncClient,
                                                  exchange_app: Exchange) -> None:
    await seed_catalog(client)
    coffee = await new_advertiser(client, "Lavazza")
    alpro = await new_advertiser(client, "Alpro")
    # Coffee advertises on "oat milk" searches, exactly: its title shares no word with them.
    r = await client.post("/v1/campaigns", headers=coffee, json=campaign_body(
        products=[{"sku": "COF-1", "bid": "0.90"}],
        targeting={"keywords": [{"text": "Oat Milk", "match": "exact"}]}))
    assert r.status_code == 201, r.text
    cof = r.json()["id"]
    assert r.json()["targeting"]["keywords"] == [{"text": "oat milk", "match": "exact"}]
    # Alpro matches oat milk by its own title, but never next to "barista".
    r = await client.post("/v1/campaigns", headers=alpro, json=campaign_body(
        products=[{"sku": "OAT-3", "bid": "0.50"}],
        targeting={"keywords": [], "negative_keywords": ["barista"]}))
    assert r.status_code == 201, r.text
    assert r.json()["targeting"]["negative_keywords"] == ["barista"]
    await wait_for(lambda: serving(exchange_app) == 2)

    assert await _skus(client, "oat milk") == ["COF-1", "OAT-3"]
    assert await _skus(client, "Oat  MILK!") == ["COF-1", "OAT-3"]  # same tokens
    assert "COF-1" not in await _skus(client, "cheap oat milk")  # exact: the whole query
    assert await _skus(client, "barista oat milk") == []  # not exact; Alpro's negative

    version = exchange_app.runtime.index.version
    r = await client.patch(f"/v1/campaigns/{cof}", headers=coffee, json={"targeting": {
        "keywords": [{"text": "oat milk", "match": "phrase"}]}})
    assert r.status_code == 200, r.text
    await wait_for(lambda: exchange_app.runtime.index.version > version)
    assert "COF-1" in await _skus(client, "cheap oat milk")  # phrase: inside the query
    assert "COF-1" not in await _skus(client, "milk oat")  # ... in order
    assert "COF-1" not in await _skus(client, "oat drink")

    version = exchange_app.runtime.index.version
    r = await client.patch(f"/v1/campaigns/{cof}", headers=coffee, json={"targeting": {
        "keywords": ["oat milk"]}})  # broad: any of the words
    assert r.status_code == 200, r.text
    await wait_for(lambda: exchange_app.runtime.index.version > version)
    assert "COF-1" in await _skus(client, "milk oat")


async def test_keywords_that_could_never_match_are_refused(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    owner = await new_advertiser(client)
    for targeting, field in (
            ({"keywords": [{"text": "the and", "match": "phrase"}]}, "targeting.keywords"),
            ({"negative_keywords": ["!!"]}, "targeting.negative_keywords"),
            ({"keywords": [{"text": "oat", "match": "fuzzy"}]}, "targeting.keywords[0].match")):
        r = await client.post("/v1/campaigns", headers=owner,
                              json=campaign_body(targeting=targeting))
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"].startswith(field), r.text
