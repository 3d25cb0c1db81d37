"""Invalid traffic through the real app: screened before the auction, never billed."""

from __future__ import annotations

import httpx
import redis

from exchange import keys
from exchange.app import Exchange
from exchange.events import decode_entry
from tests.exchange.conftest import (
    BROWSER_UA,
    campaign_body,
    new_advertiser,
    seed_catalog,
    serving,
    wait_for,
)

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
AWS_IP = "3.80.0.1"  # inside the shipped AWS sample ranges (3.80.0.0/12)
# A declared crawler is caught by the bot-word rule or by crawlerdetect, whichever first.
CRAWLER = {"known_crawler", "non_browser_user_agent"}
HOME_IP = "81.2.69.142"


async def _bidder(client: httpx.AsyncClient, app: Exchange) -> str:
    await seed_catalog(client)
    adv = await new_advertiser(client)
    cid = (await client.post("/v1/campaigns", headers=adv, json=campaign_body())).json()["id"]
    await wait_for(lambda: serving(app) == 1)
    return str(cid)


def _search(**extra: object) -> dict[str, object]:
    return {"placement": "search_top", "page": {"type": "search", "query": "oat milk"}, **extra}


def _invalid_requests(redis_sync: redis.Redis) -> list[tuple[str, str]]:
    return [(e.of, e.reason) for _, f in redis_sync.xrange(keys.EVENTS)
            for e in decode_entry(f) if e.type == "invalid"]


async def test_general_invalid_traffic_gets_no_auction(client: httpx.AsyncClient,
                                                       exchange_app: Exchange,
                                                       redis_sync: redis.Redis) -> None:
    await _bidder(client, exchange_app)
    ok = await client.post("/v1/ads", json=_search(device={"ua": BROWSER_UA, "ip": HOME_IP}))
    assert len(ok.json()["ads"]) == 1
    cases = [
        ({"json": _search(), "headers": {"User-Agent": GOOGLEBOT}}, "crawler"),
        ({"json": _search(device={"ua": "curl/8.5.0"})}, "non_browser_user_agent"),
        ({"json": _search(device={"ua": ""})}, "empty_user_agent"),
        ({"json": _search(device={"ua": BROWSER_UA, "ip": AWS_IP})}, "data_center_ip"),
        ({"json": _search(), "headers": {"Sec-Purpose": "prefetch"}}, "prefetch"),
        ({"json": _search(device={"ua": "x" * 4000})}, "non_browser_user_agent"),
    ]
    auctions = exchange_app.runtime.metrics.ads.auctions.get("search_top", 0)
    for kwargs, reason in cases:
        r = await client.post("/v1/ads", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 200 and r.json()["ads"] == [], (reason, r.text)
    # No auction ran for any of them.
    assert exchange_app.runtime.metrics.ads.auctions.get("search_top", 0) == auctions
    await exchange_app.runtime.events.flush()
    logged = _invalid_requests(redis_sync)
    assert len(logged) == len(cases) and {of for of, _ in logged} == {"ad_request"}
    reasons = [r for _, r in logged]
    assert reasons[0] in CRAWLER
    assert reasons[1:] == [reason for _, reason in cases[1:]]
    text = (await client.get("/metrics")).text
    assert ('endcap_invalid_ad_requests_total{placement="search_top",reason="prefetch"} 1.0'
            in text)


async def test_a_flooding_shopper_is_blocked_after_one_sync(client: httpx.AsyncClient,
                                                            exchange_app: Exchange) -> None:
    await _bidder(client, exchange_app)
    flood = _search(shopper={"loyalty_id": "shp_flood"})
    for _ in range(101):  # the per-shopper limit: 100 ad requests in 10 s
        assert (await client.post("/v1/ads", json=flood)).status_code == 200
    await exchange_app.runtime.limiter.sync()
    blocked = await client.post("/v1/ads", json=flood)
    assert blocked.json()["ads"] == []
    assert exchange_app.runtime.metrics.ads.invalid_requests[("search_top", "rate_limited")] == 1
    other = await client.post("/v1/ads", json=_search(shopper={"loyalty_id": "shp_calm"}))
    assert len(other.json()["ads"]) == 1


async def test_a_bots_beacons_are_never_billed(client: httpx.AsyncClient,
                                               exchange_app: Exchange) -> None:
    cid = await _bidder(client, exchange_app)
    ad = (await client.post("/v1/ads", json=_search())).json()["ads"][0]
    bot = {"User-Agent": GOOGLEBOT}
    imp = await client.get(ad["impression_url"].removeprefix("http://shop.test"), headers=bot)
    click = await client.get(ad["click_url"].removeprefix("http://shop.test"), headers=bot)
    assert imp.status_code == 204 and click.status_code == 302
    rt = exchange_app.runtime
    numeric = int(cid.removeprefix("cmp_"))
    assert await rt.ledger.spend([numeric], rt.today()) == {numeric: (0, 0)}
    counters = await rt.ledger.counters(numeric)
    removed = {k.split(":")[1]: v for k, v in counters.items() if k.startswith("inv:")}
    assert sum(removed.values()) == 2 and set(removed) <= CRAWLER


async def test_absurd_headers_and_addresses_never_break_screening(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    await _bidder(client, exchange_app)
    giant = BROWSER_UA + " " + "x" * 10_000
    cases: list[dict[str, object]] = [
        {"json": _search(), "headers": {"User-Agent": giant}},
        {"json": _search(device={"ua": BROWSER_UA, "ip": "not-an-ip"})},
        {"json": _search(device={"ua": BROWSER_UA, "ip": "999.1.1.1"})},
        {"json": _search(device={"ua": BROWSER_UA, "ip": "2a02:c7f:1234::1"})},
        {"json": _search(device={"ua": BROWSER_UA, "ip": "::ffff:3.80.0.1"})},
        {"json": _search(), "headers": {"X-Forwarded-For": "junk, , 1.2.3.4, ::::"}},
        {"json": _search(), "headers": {"Sec-Purpose": "x" * 5000}},
    ]
    answers = []
    for kwargs in cases:
        r = await client.post("/v1/ads", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        answers.append(len(r.json()["ads"]))
    # Odd but harmless addresses still get ads; an IPv4-mapped data-centre address does not.
    assert answers[1:4] == [1, 1, 1] and answers[4] == 0
    too_long = await client.post("/v1/ads", json=_search(device={"ua": "x" * 5000}))
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "device.ua"


async def test_a_click_flood_from_one_device_is_blocked(client: httpx.AsyncClient,
                                                        exchange_app: Exchange) -> None:
    cid = await _bidder(client, exchange_app)
    rt = exchange_app.runtime
    ads = [(await client.post("/v1/ads", json=_search(shopper={"id": f"s{i}"}))).json()["ads"][0]
           for i in range(62)]
    for ad in ads:  # 62 clicks from one device in a minute: the device limit is 60
        await client.get(ad["impression_url"].removeprefix("http://shop.test"))
        await client.get(ad["click_url"].removeprefix("http://shop.test"))
    await rt.limiter.sync()
    late = (await client.post("/v1/ads", json=_search(shopper={"id": "late"}))).json()["ads"]
    assert late == []  # the blocked device gets no ads either
    numeric = int(cid.removeprefix("cmp_"))
    counters = await rt.ledger.counters(numeric)
    assert counters[f"n:click:{rt.today()}"] == 62  # counted before the block was known
    # The flooding device's later clicks are refused; another device's still count.
    other = {"User-Agent": BROWSER_UA.replace("Chrome/131", "Chrome/130")}
    ad = (await client.post("/v1/ads", json=_search(device={"ua": BROWSER_UA, "ip": HOME_IP})))
    fresh = ad.json()["ads"][0]
    for headers in ({}, other):
        await client.get(fresh["impression_url"].removeprefix("http://shop.test"),
                         headers=headers)
        await client.get(fresh["click_url"].removeprefix("http://shop.test"), headers=headers)
    counters = await rt.ledger.counters(numeric)
    assert counters[f"n:click:{rt.today()}"] == 63  # only the other device's click
    assert counters[f"inv:rate_limited:{rt.today()}"] == 2  # blocked device: imp + click


async def test_bad_input_is_a_4xx_whoever_sends_it(client: httpx.AsyncClient,
                                                  exchange_app: Exchange) -> None:
    body = {"placement": "search_top", "page": {"type": "search"}}
    r = await client.post("/v1/ads", json=body, headers={"User-Agent": GOOGLEBOT})
    assert r.status_code == 400 and r.json()["error"]["field"] == "page.query"
