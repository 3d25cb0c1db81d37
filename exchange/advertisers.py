"""Advertisers and their API keys.

Keys are random 32-byte tokens shown once at creation; only their SHA-256 is stored
(``ex:apikeys`` maps hash -> advertiser id), so a leaked store leaks no usable key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Annotated

import msgspec
import redis.asyncio as aioredis

from exchange import keys

KEY_PREFIX = "ek_"


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


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AdvertiserRecord)


def encode_record(record: AdvertiserRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> AdvertiserRecord:
    return _decoder.decode(data)


def public_id(advertiser_id: int) -> str:
    return f"adv_{advertiser_id}"


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create(client: aioredis.Redis, body: AdvertiserIn) -> AdvertiserCreated:
    advertiser_id = int(await client.incr(keys.SEQ_ADVERTISER))
    record = AdvertiserRecord(
        id=advertiser_id, name=body.name, domain=body.domain, created_ms=int(time.time() * 1000)
    )
    api_key = new_api_key()
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.ADVERTISERS, str(advertiser_id), encode_record(record))
    pipe.hset(keys.API_KEYS, hash_key(api_key), str(advertiser_id))
    await pipe.execute()
    return AdvertiserCreated(id=public_id(advertiser_id), name=body.name, api_key=api_key)


async def authenticate(client: aioredis.Redis, api_key: str) -> int | None:
    """The advertiser id owning ``api_key``, or None."""
    if not api_key.startswith(KEY_PREFIX) or len(api_key) > 128:
        return None
    found = await client.hget(keys.API_KEYS, hash_key(api_key))
    return int(found) if found is not None else None
