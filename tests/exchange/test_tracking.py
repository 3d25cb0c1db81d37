"""Impression and click beacons through the ASGI app: verify, record and bill exactly once."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import httpx
import redis

from auction.selection import CAMP_GATE
from exchange import keys
from exchange.app import Exchange
from exchange.events import Event, decode_entry, decoder
from fraud.signature import TokenSigner
from tests.exchange.conftest import (
    campaign_body,
    new_advertiser,
    seed_catalog,
    serving,
    wait_for,
)

HOST = "http://shop.test"
NO_LIMIT = 0


def _search(query: str = "oat milk", **extra: object) -> dict[str, object]:
    return {"placement": "search_top", "page": {"type": "search", "query": query}, **extra}


def _path(url: str) -> str:
    assert url.startswith(HOST), url
    return url[len(HOST):]


def _cid(campaign_id: str) -> int:
    return int(campaign_id[4:])


async def _two_bidders(client: httpx.AsyncClient, app: Exchange, *, daily: str = "50.00"
                       ) -> tuple[str, str, dict[str, str]]:
    """Oatly bids 0.80 on OAT-1 (budget ``daily``), Minor Figures 0.60 on OAT-2: Oatly's
    clearing price is 0.61 (runner-up's bid plus the 0.01 increment)."""
    await seed_catalog(client)
    a = await new_advertiser(client, "Oatly")
    b = await new_advertiser(client, "Minor Figures")
    ra = await client.post("/v1/campaigns", headers=a, json=campaign_body(
        budget={"daily": daily, "total": "1000.00"},
        products=[{"sku": "OAT-1", "bid": "0.80"}]))
    rb = await client.post("/v1/campaigns", headers=b, json=campaign_body(
        products=[{"sku": "OAT-2", "bid": "0.60"}]))
    assert ra.status_code == 201 and rb.status_code == 201, (ra.text, rb.text)
    await wait_for(lambda: serving(app) == 2)
    return ra.json()["id"], rb.json()["id"], a


async def _seen(client: httpx.AsyncClient, ad: dict[str, object]) -> None:
    """Fire the ad's impression beacon, as the page does before anyone can click it."""
    r = await client.get(_path(str(ad["impression_url"])))
    assert r.status_code == 204


async def _first_ad(client: httpx.AsyncClient, campaign_id: str) -> dict[str, object]:
    r = await client.post("/v1/ads", json=_search())
    assert r.status_code == 200, r.text
    ads = [ad for ad in r.json()["ads"] if ad["campaign_id"] == campaign_id]
    assert ads, r.json()
    return ads[0]


def _entries(redis_sync: redis.Redis) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in redis_sync.xrange(keys.EVENTS)]


def _billed(redis_sync: redis.Redis, kind: str) -> list[dict[bytes, bytes]]:
    return [f for f in _entries(redis_sync) if f.get(b"k") == kind.encode()]


def _events(redis_sync: redis.Redis) -> list[Event]:
    return [e for f in _entries(redis_sync) for e in decode_entry(f)]


async def _invalid_logged(app: Exchange, redis_sync: redis.Redis, n: int) -> list[Event]:
    """The invalid events in the stream once at least ``n`` are there.

    ``EventLog.flush()`` alone is not a barrier: it returns at once while the background
    writer has a popped batch in flight, so wait for the batch to land as well.
    """
    await app.runtime.events.flush()
    await wait_for(lambda: len(_invalid(redis_sync)) >= n and app.runtime.events.pending == 0)
    return _invalid(redis_sync)


def _invalid(redis_sync: redis.Redis) -> list[Event]:
    return [e for e in _events(redis_sync) if e.type == "invalid"]


def _stream_charges(redis_sync: redis.Redis, day: str) -> dict[int, int]:
    """Sum of ``c`` per campaign over the day's billed stream entries (a reconcile by hand)."""
    out: dict[int, int] = {}
    for f in _entries(redis_sync):
        if b"k" in f and f[b"d"] == day.encode():
            out[int(f[b"cid"])] = out.get(int(f[b"cid"]), 0) + int(f[b"c"])
    return out


async def _spend(app: Exchange, campaign_id: str) -> tuple[int, int]:
    rt = app.runtime
    return (await rt.ledger.spend([_cid(campaign_id)], rt.today()))[_cid(campaign_id)]


async def test_impression_is_recorded_once_and_free(client: httpx.AsyncClient,
                                                    exchange_app: Exchange,
                                                    redis_sync: redis.Redis) -> None:
    a, _, _ = await _two_bidders(client, exchange_app)
    ad = await _first_ad(client, a)
    url = _path(str(ad["impression_url"]))
    for _ in range(2):
        r = await client.get(url)
        assert r.status_code == 204, r.text
        assert r.headers["cache-control"] == "no-store"
        assert r.content == b""
    imps = _billed(redis_sync, "impression")
    assert len(imps) == 1
    assert imps[0][b"c"] == b"0" and imps[0][b"cid"] == str(_cid(a)).encode()
    event = decoder.decode(imps[0][b"e"])
    assert (event.type, event.campaign_id, event.sku, event.placement) == (
        "impression", _cid(a), "OAT-1", "search_top")
    assert await _spend(exchange_app, a) == (0, 0)
    replays = await _invalid_logged(exchange_app, redis_sync, 1)
    assert [(e.reason, e.of, e.campaign_id) for e in replays] == [
        ("replayed", "impression", _cid(a))]


async def test_click_charges_the_token_price_once(client: httpx.AsyncClient,
                                                  exchange_app: Exchange,
                                                  redis_sync: redis.Redis) -> None:
    a, _, owner = await _two_bidders(client, exchange_app)
    ad = await _first_ad(client, a)
    url = _path(str(ad["click_url"]))
    rt = exchange_app.runtime
    price = rt.signer.verify(url.rsplit("/", 1)[1], int(time.time())).price_micros
    assert price == 610_000
    await _seen(client, ad)
    for _ in range(2):
        r = await client.get(url)
        assert r.status_code == 302, r.text
        assert r.headers["location"] == "https://shop.test/p/OAT-1"
        assert r.headers["cache-control"] == "no-store"
    assert await _spend(exchange_app, a) == (price, price)
    clicks = _billed(redis_sync, "click")
    assert len(clicks) == 1
    assert int(clicks[0][b"c"]) == price and int(clicks[0][b"p"]) == price
    assert clicks[0][b"d"] == rt.today().encode()
    assert decoder.decode(clicks[0][b"e"]).price_micros == price
    assert _stream_charges(redis_sync, rt.today()) == {_cid(a): price}
    await _invalid_logged(exchange_app, redis_sync, 1)  # wins and a replay share the stream
    assert await rt.ledger.reconcile(rt.today()) == []
    shown = (await client.get(f"/v1/campaigns/{a}", headers=owner)).json()
    assert shown["spend"] == {"today": "0.61", "total": "0.61"}


async def test_click_on_product_without_landing_url_goes_to_fallback(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    await seed_catalog(client)
    adv = await new_advertiser(client, "Alpro")
    cid = (await client.post("/v1/campaigns", headers=adv, json=campaign_body(
        products=[{"sku": "OAT-3", "bid": "0.50"}]))).json()["id"]
    await wait_for(lambda: serving(exchange_app) == 1)
    ad = await _first_ad(client, cid)
    await _seen(client, ad)
    r = await client.get(_path(str(ad["click_url"])))
    assert r.status_code == 302 and r.headers["location"] == "/"
    # Still a real click: billed at the placement floor (nobody below it).
    assert await _spend(exchange_app, cid) == (100_000, 100_000)


def _forged(signer_key_id: bytes = b"k1") -> str:
    """Structurally perfect (version, key id, lengths, canonical text) but a guessed MAC."""
    raw = bytes((1, len(signer_key_id))) + signer_key_id + os.urandom(40 + 16)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tamper(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("B" if token[i] == "A" else "A") + token[i + 1:]


async def test_bad_tokens_are_never_billed(client: httpx.AsyncClient, exchange_app: Exchange,
                                           redis_sync: redis.Redis) -> None:
    a, _, _ = await _two_bidders(client, exchange_app)
    rt = exchange_app.runtime
    ad = await _first_ad(client, a)
    real = str(ad["click_url"]).rsplit("/", 1)[1]
    good = rt.signer.verify(real, int(time.time()))
    now = int(time.time())
    other_secret = TokenSigner({"k1": "another-secret-not-ours-0123456789"}, "k1", 3600)
    other_key = TokenSigner({"k9": "another-secret-not-ours-0123456789"}, "k9", 3600)
    stale = rt.signer.new_token(campaign_id=_cid(a), price_micros=610_000, now_s=now - 7200,
                                product_id=good.product_id)
    assert stale.expires_s < now
    cases = [
        ("garbage-not-a-token", "malformed"),
        ("A" * 80, "malformed"),
        (_forged(), "bad_signature"),
        (_tamper(real), "bad_signature"),
        (other_secret.sign(good), "bad_signature"),
        (other_key.sign(good), "unknown_key"),
        (rt.signer.sign(stale), "expired"),
    ]
    for token, _ in cases:
        r = await client.get(f"/t/i/{token}")
        assert r.status_code == 204 and r.headers["cache-control"] == "no-store", token
        r = await client.get(f"/t/c/{token}")
        assert r.status_code == 302 and r.headers["location"] == "/", token
    assert await _spend(exchange_app, a) == (0, 0)
    assert _billed(redis_sync, "click") == [] and _billed(redis_sync, "impression") == []
    invalid = await _invalid_logged(exchange_app, redis_sync, 2 * len(cases))
    got = sorted((e.of, e.reason) for e in invalid)
    want = sorted((kind, reason) for _, reason in cases for kind in ("impression", "click"))
    assert got == want
    assert all(e.price_micros == 0 and e.campaign_id == 0 for e in invalid)
    assert len({e.id for e in invalid}) == len(invalid)
    # The real token still works afterwards: probing did not burn it.
    await _seen(client, ad)
    r = await client.get(_path(str(ad["click_url"])))
    assert r.status_code == 302 and r.headers["location"] == "https://shop.test/p/OAT-1"
    assert await _spend(exchange_app, a) == (610_000, 610_000)


async def test_budget_exhaustion_caps_and_stops_serving(client: httpx.AsyncClient,
                                                        exchange_app: Exchange,
                                                        redis_sync: redis.Redis) -> None:
    a, b, owner = await _two_bidders(client, exchange_app, daily="1.00")
    rt = exchange_app.runtime
    first = await _first_ad(client, a)
    second = await _first_ad(client, a)
    assert first["click_url"] != second["click_url"]
    await _seen(client, first)
    await _seen(client, second)
    r1 = await client.get(_path(str(first["click_url"])))
    assert r1.status_code == 302
    assert await _spend(exchange_app, a) == (610_000, 610_000)
    slot = rt.index.campaign_slot[_cid(a)]
    assert rt.index.campaigns[slot, CAMP_GATE] > 0
    r2 = await client.get(_path(str(second["click_url"])))
    assert r2.status_code == 302 and r2.headers["location"] == "https://shop.test/p/OAT-1"
    assert await _spend(exchange_app, a) == (1_000_000, 1_000_000)
    charged = sorted(int(f[b"c"]) for f in _billed(redis_sync, "click"))
    assert charged == [390_000, 610_000]  # the second click is capped at the remainder
    await wait_for(lambda: rt.index.campaigns[slot, CAMP_GATE] == 0, timeout=1.0)
    ads = (await client.post("/v1/ads", json=_search())).json()["ads"]
    assert [ad["campaign_id"] for ad in ads] == [b]
    shown = (await client.get(f"/v1/campaigns/{a}", headers=owner)).json()
    assert shown["spend"]["today"] == "1.00"
    # A click on a token whose impression never happened is invalid: no money either.
    third_token = rt.signer.sign(rt.signer.new_token(
        campaign_id=_cid(a), price_micros=610_000, now_s=int(time.time()),
        product_id=rt.signer.verify(_path(str(first["click_url"])).rsplit("/", 1)[1],
                                    int(time.time())).product_id))
    assert (await client.get(f"/t/c/{third_token}")).status_code == 302
    assert await _spend(exchange_app, a) == (1_000_000, 1_000_000)
    assert _stream_charges(redis_sync, rt.today()) == {_cid(a): 1_000_000}
    assert await rt.ledger.reconcile(rt.today()) == []


async def test_concurrent_clicks_charge_once(client: httpx.AsyncClient, exchange_app: Exchange,
                                             redis_sync: redis.Redis) -> None:
    a, _, _ = await _two_bidders(client, exchange_app)
    ad = await _first_ad(client, a)
    url = _path(str(ad["click_url"]))
    await _seen(client, ad)
    replies = await asyncio.gather(*(client.get(url) for _ in range(50)))
    assert {r.status_code for r in replies} == {302}
    assert {r.headers["location"] for r in replies} == {"https://shop.test/p/OAT-1"}
    assert await _spend(exchange_app, a) == (610_000, 610_000)
    assert len(_billed(redis_sync, "click")) == 1
    replays = await _invalid_logged(exchange_app, redis_sync, 49)
    assert len(replays) == 49 and {e.reason for e in replays} == {"replayed"}


async def test_ledger_reconcile_matches_the_event_log(client: httpx.AsyncClient,
                                                      exchange_app: Exchange,
                                                      redis_sync: redis.Redis) -> None:
    a, _, _ = await _two_bidders(client, exchange_app)
    rt = exchange_app.runtime
    ad = await _first_ad(client, a)  # logs two wins in ex:events
    await _seen(client, ad)
    await client.get(_path(str(ad["click_url"])))
    await client.get(_path(str(ad["click_url"])))  # a replay: an invalid event
    await _invalid_logged(exchange_app, redis_sync, 1)
    assert await _spend(exchange_app, a) == (610_000, 610_000)
    assert await rt.ledger.reconcile(rt.today()) == []


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        body, value = line.rsplit(" ", 1)
        got = dict(p.split("=", 1) for p in body[len(name) + 1:-1].split(","))
        if {k: v.strip('"') for k, v in got.items()} == labels:
            return float(value)
    return 0.0


async def test_metrics_count_beacons_and_invalid_reasons(client: httpx.AsyncClient,
                                                         exchange_app: Exchange) -> None:
    a, _, _ = await _two_bidders(client, exchange_app)
    ad = await _first_ad(client, a)
    await client.get(_path(str(ad["impression_url"])))
    await client.get(_path(str(ad["impression_url"])))
    await client.get(_path(str(ad["click_url"])))
    await client.get("/t/c/garbage-not-a-token")
    await client.get(f"/t/i/{_tamper(str(ad['impression_url']).rsplit('/', 1)[1])}")
    r = await client.get("/metrics")
    assert r.status_code == 200
    text = r.text
    beacons, invalid = "endcap_beacons_total", "endcap_invalid_traffic_total"
    assert _sample(text, beacons, type="impression", result="recorded") == 1
    assert _sample(text, beacons, type="impression", result="invalid") == 2
    assert _sample(text, beacons, type="click", result="recorded") == 1
    assert _sample(text, beacons, type="click", result="invalid") == 1
    assert _sample(text, invalid, type="impression", reason="replayed") == 1
    assert _sample(text, invalid, type="impression", reason="bad_signature") == 1
    assert _sample(text, invalid, type="click", reason="malformed") == 1
    assert _sample(text, "endcap_spend_micros_total", kind="cpc") == 610_000


async def test_impossible_click_sequences_are_invalid(client: httpx.AsyncClient,
                                                      exchange_app: Exchange,
                                                      redis_sync: redis.Redis) -> None:
    a, _, _ = await _two_bidders(client, exchange_app)
    rt = exchange_app.runtime
    orphan = await _first_ad(client, a)
    r = await client.get(_path(str(orphan["click_url"])))  # no impression was ever fired
    assert r.status_code == 302 and r.headers["location"] == "https://shop.test/p/OAT-1"
    rt.tracker._min_click_delay_ms = 60_000  # a human needs time to see and click
    fast = await _first_ad(client, a)
    await _seen(client, fast)
    r = await client.get(_path(str(fast["click_url"])))
    assert r.status_code == 302
    assert await _spend(exchange_app, a) == (0, 0)
    assert _billed(redis_sync, "click") == []
    invalid = await _invalid_logged(exchange_app, redis_sync, 2)
    assert sorted((e.of, e.reason) for e in invalid) == [
        ("click", "click_too_fast"), ("click", "click_without_impression")]
    counters = await rt.ledger.counters(_cid(a))
    day = rt.today()
    assert counters[f"inv:click_without_impression:{day}"] == 1
    assert counters[f"inv:click_too_fast:{day}"] == 1


async def test_campaign_report_counts_billed_and_removed(client: httpx.AsyncClient,
                                                         exchange_app: Exchange,
                                                         redis_sync: redis.Redis) -> None:
    a, _, owner = await _two_bidders(client, exchange_app)
    ad = await _first_ad(client, a)
    await _seen(client, ad)
    await _seen(client, ad)  # replayed: removed
    await client.get(_path(str(ad["click_url"])))
    orphan = await _first_ad(client, a)
    await client.get(_path(str(orphan["click_url"])))  # no impression: removed
    r = await client.get(f"/v1/reports/campaigns/{a}", headers=owner)
    assert r.status_code == 200, r.text
    report = r.json()
    today = report["to"]
    assert report["from"] == today and report["granularity"] == "day"
    (row,) = report["rows"]
    assert (row["impressions"], row["clicks"], row["spend"], row["cpc"]) == (
        1, 1, "0.61", "0.61")
    assert row["ctr"] == 1.0
    assert row["invalid_by_reason"] == {"click_without_impression": 1, "replayed": 1}
    assert row["invalid_removed"] == 2 and report["totals"]["invalid_removed"] == 2
    assert row["attributed_sales"] is None
    stranger = await new_advertiser(client, "stranger")
    assert (await client.get(f"/v1/reports/campaigns/{a}", headers=stranger)).status_code == 404
    bad = await client.get(f"/v1/reports/campaigns/{a}?from=yesterday", headers=owner)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "from"
    week = (await client.get(f"/v1/reports/campaigns/{a}?from=2026-01-01&to=2026-01-07",
                             headers=owner)).json()
    assert len(week["rows"]) == 7 and week["totals"]["impressions"] == 0


async def test_beacons_still_answer_when_redis_is_down(client: httpx.AsyncClient,
                                                       exchange_app: Exchange) -> None:
    import redis.asyncio as aioredis

    from exchange.embedded import free_port
    from pacing.ledger import Ledger

    a, _, _ = await _two_bidders(client, exchange_app)
    ad = await _first_ad(client, a)
    tracker = exchange_app.runtime.tracker
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    dead = aioredis.Redis(port=free_port(), socket_connect_timeout=0.2,
                          retry=Retry(NoBackoff(), 0))
    tracker._ledger = Ledger(dead, events_key=keys.EVENTS, events_maxlen=1000)
    try:
        imp = await client.get(_path(str(ad["impression_url"])))
        click = await client.get(_path(str(ad["click_url"])))
    finally:
        await dead.aclose()
    assert imp.status_code == 204
    # The shopper still lands on the product; nothing was billed.
    assert click.status_code == 302 and click.headers["location"] == "https://shop.test/p/OAT-1"
    assert await _spend(exchange_app, a) == (0, 0)
    metrics = (await client.get("/metrics")).text
    assert _sample(metrics, "endcap_beacons_total", type="click", result="unrecorded") == 1.0
