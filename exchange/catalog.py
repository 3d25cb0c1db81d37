"""The retailer's product catalogue: wire shapes, the stored record, and its Redis store.

Products get a dense integer id (``pid``, from 1) on first upsert; the in-memory index
and tracking tokens use the pid, the API uses the SKU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
import redis.asyncio as aioredis

from exchange import keys
from exchange.errors import BadRequest
from exchange.money import MoneyError, format_micros, parse_micros

Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
Url = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^(https?://|/)")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
MAX_UPSERT = 10_000


class ProductIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku: Sku
    title: Text
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    category: Text
    price: str
    image_url: Url | None = None
    landing_url: Url | None = None
    keywords: list[Annotated[str, msgspec.Meta(max_length=80)]] = []


class ProductRecord(msgspec.Struct, kw_only=True, array_like=True, frozen=True, gc=False):
    """As stored (msgpack, array-like: compact for 50k+ products)."""

    pid: int
    sku: str
    title: str
    brand: str
    category: str
    price_micros: int
    image_url: str | None = None
    landing_url: str | None = None
    keywords: list[str] = []
    # Prior click-through propensity in parts per million; the auction's base quality.
    quality_ppm: int = 500_000


class ProductOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    sku: str
    title: str
    brand: str
    category: str
    price: str
    image_url: str | None = None
    landing_url: str | None = None
    keywords: list[str] = []


class ProductPage(msgspec.Struct, kw_only=True):
    items: list[ProductOut]
    next_cursor: str | None


_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(ProductRecord)


def encode_record(record: ProductRecord) -> bytes:
    return _record_encoder.encode(record)


def decode_record(data: bytes) -> ProductRecord:
    return _record_decoder.decode(data)


def to_out(record: ProductRecord) -> ProductOut:
    return ProductOut(
        sku=record.sku,
        title=record.title,
        brand=record.brand,
        category=record.category,
        price=format_micros(record.price_micros),
        image_url=record.image_url,
        landing_url=record.landing_url,
        keywords=record.keywords,
    )


def to_record(product: ProductIn, pid: int, index: int) -> ProductRecord:
    try:
        price = parse_micros(product.price)
    except MoneyError as exc:
        raise BadRequest(str(exc), field=f"[{index}].price") from exc
    return ProductRecord(
        pid=pid,
        sku=product.sku,
        title=product.title,
        brand=product.brand,
        category=product.category,
        price_micros=price,
        image_url=product.image_url,
        landing_url=product.landing_url,
        keywords=product.keywords,
    )


async def assign_pids(client: aioredis.Redis, skus: Sequence[str]) -> list[int]:
    """The pid of each SKU, allocating new ones atomically (HSETNX on a fresh INCRBY block)."""
    if not skus:
        return []
    existing = await client.hmget(keys.PRODUCT_IDS, list(skus))
    missing = [s for s, v in zip(skus, existing, strict=True) if v is None]
    if missing:
        top = int(await client.incrby(keys.SEQ_PRODUCT, len(missing)))
        first = top - len(missing) + 1
        pipe = client.pipeline(transaction=False)
        for offset, sku in enumerate(missing):
            pipe.hsetnx(keys.PRODUCT_IDS, sku, first + offset)
        await pipe.execute()
        # Another writer may have won a race for a SKU: read back the ids that stuck.
        existing = await client.hmget(keys.PRODUCT_IDS, list(skus))
    return [int(v) for v in existing]


async def upsert(client: aioredis.Redis, products: Sequence[ProductIn]) -> list[ProductRecord]:
    if len(products) > MAX_UPSERT:
        raise BadRequest(f"at most {MAX_UPSERT} products per request", field="")
    seen: set[str] = set()
    for i, p in enumerate(products):
        if p.sku in seen:
            raise BadRequest(f"duplicate sku {p.sku!r} in request", field=f"[{i}].sku")
        seen.add(p.sku)
    # Validate everything before writing anything: all-or-nothing.
    for i, p in enumerate(products):
        to_record(p, 0, i)
    pids = await assign_pids(client, [p.sku for p in products])
    records = [to_record(p, pid, i) for i, (p, pid) in enumerate(zip(products, pids, strict=True))]
    if records:
        await client.hset(keys.PRODUCTS, mapping={r.pid: encode_record(r) for r in records})
    return records


async def load_all(client: aioredis.Redis) -> list[ProductRecord]:
    raw = await client.hgetall(keys.PRODUCTS)
    return [decode_record(v) for v in raw.values()]


async def get_by_sku(client: aioredis.Redis, sku: str) -> ProductRecord | None:
    pid = await client.hget(keys.PRODUCT_IDS, sku)
    if pid is None:
        return None
    data = await client.hget(keys.PRODUCTS, pid)
    return decode_record(data) if data else None
