"""Advertisers, created with their first API key.

Keys are random 32-byte tokens shown once at creation; only their SHA-256 is stored, so a
leaked store leaks no usable key. An advertiser may hold several keys (``exchange.apikeys``
issues, lists, revokes and authenticates them).
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
import redis.asyncio as aioredis

from exchange import apikeys, keys
from exchange.apikeys import KEY_PREFIX as KEY_PREFIX  # re-exported: auth, demo loader
from exchange.apikeys import hash_key as hash_key


class AdvertiserIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    domain: Annotated[str, msgspec.Meta(max_length=253)] | None = None


class AdvertiserRecord(msgspec.Struct, kw_only=True, array_like=True):
    id: int
    name: str
    domain: str | None = None
    created_ms: int = 0


class AdvertiserCreated(msgspec.Struct, kw_only=True):
    id: str
    name: str
    api_key: str
    key_id: str


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AdvertiserRecord)


def encode_record(record: AdvertiserRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> AdvertiserRecord:
    return _decoder.decode(data)


def public_id(advertiser_id: int) -> str:
    return f"adv_{advertiser_id}"


def parse_public_id(text: str) -> int | None:
    if text.startswith("adv_") and text[4:].isdigit() and len(text) < 24:
        return int(text[4:])
    return None


async def exists(client: aioredis.Redis, advertiser_id: int) -> bool:
    return bool(await client.hexists(keys.ADVERTISERS, str(advertiser_id)))


async def create(client: aioredis.Redis, body: AdvertiserIn) -> AdvertiserCreated:
    advertiser_id = int(await client.incr(keys.SEQ_ADVERTISER))
    record = AdvertiserRecord(
        id=advertiser_id, name=body.name, domain=body.domain, created_ms=int(time.time() * 1000)
    )
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.ADVERTISERS, str(advertiser_id), encode_record(record))
    key = apikeys.stage(pipe, advertiser_id, None, record.created_ms)
    await pipe.execute()
    return AdvertiserCreated(id=public_id(advertiser_id), name=body.name, api_key=key.api_key,
                             key_id=key.id)


async def authenticate(client: aioredis.Redis, api_key: str) -> int | None:
    """The advertiser id owning ``api_key`` (any of its live keys), or None."""
    owner = await apikeys.identify(client, api_key)
    return owner.advertiser_id if owner is not None else None
