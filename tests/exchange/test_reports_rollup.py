"""Reports from the rollup's aggregates, through the ASGI app and a real Redis: ads served,
beacons fired, the rollup consumer folds the events in; hour, day, SKU, search-term and
placement rows, CSV, replays counted once, tenancy."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import redis

from exchange import keys
from exchange.app import Exchange
from exchange.events import decode_entry
from exchange.tokenizer import phrase
from tests.exchange.conftest import campaign_body, new_advertiser, seed_catalog, serving, wait_for

HOST = "http://shop.test"
QUERIES = ("oat milk", "Oat Milks barista")


def _path(url: str) -> str:
    assert url.startswith(HOST), url
    return url[len(HOST):]


def _settled(app: Exchange, redis_sync: redis.Redis) -> bool:
    """The event log is written out and the group has read and acknowledged all of it."""
    if app.runtime.events.pending:
        return False
    info = redis_sync.xinfo_stream(keys.EVENTS)
    (group,) = [g for g in redis_sync.xinfo_groups(keys.EVENTS)
                if g["name"] == keys.ROLLUP_GROUP.encode()]
    return bool(group["last-delivered-id"] == info["last-generated-id"]
                and group["pending"] == 0)


async def _rolled_up(app: Exchange, redis_sync: redis.Redis) -> None:
    await app.runtime.events.flush()
    await wait_for(lambda: _settled(app, redis_sync), timeout=5.0)


async def _setup(client: httpx.AsyncClient, app: Exchange
                 ) -> tuple[str, dict[str, str], str, dict[str, str], str]:
    """Oatly bids on two SKUs in two campaigns (an auction gives a campaign one slot);
    Minor Figures (another tenant) on a third. Returns (Oatly's OAT-1 campaign, its key,
    the other tenant's campaign, their key, Oatly's OAT-3 campaign)."""
    await seed_catalog(client)
    owner = await new_advertiser(client, "Oatly")
    other = await new_advertiser(client, "Minor Figures")
    r = await client.post("/v1/campaigns", headers=owner, json=campaign_body(
        products=[{"sku": "OAT-1", "bid": "0.80"}]))
    r2 = await client.post("/v1/campaigns", headers=owner, json=campaign_body(
        name="Alpro", products=[{"sku": "OAT-3", "bid": "0.70"}]))
    rb = await client.post("/v1/campaigns", headers=other, json=campaign_body(
        products=[{"sku": "OAT-2", "bid": "0.60"}]))
    assert r.status_code == r2.status_code == rb.status_code == 201, (r.text, rb.text)
    await wait_for(lambda: serving(app) == 3)
    return r.json()["id"], owner, rb.json()["id"], other, r2.json()["id"]


async def _traffic(client: httpx.AsyncClient, *campaigns: str) -> dict[str, Any]:
    """Two searches; every ad of ``campaigns`` is seen, the first of each search clicked.
    Returns what the reports must show, counted from the answers."""
    wins: Counter[str] = Counter()
    imps: Counter[str] = Counter()
    clicks: Counter[str] = Counter()
    terms: Counter[tuple[str, str]] = Counter()
    positions: list[int] = []
    clicked_skus: set[str] = set()
    started_ms = time.time_ns() // 1_000_000
    for query in QUERIES:
        r = await client.post("/v1/ads", json={"placement": "search_top",
                                               "page": {"type": "search", "query": query}})
        assert r.status_code == 200, r.text
        mine = [ad for ad in r.json()["ads"] if ad["campaign_id"] in campaigns]
        assert mine, r.json()
        term = phrase(query)
        for ad in mine:
            wins[ad["sku"]] += 1
            terms[term, "wins"] += 1
            assert (await client.get(_path(ad["impression_url"]))).status_code == 204
            imps[ad["sku"]] += 1
            terms[term, "imps"] += 1
            positions.append(ad["slot"] + 1)
        first = mine[0]
        assert (await client.get(_path(first["click_url"]))).status_code == 302
        clicks[first["sku"]] += 1
        terms[term, "clicks"] += 1
        clicked_skus.add(first["sku"])
    return {"wins": wins, "imps": imps, "clicks": clicks, "terms": terms,
            "positions": positions, "clicked": clicked_skus, "started_ms": started_ms,
            "ended_ms": time.time_ns() // 1_000_000}


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    r = await client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_rollup_rows_by_hour_day_sku_keyword_placement_and_csv(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    cmp, owner, _, _, cmp2 = await _setup(client, exchange_app)
    seen = await _traffic(client, cmp, cmp2)
    await _rolled_up(exchange_app, redis_sync)
    # Oatly's two campaigns together (the advertiser report); each alone further down.
    base = "/v1/reports/advertiser"
    n_wins, n_imps = sum(seen["wins"].values()), sum(seen["imps"].values())
    n_clicks = sum(seen["clicks"].values())

    # Day (the default): the ledger's exact counts, plus the rollup's wins and position.
    day = await _get(client, base, owner)
    (row,) = day["rows"]
    spend = row["spend"]
    assert (row["impressions"], row["clicks"], row["wins"]) == (n_imps, n_clicks, n_wins)
    assert row["average_position"] == round(sum(seen["positions"]) / n_imps, 2)
    assert day["breakdown"] is None and float(spend) > 0

    # Hour: 24 rows per day; the traffic lands in the hour(s) it happened in (UTC here).
    hours = await _get(client, f"{base}?granularity=hour", owner)
    assert hours["granularity"] == "hour" and len(hours["rows"]) == 24
    assert [r["hour"] for r in hours["rows"]] == list(range(24))
    busy = {r["hour"] for r in hours["rows"] if r["impressions"] or r["wins"]}
    expected_hours = {datetime.fromtimestamp(ms / 1000, UTC).hour
                      for ms in (seen["started_ms"], seen["ended_ms"])}
    assert busy and busy <= expected_hours
    t = hours["totals"]
    assert (t["impressions"], t["clicks"], t["wins"], t["spend"]) == (
        n_imps, n_clicks, n_wins, spend)

    # By SKU: each SKU's own counts; the spend is the ledger's, split by what was clicked.
    by_sku = await _get(client, f"{base}?breakdown=sku", owner)
    rows = {r["key"]: r for r in by_sku["rows"]}
    assert set(rows) == set(seen["wins"]) == {"OAT-1", "OAT-3"}
    for sku, r in rows.items():
        assert (r["wins"], r["impressions"], r["clicks"]) == (
            seen["wins"][sku], seen["imps"][sku], seen["clicks"][sku])
        assert (float(r["spend"]) > 0) == (sku in seen["clicked"])
        assert r["date"] == f"{day['from']}/{day['to']}"
    assert by_sku["totals"]["spend"] == spend
    assert by_sku["totals"]["impressions"] == n_imps
    for campaign, sku in ((cmp, "OAT-1"), (cmp2, "OAT-3")):
        own = await _get(client, f"/v1/reports/campaigns/{campaign}?breakdown=sku", owner)
        assert [(r["key"], r["impressions"]) for r in own["rows"]] == [
            (sku, seen["imps"][sku])]

    # By search term: normalised as keywords are; impressions and clicks follow their win.
    by_term = await _get(client, f"{base}?breakdown=keyword", owner)
    terms = {r["key"]: r for r in by_term["rows"]}
    assert set(terms) == {phrase(q) for q in QUERIES}
    for term, r in terms.items():
        assert (r["wins"], r["impressions"], r["clicks"]) == (
            seen["terms"][term, "wins"], seen["terms"][term, "imps"],
            seen["terms"][term, "clicks"])
    assert by_term["totals"]["spend"] == spend

    by_placement = await _get(client, f"{base}?breakdown=placement", owner)
    (place,) = by_placement["rows"]
    assert (place["key"], place["impressions"], place["clicks"], place["spend"]) == (
        "search_top", n_imps, n_clicks, spend)

    # CSV: a header row, then the same rows as the JSON.
    r = await client.get(f"{base}?breakdown=sku&format=csv", headers=owner)
    assert r.headers["content-disposition"].endswith('.csv"')
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["key"], int(x["impressions"]), x["spend"]) for x in table] == [
        (x["key"], x["impressions"], x["spend"]) for x in by_sku["rows"]]
    r = await client.get(f"{base}?granularity=hour&format=csv", headers=owner)
    assert r.text.splitlines()[0].startswith("date,hour,key,wins,impressions")
    assert len(r.text.splitlines()) == 25


async def test_replayed_and_reread_events_count_once(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    cmp, owner, _, _, _ = await _setup(client, exchange_app)
    await _traffic(client, cmp)
    await _rolled_up(exchange_app, redis_sync)
    url = f"/v1/reports/campaigns/{cmp}?breakdown=sku"
    before = await _get(client, url, owner)
    hours_before = await _get(client, url.replace("breakdown=sku", "granularity=hour"), owner)
    counted = exchange_app.runtime.rollup.counted
    assert counted > 0

    # The same entries appended again (a producer retry), and the group rewound to 0 (an
    # operator replay): every event is delivered again, none is counted again.
    entries = redis_sync.xrange(keys.EVENTS)
    n_events = sum(len([e for e in decode_entry(f) if e.campaign_id]) for _, f in entries)
    for _, fields in entries:
        redis_sync.xadd(keys.EVENTS, fields)
    await _rolled_up(exchange_app, redis_sync)
    redis_sync.xgroup_setid(keys.EVENTS, keys.ROLLUP_GROUP, "0")
    await wait_for(lambda: exchange_app.runtime.rollup.duplicates >= 3 * n_events, 5.0)
    await _rolled_up(exchange_app, redis_sync)
    assert exchange_app.runtime.rollup.counted == counted
    assert await _get(client, url, owner) == before
    assert await _get(client, url.replace("breakdown=sku", "granularity=hour"),
                      owner) == hours_before


async def test_a_crashed_consumers_batch_is_claimed(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    """Entries delivered to a consumer that died before XACK are counted by another."""
    from exchange import rollup

    cmp, owner, _, _, _ = await _setup(client, exchange_app)
    await exchange_app.runtime.rollup.stop()  # this worker's consumer stops reading
    await _traffic(client, cmp)
    await exchange_app.runtime.events.flush()
    await wait_for(lambda: exchange_app.runtime.events.pending == 0)
    # A consumer reads the batch and "crashes": no scripts, no XACK.
    redis_sync.xreadgroup(keys.ROLLUP_GROUP, "dead-worker", {keys.EVENTS: ">"}, count=500)
    assert (await _get(client, f"/v1/reports/campaigns/{cmp}?granularity=hour",
                       owner))["totals"]["impressions"] == 0
    survivor = rollup.Rollup(exchange_app.runtime.client, zone_of=exchange_app.runtime.zone_of,
                             term_ttl_s=3600, claim_idle_ms=0)  # "30 s later"
    assert await survivor.claim_once() > 0
    day = await _get(client, f"/v1/reports/campaigns/{cmp}", owner)
    hours = await _get(client, f"/v1/reports/campaigns/{cmp}?granularity=hour", owner)
    assert hours["totals"]["impressions"] == day["totals"]["impressions"] > 0
    assert survivor.pending == 0


async def test_advertiser_report_sums_own_campaigns_only(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    cmp, owner, theirs, other, cmp2 = await _setup(client, exchange_app)
    second = await client.post("/v1/campaigns", headers=owner, json=campaign_body(
        name="Coffee", products=[{"sku": "COF-1", "bid": "0.50"}],
        targeting={"keywords": ["coffee"], "categories": [],
                   "segments": {"include": [], "exclude": []}, "stores": []}))
    assert second.status_code == 201, second.text
    await wait_for(lambda: serving(exchange_app) == 4)
    seen = await _traffic(client, cmp, cmp2)
    r = await client.post("/v1/ads", json={"placement": "search_top",
                                           "page": {"type": "search", "query": "coffee"}})
    coffee = [ad for ad in r.json()["ads"] if ad["sku"] == "COF-1"]
    assert coffee, r.json()
    assert (await client.get(_path(coffee[0]["impression_url"]))).status_code == 204
    await _rolled_up(exchange_app, redis_sync)

    mine = await _get(client, "/v1/reports/advertiser?breakdown=sku", owner)
    assert sorted(mine["campaign_ids"]) == sorted([cmp, cmp2, second.json()["id"]])
    skus = {r["key"]: r["impressions"] for r in mine["rows"]}
    assert skus == {**dict(seen["imps"]), "COF-1": 1}  # OAT-2 is the other tenant's
    one = await _get(client, f"/v1/reports/advertiser?campaign_ids={cmp}", owner)
    single = await _get(client, f"/v1/reports/campaigns/{cmp}", owner)
    assert one["rows"] == single["rows"] and one["campaign_ids"] == [cmp]
    total = await _get(client, "/v1/reports/advertiser", owner)
    assert total["totals"]["impressions"] == sum(seen["imps"].values()) + 1
    hourly = await _get(client, "/v1/reports/advertiser?granularity=hour&format=json", owner)
    assert hourly["totals"]["impressions"] == total["totals"]["impressions"]

    # Tenancy: another tenant's campaign anywhere is the same 404 as a missing one.
    for ids in (theirs, f"{cmp},{theirs}", "cmp_999999"):
        r = await client.get(f"/v1/reports/advertiser?campaign_ids={ids}", headers=owner)
        assert r.status_code == 404, (ids, r.text)
    assert (await client.get(f"/v1/reports/campaigns/{theirs}?breakdown=sku",
                             headers=owner)).status_code == 404
    theirs_view = await _get(client, "/v1/reports/advertiser?breakdown=sku", other)
    assert {r["key"] for r in theirs_view["rows"]} <= {"OAT-2"}


async def test_bad_report_params_name_the_field(client: httpx.AsyncClient,
                                                exchange_app: Exchange) -> None:
    cmp, owner, _, _, _ = await _setup(client, exchange_app)
    for query, field in (("granularity=week", "granularity"), ("breakdown=brand", "breakdown"),
                         ("format=xml", "format"), ("granularity=hour&breakdown=sku",
                                                    "breakdown"),
                         ("from=2026-02-30", "from"), ("to=nope", "to")):
        for path in (f"/v1/reports/campaigns/{cmp}", "/v1/reports/advertiser"):
            r = await client.get(f"{path}?{query}", headers=owner)
            assert r.status_code == 400, (path, query, r.text)
            assert r.json()["error"]["field"] == field, (path, query)
    r = await client.get("/v1/reports/advertiser?campaign_ids=42", headers=owner)
    assert r.status_code == 400 and r.json()["error"]["field"] == "campaign_ids"


async def test_impression_share_counts_eligible_auctions(client: httpx.AsyncClient,
                                                         exchange_app: Exchange) -> None:
    """A campaign that loses half its auctions (a throttle of 0.5 keeps it out of about
    half) shows about half an impression share; both counts come from the real auction."""
    await seed_catalog(client)
    owner = await new_advertiser(client)
    r = await client.post("/v1/campaigns", headers=owner, json=campaign_body())
    cid = r.json()["id"]
    await wait_for(lambda: serving(exchange_app) == 1)
    rt = exchange_app.runtime
    await rt.client.hset("pc:throttle", cid[4:], 32_768)
    await rt.pacer.read_throttles()
    body = {"placement": "search_top", "page": {"type": "search", "query": "oat milk"}}
    won = 0
    for _ in range(200):
        won += bool((await client.post("/v1/ads", json=body)).json()["ads"])
    assert await rt.flush_eligible() == 1
    assert await rt.flush_eligible() == 0  # nothing new since
    await wait_for(lambda: rt.events.pending == 0)

    async def report() -> dict[str, object]:
        got = await client.get(f"/v1/reports/campaigns/{cid}", headers=owner)
        assert got.status_code == 200, got.text
        return dict(got.json()["totals"])

    deadline = asyncio.get_running_loop().time() + 5
    totals = await report()
    while totals["wins"] != won:  # the rollup trails the event log a little
        assert asyncio.get_running_loop().time() < deadline, totals
        await asyncio.sleep(0.05)
        totals = await report()
    assert totals["eligible"] == 200
    assert totals["impression_share"] == round(won / 200, 4)
    assert 60 <= won <= 140  # binomial(200, 0.5)
