"""Campaign writes an advertiser's tools can rely on: lifecycle, ETag / If-Match,
Idempotency-Key on create, the audit log, and failed writes that change nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
import redis

from auction.selection import CAMP_LIVE
from exchange import campaigns, keys
from exchange.app import Exchange
from exchange.bidlimits import load_bid_limits
from exchange.settings import SettingsError
from tests.exchange.conftest import OP, campaign_body, new_advertiser, seed_catalog, wait_for

ROOT = Path(__file__).resolve().parents[2]


async def _setup(client: httpx.AsyncClient, **overrides: object
                 ) -> tuple[str, dict[str, str], str]:
    await seed_catalog(client)
    owner = await new_advertiser(client)
    r = await client.post("/v1/campaigns", headers=owner, json=campaign_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()["id"], owner, r.headers["etag"]


async def test_lifecycle_allows_only_legal_transitions(client: httpx.AsyncClient) -> None:
    cid, owner, _ = await _setup(client, status="draft")
    path = f"/v1/campaigns/{cid}"
    for status, code in (("ended", 409), ("active", 200), ("draft", 409), ("paused", 200),
                         ("active", 200), ("ended", 200), ("active", 409), ("paused", 409),
                         ("archived", 200), ("ended", 409), ("draft", 409)):
        r = await client.patch(path, headers=owner, json={"status": status})
        assert r.status_code == code, (status, r.text)
        if code == 409:
            assert r.json()["error"] == {
                "code": "invalid_transition", "field": "status",
                "message": r.json()["error"]["message"]}
    assert (await client.get(path, headers=owner)).json()["status"] == "archived"
    for start in ("ended", "archived"):
        r = await client.post("/v1/campaigns", headers=owner,
                              json=campaign_body(status=start))
        assert r.status_code == 409 and r.json()["error"]["field"] == "status"


async def test_if_match_stops_a_stale_editor(client: httpx.AsyncClient) -> None:
    cid, owner, created_tag = await _setup(client)
    path = f"/v1/campaigns/{cid}"
    tag = (await client.get(path, headers=owner)).headers["etag"]
    assert tag == created_tag
    first = await client.patch(path, headers={**owner, "If-Match": tag},
                               json={"name": "Editor A"})
    assert first.status_code == 200 and first.headers["etag"] != tag
    stale = await client.patch(path, headers={**owner, "If-Match": tag},
                               json={"name": "Editor B"})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert (await client.get(path, headers=owner)).json()["name"] == "Editor A"
    fresh = await client.patch(path, headers={**owner, "If-Match": first.headers["etag"]},
                               json={"name": "Editor B"})
    assert fresh.status_code == 200
    anyway = await client.patch(path, headers={**owner, "If-Match": "*"},
                                json={"pacing": "asap"})
    assert anyway.status_code == 200 and anyway.json()["name"] == "Editor B"


async def test_concurrent_patches_without_if_match_lose_nothing(
        client: httpx.AsyncClient) -> None:
    cid, owner, _ = await _setup(client)
    path = f"/v1/campaigns/{cid}"
    answers = await asyncio.gather(
        client.patch(path, headers=owner, json={"name": "Renamed"}),
        client.patch(path, headers=owner, json={"pacing": "asap"}),
        client.patch(path, headers=owner, json={"budget": {"daily": "75.00"}}),
    )
    assert [a.status_code for a in answers] == [200, 200, 200]
    shown = (await client.get(path, headers=owner)).json()
    assert (shown["name"], shown["pacing"], shown["budget"]["daily"]) == (
        "Renamed", "asap", "75.00")
    assert shown["version"] == 4


async def test_a_retried_create_returns_the_first_answer_and_creates_once(
        client: httpx.AsyncClient, redis_sync: redis.Redis) -> None:
    await seed_catalog(client)
    owner = await new_advertiser(client)
    headers = {**owner, "Idempotency-Key": "create-oat-milk-1"}
    first = await client.post("/v1/campaigns", headers=headers, json=campaign_body())
    again = await client.post("/v1/campaigns", headers=headers, json=campaign_body())
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert redis_sync.scard(keys.CAMPAIGN_IDS) == 1
    other_body = await client.post("/v1/campaigns", headers=headers,
                                   json=campaign_body(name="Another"))
    assert other_body.status_code == 422
    assert other_body.json()["error"]["code"] == "idempotency_key_reused"
    # Another advertiser's identical key is another key: it creates its own campaign.
    stranger = await new_advertiser(client, "Alpro")
    theirs = await client.post("/v1/campaigns",
                               headers={**stranger, "Idempotency-Key": "create-oat-milk-1"},
                               json=campaign_body())
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert redis_sync.scard(keys.CAMPAIGN_IDS) == 2


async def test_a_failed_create_releases_its_idempotency_key(client: httpx.AsyncClient,
                                                            redis_sync: redis.Redis) -> None:
    await seed_catalog(client)
    owner = await new_advertiser(client)
    headers = {**owner, "Idempotency-Key": "k-2"}
    bad = await client.post("/v1/campaigns", headers=headers,
                            json=campaign_body(products=[{"sku": "NOPE", "bid": "1.00"}]))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "products[0].sku"
    assert redis_sync.scard(keys.CAMPAIGN_IDS) == 0
    good = await client.post("/v1/campaigns", headers=headers, json=campaign_body())
    assert good.status_code == 201
    for key in ("", "has space", "x" * 256):
        r = await client.post("/v1/campaigns", headers={**owner, "Idempotency-Key": key},
                              json=campaign_body())
        assert r.status_code == 400 and r.json()["error"]["field"] == "Idempotency-Key"


async def test_the_audit_log_says_who_changed_what(client: httpx.AsyncClient) -> None:
    cid, owner, _ = await _setup(client)
    await client.patch(f"/v1/campaigns/{cid}", headers=owner,
                       json={"budget": {"daily": "80.00"}})
    r = await client.get(f"/v1/campaigns/{cid}/audit", headers=owner)
    assert r.status_code == 200
    update, create = r.json()["items"]
    assert (create["action"], create["version"], create.get("before")) == ("create", 1, None)
    assert update["action"] == "update" and update["version"] == 2
    assert update["who"] == create["who"] and update["who"].startswith("adv_")
    assert update["changed"] == ["budget"]
    assert update["before"]["budget"]["daily"] == "50.00"
    assert update["after"]["budget"]["daily"] == "80.00"
    stranger = await new_advertiser(client, "other")
    assert (await client.get(f"/v1/campaigns/{cid}/audit", headers=stranger)).status_code == 404


async def test_a_rejected_patch_leaves_the_campaign_exactly_as_it_was(
        client: httpx.AsyncClient, redis_sync: redis.Redis) -> None:
    cid, owner, _ = await _setup(client)
    stored = redis_sync.get(keys.campaign(int(cid[4:])))
    for bad in ({"products": [{"sku": "OAT-1", "bid": "1.00"}, {"sku": "NOPE", "bid": "1"}]},
                {"budget": {"daily": "-1"}}, {"status": "draft"},
                {"schedule": {"start": "2027-01-02T00:00:00Z",
                              "end": "2027-01-01T00:00:00Z"}}):
        r = await client.patch(f"/v1/campaigns/{cid}", headers=owner, json=bad)
        assert 400 <= r.status_code < 500, (bad, r.text)
    assert redis_sync.get(keys.campaign(int(cid[4:]))) == stored
    audit = (await client.get(f"/v1/campaigns/{cid}/audit", headers=owner)).json()["items"]
    assert [e["action"] for e in audit] == ["create"]


async def _catalog(client: httpx.AsyncClient, n: int) -> None:
    rows = [{"sku": f"B-{i}", "title": f"Bulk oat drink {i}", "brand": "Bulk",
             "category": "Dairy & Eggs > Milk > Oat Milk", "price": "1.99"} for i in range(n)]
    for start in range(0, n, 5_000):
        r = await client.put("/v1/catalog/products", headers=OP, json=rows[start:start + 5_000])
        assert r.status_code == 200, r.text


async def test_bulk_bids_apply_all_or_nothing_and_reach_the_auction(
        client: httpx.AsyncClient, exchange_app: Exchange, redis_sync: redis.Redis) -> None:
    cid, owner, _ = await _setup(client)
    await _catalog(client, 10_000)
    path = f"/v1/campaigns/{cid}/bids"
    rows = [{"sku": f"B-{i}", "bid": "0.50"} for i in range(9_999)]
    r = await client.put(path, headers=owner, json={"upsert": [
        *rows, {"sku": "OAT-1", "bid": "0.90"}]})
    assert r.status_code == 200, r.text
    assert r.json() | {"version": 0} == {
        "campaign_id": cid, "version": 0, "added": 9_999, "updated": 1, "unchanged": 0,
        "removed": 0, "products": 10_000}
    index = exchange_app.runtime.index
    await wait_for(lambda: "B-9998" in index.sku_to_pid and len(
        index._campaign_rows[index.campaign_slot[int(cid[4:])]]) == 10_000, timeout=5)
    stored = redis_sync.get(keys.campaign(int(cid[4:])))
    # One bad row among many: nothing changes, and every bad row is named.
    bad = [{"sku": "B-1", "bid": "0.60"}, {"sku": "NOPE", "bid": "0.60"},
           {"sku": "B-2", "bid": "-1"}, {"sku": "B-1", "bid": "0.70"}]
    r = await client.put(path, headers=owner, json={"upsert": bad, "remove": ["B-3", "B-3"]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_rows", "upsert[1].sku")
    assert [(d["field"], d["code"]) for d in error["details"]] == [
        ("upsert[1].sku", "unknown_sku"), ("upsert[2].bid", "invalid_money"),
        ("upsert[3].sku", "duplicate_sku"), ("remove[1]", "duplicate_sku")]
    assert redis_sync.get(keys.campaign(int(cid[4:]))) == stored
    too_many = await client.put(path, headers=owner, json={"upsert": [
        {"sku": "OAT-2", "bid": "0.10"}]})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["details"][0]["code"] == "too_many_products"
    r = await client.put(path, headers=owner, json={"remove": [f"B-{i}" for i in range(5)]})
    assert r.json()["removed"] == 5 and r.json()["products"] == 9_995
    stranger = await new_advertiser(client, "other")
    assert (await client.put(path, headers=stranger, json={"remove": []})).status_code == 404
    over = await client.put(path, headers=owner, json={"upsert": [
        {"sku": f"B-{i}", "bid": "0.5"} for i in range(10_001)]})
    assert over.status_code == 400 and over.json()["error"]["field"] == "upsert"


async def test_dayparting_switches_the_campaign_by_local_hour(
        client: httpx.AsyncClient, exchange_app: Exchange) -> None:
    zone = "Asia/Tokyo"
    now = datetime.now(ZoneInfo(zone))
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.weekday()]
    other_hours = [h for h in range(24) if h != now.hour]
    cid, owner, _ = await _setup(client, schedule={"time_zone": zone, "dayparts": [
        {"weekdays": [weekday], "hours": other_hours}]})
    index = exchange_app.runtime.index
    await wait_for(lambda: int(cid[4:]) in index.campaign_slot)
    slot = index.campaign_slot[int(cid[4:])]
    assert index.campaigns[slot, CAMP_LIVE] == 0  # this hour is off
    shown = (await client.get(f"/v1/campaigns/{cid}", headers=owner)).json()["schedule"]
    assert shown["dayparts"] == [{"weekdays": [weekday], "hours": other_hours}]
    r = await client.patch(f"/v1/campaigns/{cid}", headers=owner, json={"schedule": {
        "time_zone": zone, "dayparts": [{"weekdays": [weekday], "hours": [now.hour]}]}})
    assert r.status_code == 200, r.text
    await wait_for(lambda: index.campaigns[slot, CAMP_LIVE] == 1)
    for bad, field in ((25, "schedule.dayparts[0].hours[0]"), (None, None)):
        if bad is None:
            body = {"dayparts": [{"weekdays": [], "hours": [1]}]}
            field = "schedule.dayparts[0].weekdays"
        else:
            body = {"dayparts": [{"hours": [bad]}]}
        r = await client.patch(f"/v1/campaigns/{cid}", headers=owner, json={"schedule": body})
        assert r.status_code == 400 and r.json()["error"]["field"] == field, r.text


def test_in_daypart_uses_the_campaign_zone() -> None:
    body = campaigns.CampaignIn(name="x", budget=campaigns.Budget(daily="1.00"),
                                schedule=campaigns.Schedule(dayparts=[campaigns.Daypart(
                                    weekdays=["mon"], hours=[9])]))
    record = campaigns.build_record(body, campaign_id=1, advertiser_id=1, pids={},
                                    created_ms=0, version=1)
    monday_9_tokyo = int(datetime(2026, 11, 23, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
                         .timestamp() * 1000)
    assert campaigns.in_daypart(record, ZoneInfo("Asia/Tokyo"), monday_9_tokyo)
    assert not campaigns.in_daypart(record, ZoneInfo("UTC"), monday_9_tokyo)  # 00:30 UTC
    assert not campaigns.in_daypart(record, ZoneInfo("Asia/Tokyo"), monday_9_tokyo + 3_600_000)
    everything = campaigns.build_record(
        msgspec.structs.replace(body, schedule=campaigns.Schedule(dayparts=[
            campaigns.Daypart(hours=list(range(24)))])),
        campaign_id=1, advertiser_id=1, pids={}, created_ms=0, version=1)
    assert everything.dayparts == []  # every hour of every day: no dayparting at all


LIMITS = """
[categories."Dairy & Eggs"]
min_bid = "0.30"
max_bid = "2.00"

[categories."Dairy & Eggs > Milk > Oat Milk"]
min_bid = "0.40"
"""


async def test_bids_respect_the_retailers_limits_and_default_bid(
        client: httpx.AsyncClient, exchange_app: Exchange, tmp_path: Path) -> None:
    (tmp_path / "limits.toml").write_text(LIMITS)
    exchange_app.runtime.bid_limits = load_bid_limits(tmp_path / "limits.toml")
    await seed_catalog(client)
    owner = await new_advertiser(client)
    low = await client.post("/v1/campaigns", headers=owner, json=campaign_body(
        products=[{"sku": "OAT-1", "bid": "0.80"}, {"sku": "OAT-2", "bid": "0.35"}]))
    assert low.status_code == 400
    assert (low.json()["error"]["field"], low.json()["error"]["code"]) == (
        "products[1].bid", "bid_below_floor")  # the leaf's 0.40 beats the department's
    high = await client.post("/v1/campaigns", headers=owner, json=campaign_body(
        products=[{"sku": "OAT-1", "bid": "2.50"}]))
    assert high.json()["error"]["code"] == "bid_above_ceiling"
    r = await client.post("/v1/campaigns", headers=owner, json=campaign_body(
        default_bid="0.50", products=[{"sku": "OAT-1"}, {"sku": "OAT-2", "bid": "0.90"}]))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["products"] == [{"sku": "OAT-1"}, {"sku": "OAT-2", "bid": "0.90"}]
    # The default moves the SKUs that follow it, not those with their own bid.
    r = await client.patch(f"/v1/campaigns/{cid}", headers=owner, json={"default_bid": "0.60"})
    assert r.status_code == 200, r.text
    record = campaigns.decode_record(
        await exchange_app.runtime.client.get(keys.campaign(int(cid[4:]))))
    assert [(b.sku, b.bid_micros) for b in record.bids] == [("OAT-1", 600_000),
                                                            ("OAT-2", 900_000)]
    # Dropping the default while a SKU relies on it names that SKU.
    r = await client.patch(f"/v1/campaigns/{cid}", headers=owner, json={"default_bid": None})
    assert r.status_code == 400 and r.json()["error"]["field"] == "products[0].bid"
    bulk = await client.put(f"/v1/campaigns/{cid}/bids", headers=owner, json={"upsert": [
        {"sku": "OAT-3"}, {"sku": "OAT-1", "bid": "0.10"}]})
    assert bulk.status_code == 400
    assert [(d["field"], d["code"]) for d in bulk.json()["error"]["details"]] == [
        ("upsert[1].bid", "bid_below_floor")]
    bulk = await client.put(f"/v1/campaigns/{cid}/bids", headers=owner,
                            json={"upsert": [{"sku": "OAT-3"}]})
    assert bulk.status_code == 200 and bulk.json()["added"] == 1


def test_a_bad_bid_limits_file_names_the_problem(tmp_path: Path) -> None:
    for text, needle in (('[categories."A"]\nmin_bid = "2"\nmax_bid = "1"\n', "min <= max"),
                         ('[categories."A"]\nmin_bid = "abc"\n', "'A'"),
                         ('[categories."A"]\nfloor = "1"\n', "floor"),
                         ('[categories." > "]\nmin_bid = "1"\n', "empty category")):
        (tmp_path / "l.toml").write_text(text)
        with pytest.raises(SettingsError, match=needle):
            load_bid_limits(tmp_path / "l.toml")
    assert load_bid_limits(ROOT / "config" / "bid_limits.toml").for_category(
        "Electronics > TV") == (150_000, 25_000_000)


async def test_every_bad_field_is_listed_in_one_answer(
        client: httpx.AsyncClient, redis_sync: redis.Redis) -> None:
    await seed_catalog(client)
    adv = await new_advertiser(client)
    body = campaign_body(
        budget={"daily": "0", "total": "5.00"},
        products=[{"sku": "OAT-1", "bid": "abc"}, {"sku": "NOPE-9", "bid": "1.00"},
                  {"sku": "OAT-2", "bid": "0.50"}],
        schedule={"start": "2026-12-01T00:00:00Z", "end": "2026-11-01T00:00:00Z",
                  "time_zone": "Mars/Olympus"},
        targeting={"keywords": ["oat milk"], "segments": {
            "include": [], "exclude": [], "bid_multipliers": {"gamer": "20"}}})
    r = await client.post("/v1/campaigns", headers=adv, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == "budget.daily"  # the first, as before
    assert [d["field"] for d in error["details"]] == [
        "budget.daily", "products[0].bid", "products[1].sku", "schedule.end",
        "schedule.time_zone", "targeting.segments.bid_multipliers"]
    assert not redis_sync.smembers(keys.CAMPAIGN_IDS)  # nothing written
