"""No input makes the exchange answer 5xx: arbitrary bodies reach the ad path and the
campaign validation and come back as an answer or as a 4xx ApiError, nothing else."""

from __future__ import annotations

from typing import Any

import msgspec
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import campaigns
from exchange.campaigns import CampaignIn, CampaignPatch
from exchange.catalog import ProductRecord
from exchange.decoding import decode_as
from exchange.errors import ApiError
from exchange.events import EventLog
from exchange.flow import AdServer
from exchange.index import Index
from exchange.metrics import Metrics
from exchange.settings import load_placements, load_settings
from fraud.signature import TokenSigner

SETTINGS = load_settings(environ={})
PLACEMENTS = load_placements(SETTINGS.resolve(SETTINGS.placements_file))
PRODUCTS = [
    ProductRecord(pid=1, sku="OAT-1", title="Oat Milk 1L", brand="Oatly",
                  category="Dairy > Milk > Oat Milk", price_micros=2_490_000),
    ProductRecord(pid=2, sku="OAT-2", title="Barista Oat Milk", brand="Minor",
                  category="Dairy > Milk > Oat Milk", price_micros=2_290_000),
]
CAMPAIGNS = [
    campaigns.CampaignRecord(
        id=i, advertiser_id=i, name="c", kind="sponsored_product", status="active",
        daily_budget_micros=10**8, total_budget_micros=0, pacing="even",
        bids=[campaigns.BidRecord(p.sku, p.pid, 500_000 * i)],
    ) for i, p in enumerate(PRODUCTS, start=1)
]
INDEX = Index.build(PRODUCTS, CAMPAIGNS)
# The client never connects: EventLog only queues here.
EVENTS = EventLog(aioredis.Redis(), stream="x", maxlen=1000, flush_ms=10, queue_max=10)
SERVER = AdServer(
    index=lambda: INDEX, placements=PLACEMENTS,
    signer=TokenSigner(SETTINGS.signing_keys, SETTINGS.signing_key_id, 60),
    events=EVENTS, stats=Metrics().ads, min_increment_micros=10_000, max_slots=10,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)
page = st.fixed_dictionaries({"type": st.sampled_from(
    ["search", "product", "category", "home", "in_store", "moon", 3])}, optional={
    "query": json_values | st.sampled_from(["oat milk", "oat", "", "   "]),
    "sku": json_values | st.sampled_from(["OAT-1", "nope"]),
    "category": json_values | st.sampled_from(["Dairy", "Dairy > Milk"]),
})
ad_request = st.fixed_dictionaries({}, optional={
    "placement": st.sampled_from(list(PLACEMENTS)) | json_values,
    "page": page | json_values,
    "request_id": json_values,
    "shopper": st.fixed_dictionaries({}, optional={"id": json_values}) | json_values,
    "device": json_values,
    "slots": st.integers(-5, 60) | json_values,
})


def _check(call: Any) -> None:
    try:
        call()
    except ApiError as exc:
        assert 400 <= exc.status < 500
        assert exc.body()["error"]["code"]


@settings(max_examples=400, deadline=None)
@given(ad_request)
def test_ad_path_never_fails_on_any_json(body: dict[str, Any]) -> None:
    EVENTS._queue.clear()
    _check(lambda: SERVER.serve(msgspec.json.encode(body), "http://x"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_ad_path_never_fails_on_any_bytes(raw: bytes) -> None:
    _check(lambda: SERVER.serve(raw, "http://x"))


money = st.sampled_from(["1.00", "0", "-1", "1e3", "NaN", "Infinity", "0.0000001", "", "abc",
                         "99999999999999999999"]) | json_values
campaign = st.fixed_dictionaries({"name": st.text(max_size=5) | json_values}, optional={
    "budget": st.fixed_dictionaries({"daily": money}, optional={"total": money}) | json_values,
    "products": st.lists(st.fixed_dictionaries({"sku": st.sampled_from(["OAT-1", "X"]),
                                                "bid": money}), max_size=3) | json_values,
    "status": st.sampled_from(["active", "draft", "x"]),
    "schedule": st.fixed_dictionaries({}, optional={
        "start": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "x"]),
        "end": st.sampled_from(["2025-01-01T00:00:00Z", "2027-01-01T00:00:00+02:00"])}),
    "frequency_cap": json_values,
    "targeting": json_values,
})


@settings(max_examples=300, deadline=None)
@given(campaign, st.sampled_from([CampaignIn, CampaignPatch]))
def test_campaign_validation_only_raises_api_errors(body: dict[str, Any], kind: type) -> None:
    def run() -> None:
        parsed = decode_as(msgspec.json.encode(body), kind)
        base = parsed if isinstance(parsed, CampaignIn) else campaigns.apply_patch(
            campaigns.to_input(CAMPAIGNS[0]), parsed)
        campaigns.build_record(base, campaign_id=1, advertiser_id=1, pids={"OAT-1": 1},
                               created_ms=0, version=1)

    _check(run)
