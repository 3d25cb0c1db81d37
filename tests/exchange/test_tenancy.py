"""Tenancy, swept over every route: another advertiser's campaign id answers 404 exactly
like a missing one; no key 401; the operator key on an advertiser route 403."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from exchange.app import Exchange
from tests.exchange.conftest import OP, campaign_body, new_advertiser, seed_catalog

BODIES: dict[str, object] = {"PATCH": {"name": "mine now"}, "PUT": {"remove": []},
                             "POST": {}}


def _campaign_routes(app: Exchange) -> list[tuple[str, str]]:
    out = []
    for route in app.starlette.routes:
        if isinstance(route, Route) and "{campaign_id}" in route.path:
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    out.append((method, route.path))
    return out


async def test_every_campaign_route_hides_other_tenants(client: httpx.AsyncClient,
                                                        exchange_app: Exchange) -> None:
    await seed_catalog(client)
    owner = await new_advertiser(client, "Owner")
    stranger = await new_advertiser(client, "Stranger")
    r = await client.post("/v1/campaigns", headers=owner, json=campaign_body())
    cid = r.json()["id"]
    routes = _campaign_routes(exchange_app)
    # Reports and bulk included: the sweep must see at least these.
    assert {p for _, p in routes} >= {
        "/v1/campaigns/{campaign_id}", "/v1/campaigns/{campaign_id}/bids",
        "/v1/campaigns/{campaign_id}/pacing", "/v1/campaigns/{campaign_id}/audit",
        "/v1/reports/campaigns/{campaign_id}"}
    for method, path in routes:
        url = path.replace("{campaign_id}", cid)
        body = BODIES.get(method)
        theirs = await client.request(method, url, headers=stranger, json=body)
        missing = await client.request(method, path.replace("{campaign_id}", "cmp_999999"),
                                       headers=stranger, json=body)
        assert theirs.status_code == missing.status_code == 404, (method, path, theirs.text)
        assert theirs.json() == missing.json()  # nothing to tell them apart
        assert (await client.request(method, url, json=body)).status_code == 401
        assert (await client.request(method, url, headers=OP, json=body)).status_code == 403
    # And the owner's campaign is untouched by all of that.
    shown = (await client.get(f"/v1/campaigns/{cid}", headers=owner)).json()
    assert (shown["name"], shown["version"]) == ("Oat milk push", 1)
    listed = (await client.get("/v1/campaigns", headers=stranger)).json()["items"]
    assert listed == []
