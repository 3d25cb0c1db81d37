"""The demo generator: deterministic, sized as asked, internally consistent, loads back."""

from __future__ import annotations

import hashlib
import re

import msgspec
import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from exchange import advertisers, campaigns, catalog, demo, keys
from exchange.stock import decode_quantities

SMALL = demo.DemoSizes(
    products=2_000, campaigns=200, bids=4_000, advertisers=80, shoppers=100, stores=5
)


@pytest.fixture(scope="module")
def data() -> demo.DemoData:
    return demo.generate(SMALL, seed=7)


def _digest(d: demo.DemoData) -> str:
    h = hashlib.sha256()
    for p in d.products:
        h.update(catalog.encode_record(p))
    for a in d.advertisers:
        h.update(advertisers.encode_record(a))
    for c in d.campaigns:
        h.update(campaigns.encode_record(c))
    h.update(msgspec.msgpack.encode([d.shoppers, d.stores]))
    for store, qty in d.stock.items():
        h.update(store.encode() + qty.astype("<u2").tobytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(data: demo.DemoData) -> None:
    assert _digest(demo.generate(SMALL, seed=7)) == _digest(data)
    other = demo.generate(SMALL, seed=8)
    assert _digest(other) != _digest(data)
    assert [p.title for p in other.products] != [p.title for p in data.products]


def test_sizes_are_honoured(data: demo.DemoData) -> None:
    assert len(data.products) == SMALL.products
    assert len(data.advertisers) == SMALL.advertisers
    assert len(data.campaigns) == SMALL.campaigns
    assert sum(len(c.bids) for c in data.campaigns) == SMALL.bids  # exact when feasible
    assert len(data.shoppers) == SMALL.shoppers
    assert data.stores == ["S001", "S002", "S003", "S004", "S005"]
    assert list(data.stock) == [*data.stores, "online"]


def test_bid_count_tolerance_at_the_limits() -> None:
    few = demo.generate(demo.DemoSizes(
        products=300, campaigns=40, bids=10, advertisers=20, shoppers=0, stores=1
    ))
    assert [len(c.bids) for c in few.campaigns] == [1] * 40  # at least one bid per campaign
    many = demo.generate(demo.DemoSizes(
        products=300, campaigns=40, bids=10**6, advertisers=20, shoppers=0, stores=1
    ))
    owned = {a.id: sum(p.brand == a.name for p in many.products) for a in many.advertisers}
    # Capped at each campaign's advertiser's catalogue.
    assert [len(c.bids) for c in many.campaigns] == [owned[c.advertiser_id] for c in many.campaigns]


def test_taxonomy_is_deep_and_broad() -> None:
    assert len(demo.LEAVES) >= 150
    assert len({leaf.department for leaf in demo.LEAVES}) >= 15
    assert len({leaf.path for leaf in demo.LEAVES}) == len(demo.LEAVES)
    assert all(len(leaf.path.split(" > ")) >= 3 for leaf in demo.LEAVES)


def test_products_are_valid_catalogue_entries(data: demo.DemoData) -> None:
    assert [p.pid for p in data.products] == list(range(1, SMALL.products + 1))
    assert len({p.sku for p in data.products}) == SMALL.products
    for p in data.products:
        assert re.fullmatch(r"SKU-\d{6}", p.sku)
        assert isinstance(p.price_micros, int) and p.price_micros > 0
        assert len(p.category.split(" > ")) >= 3
        assert 50_000 <= p.quality_ppm <= 1_000_000
        assert p.title.startswith(p.brand + " ")
        assert p.image_url == f"/demo/img/{p.pid}.svg" and p.landing_url == f"/demo/p/{p.sku}"
        # Passes the public API's own validation.
        msgspec.convert(msgspec.to_builtins(catalog.to_out(p)), catalog.ProductIn)


def test_bids_are_on_the_advertisers_own_products(data: demo.DemoData) -> None:
    by_pid = {p.pid: p for p in data.products}
    brand = {a.id: a.name for a in data.advertisers}
    for c in data.campaigns:
        pids = [b.pid for b in c.bids]
        assert c.bids and len(set(pids)) == len(pids)
        for b in c.bids:
            product = by_pid[b.pid]
            assert product.sku == b.sku
            assert product.brand == brand[c.advertiser_id]
            assert isinstance(b.bid_micros, int) and 150_000 <= b.bid_micros <= 3_000_000


def test_campaigns_pass_api_validation(data: demo.DemoData) -> None:
    pids = {p.sku: p.pid for p in data.products}
    assert [c.id for c in data.campaigns] == list(range(1, SMALL.campaigns + 1))
    for c in data.campaigns:
        wire = msgspec.json.encode(campaigns.to_input(c))
        body = msgspec.json.decode(wire, type=campaigns.CampaignIn)
        rebuilt = campaigns.build_record(
            body, campaign_id=c.id, advertiser_id=c.advertiser_id, pids=pids,
            created_ms=c.created_ms, version=1,
        )
        assert rebuilt.bids == c.bids and rebuilt.keywords == c.keywords
        assert 20_000_000 <= c.daily_budget_micros <= 2_000_000_000
        assert c.created_ms <= c.updated_ms and c.version == 1
    statuses = [c.status for c in data.campaigns]
    assert statuses.count("active") / len(statuses) > 0.8


def test_shoppers_and_stock(data: demo.DemoData) -> None:
    known = {s for s, _ in demo.SEGMENTS}
    assert len(known) >= 40
    for i, (shopper_id, segments) in enumerate(data.shoppers, start=1):
        assert shopper_id == f"shp_{i:06d}"
        assert len(segments) <= 6 and len(set(segments)) == len(segments)
        assert set(segments) <= known
    for qty in data.stock.values():
        assert qty.dtype == np.uint16 and qty.shape == (SMALL.products + 1,) and qty[0] == 0
    stocked = np.mean([np.mean(data.stock[s][1:] > 0) for s in data.stores])
    assert 0.8 < stocked < 0.97


def test_load_writes_what_was_generated(redis_sync: redis.Redis, data: demo.DemoData) -> None:
    assert demo.is_empty(redis_sync)
    counts = demo.load(redis_sync, data)
    assert not demo.is_empty(redis_sync)
    with_segments = sum(1 for _, segs in data.shoppers if segs)
    assert counts["products"] == SMALL.products and counts["campaigns"] == SMALL.campaigns
    assert counts["bids"] == SMALL.bids and counts["shoppers"] == with_segments

    raw = redis_sync.hgetall(keys.PRODUCTS)
    assert {int(k): catalog.decode_record(v) for k, v in raw.items()} == {
        p.pid: p for p in data.products
    }
    assert redis_sync.hget(keys.PRODUCT_IDS, "SKU-000042") == b"42"
    assert redis_sync.hlen(keys.PRODUCT_IDS) == SMALL.products
    assert redis_sync.get(keys.SEQ_PRODUCT) == str(SMALL.products).encode()

    stored_adv = redis_sync.hgetall(keys.ADVERTISERS)
    assert {int(k): advertisers.decode_record(v) for k, v in stored_adv.items()} == {
        a.id: a for a in data.advertisers
    }
    assert redis_sync.get(keys.SEQ_ADVERTISER) == str(SMALL.advertisers).encode()
    assert redis_sync.hlen(keys.API_KEYS) == SMALL.advertisers

    ids = sorted(int(i) for i in redis_sync.smembers(keys.CAMPAIGN_IDS))
    assert ids == [c.id for c in data.campaigns]
    stored = redis_sync.mget([keys.campaign(i) for i in ids])
    assert [campaigns.decode_record(v) for v in stored] == data.campaigns
    owned: dict[int, set[bytes]] = {}
    for c in data.campaigns:
        owned.setdefault(c.advertiser_id, set()).add(str(c.id).encode())
    for adv, cids in owned.items():
        assert redis_sync.smembers(keys.advertiser_campaigns(adv)) == cids
    assert redis_sync.get(keys.SEQ_CAMPAIGN) == str(SMALL.campaigns).encode()

    for shopper_id, segments in data.shoppers[:20]:
        got = {f.decode()[2:] for f in redis_sync.hkeys(keys.shopper(shopper_id))}
        assert got == set(segments)
    for store, qty in data.stock.items():  # stored as quantity + 1 (0 = never reported)
        stored = np.frombuffer(redis_sync.get(keys.stock(store)), "<u2")
        assert np.array_equal(stored.astype(np.int64) - 1, qty)
        assert np.array_equal(decode_quantities(redis_sync.get(keys.stock(store))), qty)
    assert {k.decode() for k in redis_sync.hkeys(keys.STORES)} == set(data.stock)

    marker = redis_sync.hgetall(keys.DEMO_MARKER)
    assert marker[b"products"] == b"2000" and marker[b"seed"] == b"7"
    ((_, fields),) = redis_sync.xrange(keys.CHANGES)
    assert fields == {b"t": b"reload"}


async def test_demo_api_key_authenticates(
    redis_sync: redis.Redis, redis_async: aioredis.Redis, data: demo.DemoData
) -> None:
    demo.load(redis_sync, data)
    assert redis_sync.hget(keys.API_KEYS, advertisers.hash_key("ek_demo_3")) == b"3"
    assert await advertisers.authenticate(redis_async, f"{demo.DEMO_API_KEY_PREFIX}5") == 5
    assert await advertisers.authenticate(redis_async, "ek_demo_999") is None
