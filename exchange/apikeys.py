"""Advertiser API keys: several per advertiser, each with a public id; rotatable, revocable.

A key is ``ek_`` + 32 random bytes, shown once. Only its SHA-256 is stored:

- ``ex:apikeys`` (hash) maps sha256(key) -> ``"<advertiser id>:<key id>"``. It is the one
  lookup authentication makes, so a revoked key (its field deleted) stops working on
  every worker at the next request. It is also the truth for "live": a key record whose
  hash no longer maps back to it is ignored.
- ``ex:adv:<id>:keys`` (hash) maps key id -> msgpack ``KeyRecord`` (the hash, the first
  characters of the key, label, created ms): what listing and revoking read.
- ``ex:adv:<id>:keyuse`` (hash) maps key id -> last-used ms, written at most once a minute
  per key and worker (``UsageThrottle``), never on every request.

A value holding the advertiser id alone (keys issued before key ids existed, and the demo
loader's ``ek_demo_<n>``) still authenticates: its key id is derived from the hash
(``derived_key_id``), so every worker names it alike without coordinating. ``adopt``
gives such keys a record once, so they are listed and revoked like the others.

Changes to one advertiser's keys run under WATCH on its ``keys`` hash: two concurrent
revocations cannot leave it without a key, nor concurrent creations pass ``MAX_KEYS``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, NamedTuple

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from exchange import keys
from exchange.errors import Conflict, NotFound

KEY_PREFIX = "ek_"
MAX_KEY_CHARS = 128
MAX_KEYS = 20              # live keys per advertiser: enough to rotate, bounded to list
PREFIX_CHARS = 8           # shown in listings to tell keys apart ("ek_" + 5 of 43 random)
USE_EVERY_MS = 60_000      # last-used precision: one write per key and worker per minute
_RETRIES = 10
_ADOPT_CHUNK = 500
_KEY_ID = re.compile(r"key_[0-9a-f]{16}")


class KeyRecord(msgspec.Struct, kw_only=True, array_like=True, frozen=True, gc=False):
    secret_hash: str
    prefix: str = ""           # unknown for keys adopted from a scan (never seen whole)
    label: str | None = None
    created_ms: int = 0


class KeyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    label: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class KeyOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    prefix: str | None = None
    label: str | None = None
    created_at: datetime
    last_used_at: datetime | None = None


class KeyList(msgspec.Struct, kw_only=True):
    items: list[KeyOut]


class KeyCreated(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A new key: ``api_key`` is the secret, shown this once and never again."""

    id: str
    prefix: str
    label: str | None = None
    created_at: datetime
    api_key: str


class KeyOwner(NamedTuple):
    advertiser_id: int
    key_id: str
    derived: bool           # the stored value named no key id (see ``derived_key_id``)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(KeyRecord)


def encode_record(record: KeyRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> KeyRecord:
    return _decoder.decode(data)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return f"key_{secrets.token_hex(8)}"


def derived_key_id(secret_hash: str) -> str:
    """The id of a key stored without one: a one-way function of its hash, so it tells
    nothing about the hash, and every worker derives the same id."""
    return "key_" + hashlib.sha256(f"endcap-key-id:{secret_hash}".encode()).hexdigest()[:16]


def is_key_id(text: str) -> bool:
    return _KEY_ID.fullmatch(text) is not None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def owner_of(value: bytes | str, secret_hash: str) -> KeyOwner:
    """Parse an ``ex:apikeys`` value: ``"<advertiser id>:<key id>"`` or ``"<advertiser id>"``."""
    advertiser, _, key_id = _text(value).partition(":")
    if key_id:
        return KeyOwner(int(advertiser), key_id, derived=False)
    return KeyOwner(int(advertiser), derived_key_id(secret_hash), derived=True)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class UsageThrottle:
    """When a key's last-used time is worth writing: at most once per ``every_ms`` per key
    in this worker, so authenticating costs one HGET and nothing else almost always.
    Bounded: past ``max_keys`` it forgets everything (costing a few early writes)."""

    def __init__(self, every_ms: int = USE_EVERY_MS, max_keys: int = 100_000) -> None:
        self.every_ms = every_ms
        self.max_keys = max_keys
        self._written: dict[str, int] = {}

    def due(self, key_id: str, now_ms: int) -> bool:
        last = self._written.get(key_id)
        if last is not None and now_ms - last < self.every_ms:
            return False
        if last is None and len(self._written) >= self.max_keys:
            self._written.clear()
        self._written[key_id] = now_ms
        return True


_usage = UsageThrottle()


async def identify(client: aioredis.Redis, api_key: str, usage: UsageThrottle = _usage
                   ) -> KeyOwner | None:
    """The advertiser and key id of ``api_key`` if it is live, else None."""
    if not api_key.startswith(KEY_PREFIX) or len(api_key) > MAX_KEY_CHARS:
        return None
    secret_hash = hash_key(api_key)
    value = await client.hget(keys.API_KEYS, secret_hash)
    if value is None:
        return None
    owner = owner_of(value, secret_hash)
    now = _now_ms()
    if usage.due(owner.key_id, now):
        pipe = client.pipeline(transaction=False)
        pipe.hset(keys.advertiser_key_use(owner.advertiser_id), owner.key_id, now)
        if owner.derived:
            pipe.hexists(keys.advertiser_keys(owner.advertiser_id), owner.key_id)
        answers = await pipe.execute()
        if owner.derived and not answers[1]:
            await _adopt(client, [(secret_hash, owner.advertiser_id, api_key[:PREFIX_CHARS])])
    return owner


def stage(pipe: Pipeline, advertiser_id: int, label: str | None, now_ms: int) -> KeyCreated:
    """Queue a new key's writes on ``pipe`` (a transaction); the key, once executed."""
    api_key = new_api_key()
    key_id = new_key_id()
    record = KeyRecord(secret_hash=hash_key(api_key), prefix=api_key[:PREFIX_CHARS],
                       label=label or None, created_ms=now_ms)
    pipe.hset(keys.advertiser_keys(advertiser_id), key_id, encode_record(record))
    pipe.hset(keys.API_KEYS, record.secret_hash, f"{advertiser_id}:{key_id}")
    return KeyCreated(id=key_id, prefix=record.prefix, label=record.label,
                      created_at=_at(now_ms), api_key=api_key)


async def _live(client: aioredis.Redis, advertiser_id: int) -> dict[str, KeyRecord]:
    """The advertiser's keys that still authenticate, by id."""
    raw = await client.hgetall(keys.advertiser_keys(advertiser_id))
    if not raw:
        return {}
    records = {_text(k): decode_record(_raw(v)) for k, v in raw.items()}
    ids = list(records)
    owners = await client.hmget(keys.API_KEYS, [records[i].secret_hash for i in ids])
    return {
        key_id: records[key_id]
        for key_id, value in zip(ids, owners, strict=True)
        if value is not None
        and owner_of(value, records[key_id].secret_hash)[:2] == (advertiser_id, key_id)
    }


async def listing(client: aioredis.Redis, advertiser_id: int) -> KeyList:
    """The advertiser's live keys, oldest first: ids, prefixes, labels, times; no secrets."""
    live = await _live(client, advertiser_id)
    used = await client.hgetall(keys.advertiser_key_use(advertiser_id)) if live else {}
    last = {_text(k): int(v) for k, v in used.items()}
    items = [
        KeyOut(id=key_id, prefix=r.prefix or None, label=r.label, created_at=_at(r.created_ms),
               last_used_at=_at(last[key_id]) if key_id in last else None)
        for key_id, r in live.items()
    ]
    items.sort(key=lambda k: (k.created_at, k.id))
    return KeyList(items=items)


async def create(client: aioredis.Redis, advertiser_id: int, label: str | None
                 ) -> KeyCreated:
    """A new key for the advertiser; 409 ``too_many_keys`` at ``MAX_KEYS`` live keys."""
    owned = keys.advertiser_keys(advertiser_id)
    for _ in range(_RETRIES):
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch(owned)
            if len(await _live(pipe, advertiser_id)) >= MAX_KEYS:
                raise Conflict(f"an advertiser has at most {MAX_KEYS} keys; revoke one first",
                               code="too_many_keys")
            pipe.multi()
            created = stage(pipe, advertiser_id, label, _now_ms())
            try:
                await pipe.execute()
            except WatchError:
                continue
            return created
    raise Conflict("the keys are being changed by others; retry", code="conflict")


async def revoke(client: aioredis.Redis, advertiser_id: int, key_id: str) -> None:
    """Revoke one of the advertiser's keys: it stops authenticating at once.

    404 if ``key_id`` is not one of this advertiser's live keys (another advertiser's id
    answers the same, so ids leak nothing); 409 ``last_key`` for its only live key.
    """
    if not is_key_id(key_id):
        raise NotFound("key not found")
    owned = keys.advertiser_keys(advertiser_id)
    for _ in range(_RETRIES):
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch(owned)
            live = await _live(pipe, advertiser_id)
            record = live.get(key_id)
            if record is None:
                if await pipe.hexists(owned, key_id):  # a stale record: tidy it away
                    await client.hdel(owned, key_id)
                raise NotFound("key not found")
            if len(live) == 1:
                raise Conflict("this is the advertiser's last key: create a new key before "
                               "revoking it", code="last_key")
            pipe.multi()
            pipe.hdel(keys.API_KEYS, record.secret_hash)
            pipe.hdel(owned, key_id)
            pipe.hdel(keys.advertiser_key_use(advertiser_id), key_id)
            try:
                await pipe.execute()
            except WatchError:
                continue
            return
    raise Conflict("the keys are being changed by others; retry", code="conflict")


async def _adopt(client: aioredis.Redis, found: list[tuple[str, int, str]]) -> int:
    """Give keys stored without a key id a record (HSETNX: idempotent, workers may race).
    ``found`` holds (hash, advertiser id, prefix or ""). Created time: the advertiser's,
    since such keys were issued with their advertiser."""
    # Imported here: exchange.advertisers issues its first key through this module.
    from exchange.advertisers import decode_record as decode_advertiser

    adopted = 0
    for start in range(0, len(found), _ADOPT_CHUNK):
        chunk = found[start : start + _ADOPT_CHUNK]
        raw = await client.hmget(keys.ADVERTISERS, [str(adv) for _, adv, _ in chunk])
        pipe = client.pipeline(transaction=False)
        for (secret_hash, adv, prefix), data in zip(chunk, raw, strict=True):
            created_ms = decode_advertiser(_raw(data)).created_ms if data else 0
            record = KeyRecord(secret_hash=secret_hash, prefix=prefix,
                               created_ms=created_ms or _now_ms())
            pipe.hsetnx(keys.advertiser_keys(adv), derived_key_id(secret_hash),
                        encode_record(record))
        adopted += sum(await pipe.execute())
    return adopted


async def adopt_all(client: aioredis.Redis) -> int:
    """Once per store: give every key stored without a key id its record, so the operator
    can list and revoke keys issued before key ids existed. Later stragglers (written by
    an older worker during an upgrade) are adopted when they authenticate."""
    if await client.exists(keys.API_KEYS_ADOPTED):
        return 0
    found: list[tuple[str, int, str]] = []
    async for field, value in client.hscan_iter(keys.API_KEYS, count=1000):
        if ":" not in _text(value):
            found.append((_text(field), int(value), ""))
    adopted = await _adopt(client, found)
    await client.set(keys.API_KEYS_ADOPTED, _now_ms())
    return adopted
