"""Advertiser API keys through the real ASGI app: several per advertiser, rotation,
revocation (immediate, on every worker), tenancy, the operator's view, old keys."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import redis
import redis.asyncio as aioredis

from exchange import advertisers, apikeys, demo, keys
from exchange.app import Exchange
from tests.exchange.conftest import BROWSER_UA, OP, make_settings

SMALL_DEMO = demo.DemoSizes(products=200, campaigns=10, bids=40, advertisers=5, shoppers=0,
                            stores=1)


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


async def make_advertiser(client: httpx.AsyncClient, name: str = "Oatly"
                          ) -> tuple[str, str, str]:
    """(advertiser id, api key, key id) of a new advertiser."""
    r = await client.post("/v1/advertisers", json={"name": name}, headers=OP)
    assert r.status_code == 201, r.text
    body = r.json()
    return body["id"], body["api_key"], body["key_id"]


async def authenticates(client: httpx.AsyncClient, api_key: str) -> int:
    return (await client.get("/v1/campaigns", headers=bearer(api_key))).status_code


async def test_new_advertiser_key_is_listed_without_its_secret(
    client: httpx.AsyncClient,
) -> None:
    _, api_key, key_id = await make_advertiser(client)
    assert apikeys.is_key_id(key_id)
    r = await client.get("/v1/keys", headers=bearer(api_key))
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert item["id"] == key_id
    assert item["prefix"] == api_key[:8] and item["prefix"].startswith("ek_")
    assert item["created_at"].endswith("Z") and item["last_used_at"].endswith("Z")
    assert set(item) <= {"id", "prefix", "label", "created_at", "last_used_at"}
    assert api_key not in r.text and apikeys.hash_key(api_key) not in r.text


async def test_rotation_create_switch_revoke(client: httpx.AsyncClient) -> None:
    _, old_key, old_id = await make_advertiser(client)
    r = await client.post("/v1/keys", json={"label": "ci 2026-11"}, headers=bearer(old_key))
    assert r.status_code == 201, r.text
    created = r.json()
    new_key, new_id = created["api_key"], created["id"]
    assert new_key.startswith("ek_") and new_id != old_id and created["label"] == "ci 2026-11"
    assert created["prefix"] == new_key[:8]
    assert await authenticates(client, new_key) == 200
    assert await authenticates(client, old_key) == 200  # both live until the old is revoked

    listed = (await client.get("/v1/keys", headers=bearer(new_key))).json()["items"]
    assert [(k["id"], k.get("label")) for k in listed] == [(old_id, None),
                                                           (new_id, "ci 2026-11")]
    for secret in (old_key, new_key):
        assert secret not in json.dumps(listed)
        assert apikeys.hash_key(secret) not in json.dumps(listed)

    revoked = await client.delete(f"/v1/keys/{old_id}", headers=bearer(new_key))
    assert revoked.status_code == 204 and revoked.content == b""
    assert await authenticates(client, old_key) == 401  # at once, no cache to expire
    assert (await client.get("/v1/keys", headers=bearer(old_key))).status_code == 401
    assert await authenticates(client, new_key) == 200
    listed = (await client.get("/v1/keys", headers=bearer(new_key))).json()["items"]
    assert [k["id"] for k in listed] == [new_id]
    again = await client.delete(f"/v1/keys/{old_id}", headers=bearer(new_key))
    assert again.status_code == 404


async def test_a_key_may_revoke_itself_but_not_the_last_one(client: httpx.AsyncClient) -> None:
    _, api_key, key_id = await make_advertiser(client)
    last = await client.delete(f"/v1/keys/{key_id}", headers=bearer(api_key))
    assert last.status_code == 409
    assert last.json()["error"]["code"] == "last_key"
    assert await authenticates(client, api_key) == 200

    second = (await client.post("/v1/keys", headers=bearer(api_key))).json()  # no body
    assert "label" not in second
    assert (await client.delete(f"/v1/keys/{key_id}", headers=bearer(api_key))).status_code \
        == 204
    assert await authenticates(client, api_key) == 401
    assert await authenticates(client, second["api_key"]) == 200


async def test_another_advertisers_key_id_is_not_found(client: httpx.AsyncClient) -> None:
    _, a_key, _ = await make_advertiser(client, "Oatly")
    await client.post("/v1/keys", headers=bearer(a_key))  # so "last key" cannot be the answer
    _, b_key, b_id = await make_advertiser(client, "Alpro")
    await client.post("/v1/keys", headers=bearer(b_key))
    r = await client.delete(f"/v1/keys/{b_id}", headers=bearer(a_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert await authenticates(client, b_key) == 200
    for junk in ("key_0000000000000000", "nope", "KEY_ABC", "key_" + "g" * 16):
        assert (await client.delete(f"/v1/keys/{junk}", headers=bearer(a_key))).status_code \
            == 404
    a_ids = {k["id"] for k in (await client.get("/v1/keys", headers=bearer(a_key))).json()[
        "items"]}
    assert b_id not in a_ids and len(a_ids) == 2


async def test_auth_errors(client: httpx.AsyncClient) -> None:
    adv_id, api_key, key_id = await make_advertiser(client)
    for path in ("/v1/keys", f"/v1/advertisers/{adv_id}/keys"):
        missing = await client.get(path)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        assert (await client.get(path, headers=bearer("nope"))).status_code == 401
    assert (await client.get("/v1/keys", headers=bearer("ek_" + "x" * 43))).status_code == 401
    # Wrong role: the operator has no keys of its own; an advertiser cannot use the
    # operator's paths, not even for itself.
    assert (await client.get("/v1/keys", headers=OP)).status_code == 403
    assert (await client.post("/v1/keys", headers=OP)).status_code == 403
    assert (await client.delete(f"/v1/keys/{key_id}", headers=OP)).status_code == 403
    own = bearer(api_key)
    for method, path in (("GET", f"/v1/advertisers/{adv_id}/keys"),
                         ("POST", f"/v1/advertisers/{adv_id}/keys"),
                         ("DELETE", f"/v1/advertisers/{adv_id}/keys/{key_id}"),
                         ("GET", "/v1/advertisers/adv_999/keys")):
        r = await client.request(method, path, headers=own)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path)


async def test_operator_manages_any_advertisers_keys(client: httpx.AsyncClient) -> None:
    adv_id, api_key, key_id = await make_advertiser(client)
    base = f"/v1/advertisers/{adv_id}/keys"
    listed = (await client.get(base, headers=OP)).json()["items"]
    assert [k["id"] for k in listed] == [key_id] and "last_used_at" not in listed[0]

    r = await client.post(base, json={"label": "issued by ops"}, headers=OP)
    assert r.status_code == 201, r.text
    issued = r.json()
    assert await authenticates(client, issued["api_key"]) == 200
    own_view = (await client.get("/v1/keys", headers=bearer(issued["api_key"]))).json()
    assert {k["id"] for k in own_view["items"]} == {key_id, issued["id"]}

    assert (await client.delete(f"{base}/{key_id}", headers=OP)).status_code == 204
    assert await authenticates(client, api_key) == 401
    last = await client.delete(f"{base}/{issued['id']}", headers=OP)
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_key"

    other_id, _, other_key_id = await make_advertiser(client, "Alpro")
    await client.post(f"/v1/advertisers/{other_id}/keys", headers=OP)
    assert (await client.delete(f"{base}/{other_key_id}", headers=OP)).status_code == 404

    for unknown in ("adv_999", "999", "cmp_1", "adv_x"):
        r = await client.get(f"/v1/advertisers/{unknown}/keys", headers=OP)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", unknown
        assert (await client.post(f"/v1/advertisers/{unknown}/keys", headers=OP)
                ).status_code == 404
        assert (await client.delete(f"/v1/advertisers/{unknown}/keys/{key_id}", headers=OP)
                ).status_code == 404


async def test_bad_bodies_and_the_key_limit(client: httpx.AsyncClient) -> None:
    _, api_key, _ = await make_advertiser(client)
    auth = bearer(api_key)
    for body, field in (({"label": 5}, "label"), ({"label": "x" * 101}, "label"),
                        ({"name": "x"}, "name")):
        r = await client.post("/v1/keys", json=body, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["field"] == field, r.text
    r = await client.post("/v1/keys", content=b"{", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    for _ in range(apikeys.MAX_KEYS - 1):
        assert (await client.post("/v1/keys", json={}, headers=auth)).status_code == 201
    full = await client.post("/v1/keys", json={"label": "one too many"}, headers=auth)
    assert full.status_code == 409 and full.json()["error"]["code"] == "too_many_keys"
    listed = (await client.get("/v1/keys", headers=auth)).json()["items"]
    assert len(listed) == apikeys.MAX_KEYS


async def test_concurrent_revocations_keep_one_key(client: httpx.AsyncClient) -> None:
    adv_id, _, first = await make_advertiser(client)
    base = f"/v1/advertisers/{adv_id}/keys"
    second = (await client.post(base, headers=OP)).json()["id"]
    answers = await asyncio.gather(client.delete(f"{base}/{first}", headers=OP),
                                   client.delete(f"{base}/{second}", headers=OP))
    assert sorted(r.status_code for r in answers) == [204, 409]
    assert len((await client.get(base, headers=OP)).json()["items"]) == 1


async def test_revocation_reaches_every_worker(client: httpx.AsyncClient, redis_url: str
                                               ) -> None:
    _, old_key, old_id = await make_advertiser(client)
    new_key = (await client.post("/v1/keys", headers=bearer(old_key))).json()["api_key"]
    other = Exchange(make_settings(), redis_url)
    await other.runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other),
                                     base_url="http://shop.test",
                                     headers={"User-Agent": BROWSER_UA}) as worker2:
            assert await authenticates(worker2, old_key) == 200
            assert (await client.delete(f"/v1/keys/{old_id}", headers=bearer(new_key))
                    ).status_code == 204
            assert await authenticates(worker2, old_key) == 401
            assert await authenticates(worker2, new_key) == 200
    finally:
        await other.runtime.stop()


async def test_last_used_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, redis_sync: redis.Redis
) -> None:
    adv_id, api_key, key_id = await make_advertiser(client)
    advertiser = advertisers.parse_public_id(adv_id)
    assert advertiser is not None
    assert redis_sync.hget(keys.advertiser_key_use(advertiser), key_id) is None
    assert await authenticates(client, api_key) == 200
    first = redis_sync.hget(keys.advertiser_key_use(advertiser), key_id)
    assert first is not None
    redis_sync.hset(keys.advertiser_key_use(advertiser), key_id, b"1")  # spot a rewrite
    for _ in range(5):
        assert await authenticates(client, api_key) == 200
    assert redis_sync.hget(keys.advertiser_key_use(advertiser), key_id) == b"1"

    throttle = apikeys.UsageThrottle(every_ms=60_000, max_keys=2)
    assert throttle.due("key_a", 0) and not throttle.due("key_a", 59_999)
    assert throttle.due("key_a", 60_000)
    assert throttle.due("key_b", 0) and throttle.due("key_c", 0)  # full: forgets, stays small
    assert len(throttle._written) <= 2


async def test_demo_keys_authenticate_and_rotate(
    client: httpx.AsyncClient, redis_sync: redis.Redis
) -> None:
    demo.load(redis_sync, demo.generate(SMALL_DEMO, seed=3))
    demo_key = "ek_demo_2"
    assert await authenticates(client, demo_key) == 200
    (item,) = (await client.get("/v1/keys", headers=bearer(demo_key))).json()["items"]
    assert item["prefix"] == "ek_demo_" and item["label"] == "demo"
    assert item["id"] == apikeys.derived_key_id(apikeys.hash_key(demo_key))
    operator_view = (await client.get("/v1/advertisers/adv_3/keys", headers=OP)).json()
    assert [k["id"] for k in operator_view["items"]] == [
        apikeys.derived_key_id(apikeys.hash_key("ek_demo_3"))]

    new_key = (await client.post("/v1/keys", headers=bearer(demo_key))).json()["api_key"]
    assert (await client.delete(f"/v1/keys/{item['id']}", headers=bearer(new_key))
            ).status_code == 204
    assert await authenticates(client, demo_key) == 401
    assert await authenticates(client, "ek_demo_3") == 200


async def test_keys_stored_before_key_ids_keep_working(
    client: httpx.AsyncClient, redis_sync: redis.Redis, redis_async: aioredis.Redis
) -> None:
    """An ``ex:apikeys`` value with the advertiser id alone (what ``POST /v1/advertisers``
    wrote before key ids): it authenticates, and the operator can list and revoke it."""
    record = advertisers.AdvertiserRecord(id=7, name="Old Brand", created_ms=1_700_000_000_000)
    redis_sync.hset(keys.ADVERTISERS, "7", advertisers.encode_record(record))
    old_key = apikeys.new_api_key()
    redis_sync.hset(keys.API_KEYS, hashlib.sha256(old_key.encode()).hexdigest(), "7")

    # Listed (adopted once per store: the operator never saw the key, so no prefix)...
    listed = (await client.get("/v1/advertisers/adv_7/keys", headers=OP)).json()["items"]
    old_id = apikeys.derived_key_id(apikeys.hash_key(old_key))
    assert [k["id"] for k in listed] == [old_id]
    assert listed[0]["created_at"] == "2023-11-14T22:13:20Z"  # the advertiser's
    # ...and it authenticates, the module function keeping its contract.
    assert await advertisers.authenticate(redis_async, old_key) == 7
    assert await authenticates(client, old_key) == 200

    # A straggler written after the one-time adoption (an older worker mid-upgrade) gets
    # its record when it is first used.
    straggler = apikeys.new_api_key()
    redis_sync.hset(keys.API_KEYS, apikeys.hash_key(straggler), "7")
    assert await authenticates(client, straggler) == 200
    listed = (await client.get("/v1/advertisers/adv_7/keys", headers=OP)).json()["items"]
    by_id = {k["id"]: k for k in listed}
    straggler_id = apikeys.derived_key_id(apikeys.hash_key(straggler))
    assert set(by_id) == {old_id, straggler_id}
    assert by_id[straggler_id]["prefix"] == straggler[:8] and "prefix" not in by_id[old_id]

    assert (await client.delete(f"/v1/advertisers/adv_7/keys/{old_id}", headers=OP)
            ).status_code == 204
    assert await authenticates(client, old_key) == 401
    assert await authenticates(client, straggler) == 200


async def test_openapi_documents_the_key_paths(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert set(doc["paths"]["/v1/keys"]) == {"get", "post"}
    assert set(doc["paths"]["/v1/keys/{key_id}"]) == {"delete"}
    assert set(doc["paths"]["/v1/advertisers/{advertiser_id}/keys"]) == {"get", "post"}
    assert "204" in doc["paths"]["/v1/advertisers/{advertiser_id}/keys/{key_id}"]["delete"][
        "responses"]
    assert {"KeyIn", "KeyOut", "KeyList", "KeyCreated"} <= set(doc["components"]["schemas"])
    assert "api_key" not in doc["components"]["schemas"]["KeyOut"]["properties"]
