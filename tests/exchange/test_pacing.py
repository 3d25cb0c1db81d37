"""Pacing through the ASGI app: throttles reach the auction, the pacing view, time zones."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import redis

from exchange.app import Exchange
from pacing.keys import THROTTLE, spend_key
from tests.exchange.conftest import campaign_body, new_advertiser, seed_catalog, serving, wait_for

SEARCH = {"placement": "search_top", "page": {"type": "search", "query": "oat milk"}}


async def _campaign(client: httpx.AsyncClient, **overrides: object) -> tuple[str, dict[str, str]]:
    await seed_catalog(client)
    owner = await new_advertiser(client)
    r = await client.post("/v1/campaigns", headers=owner, json=campaign_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()["id"], owner


async def test_a_zero_throttle_keeps_the_campaign_out_of_auctions(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    cid, _ = await _campaign(client)
    await wait_for(lambda: serving(exchange_app) == 1)
    assert (await client.post("/v1/ads", json=SEARCH)).json()["ads"]
    redis_sync.hset(THROTTLE, cid[4:], 0)  # as a controller round would publish it
    await exchange_app.runtime.pacer.read_throttles()
    for _ in range(20):
        assert (await client.post("/v1/ads", json=SEARCH)).json()["ads"] == []
    redis_sync.hset(THROTTLE, cid[4:], 16_384)  # a quarter of the auctions
    await exchange_app.runtime.pacer.read_throttles()
    shown = 0
    for _ in range(400):
        shown += bool((await client.post("/v1/ads", json=SEARCH)).json()["ads"])
    assert 60 <= shown <= 140  # binomial(400, 0.25): mean 100, sd 8.7


async def test_pacing_view(client: httpx.AsyncClient, exchange_app: Exchange,
                           redis_sync: redis.Redis) -> None:
    cid, owner = await _campaign(client, budget={"daily": "20.00"},
                                 schedule={"time_zone": "America/New_York"})
    await wait_for(lambda: serving(exchange_app) == 1)
    day = datetime.now(ZoneInfo("America/New_York")).strftime("%Y%m%d")
    redis_sync.hset(spend_key(int(cid[4:])), f"d:{day}", 5_000_000)
    r = await client.get(f"/v1/campaigns/{cid}/pacing", headers=owner)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["day"] == f"{day[:4]}-{day[4:6]}-{day[6:]}"
    assert view["time_zone"] == "America/New_York"
    assert (view["daily_budget"], view["spent_today"]) == ("20.00", "5.00")
    assert view["mode"] == "even" and 0 <= view["throttle"] <= 1
    assert float(view["remaining_today"]) <= 15.0
    shown = await client.get(f"/v1/campaigns/{cid}", headers=owner)
    assert shown.json()["spend"]["today"] == "5.00"  # the campaign's own day
    assert shown.json()["schedule"] == {"time_zone": "America/New_York"}
    stranger = await new_advertiser(client, "other")
    assert (await client.get(f"/v1/campaigns/{cid}/pacing", headers=stranger)).status_code == 404


async def test_an_unknown_time_zone_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    await seed_catalog(client)
    owner = await new_advertiser(client)
    for bad in ("Mars/Olympus", "../../etc/passwd", "America"):
        r = await client.post("/v1/campaigns", headers=owner,
                              json=campaign_body(schedule={"time_zone": bad}))
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["field"] == "schedule.time_zone"


async def test_pacing_metrics_are_exported(client: httpx.AsyncClient,
                                           exchange_app: Exchange) -> None:
    cid, _ = await _campaign(client)
    await wait_for(lambda: serving(exchange_app) == 1)
    text = (await client.get("/metrics")).text
    assert f'endcap_pacing_throttle{{campaign="{cid}"}} 1.0' in text
    assert f'endcap_pacing_daily_budget_micros{{campaign="{cid}"}} 5e+07' in text
    assert "endcap_pacing_lease_calls_total" in text
