"""The retailer's real-time signals: loyalty segments, purchases, stock (DESIGN.md API).

Segments and purchases land in the shopper's state hash (``exchange/shoppers.py``) and
are used by that shopper's very next auction: no cache sits between. Stock lands in
``ex:stock:<store>`` and reaches every worker's in-memory table through the change feed.
Purchases are also appended to the event stream as ``conversion`` events (input of
attribution), with a stable id per order line so a retried post counts once downstream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
import redis.asyncio as aioredis

from exchange import changes, keys
from exchange.catalog import Sku
from exchange.errors import BadRequest
from exchange.events import SCHEMA_VERSION, Event, encoder
from exchange.money import MoneyError, parse_micros
from exchange.resp import ReplyError, RespClient
from exchange.shoppers import STATE_TTL_S, ShopperStore
from exchange.stock import MAX_QTY, store_numbers

ShopperId = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=r"^[^\s{}]+$")]
Segment = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=r"^\S+$")]
StoreId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\s:{}]+$")]
MAX_BATCH = 10_000


class SegmentChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    shopper_id: ShopperId
    add: Annotated[list[Segment], msgspec.Meta(max_length=200)] = []
    remove: Annotated[list[Segment], msgspec.Meta(max_length=200)] = []


class Purchase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    shopper_id: ShopperId
    sku: Sku
    quantity: Annotated[int, msgspec.Meta(ge=-10_000, le=10_000)]  # negative: a return
    unit_price: str
    store_id: StoreId | None = None  # None: online
    ts: datetime


class StockLevel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku: Sku
    store_id: StoreId
    quantity: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]


SegmentBatch = Annotated[list[SegmentChange], msgspec.Meta(max_length=MAX_BATCH)]
PurchaseBatch = Annotated[list[Purchase], msgspec.Meta(max_length=MAX_BATCH)]
StockBatch = Annotated[list[StockLevel], msgspec.Meta(max_length=MAX_BATCH * 10)]


class Applied(msgspec.Struct, kw_only=True, omit_defaults=True):
    applied: int
    unknown_skus: list[str] = []  # rows skipped: not in the catalogue


class Exposure(msgspec.Struct, kw_only=True):
    sku: str
    campaign_id: str
    impressions: int
    clicks: int
    first_seen: int   # ms since epoch
    last_seen: int    # ms since epoch
    purchased_since: bool  # bought the product after first seeing this campaign's ad


class Exposures(msgspec.Struct, kw_only=True):
    shopper_id: str
    exposures: list[Exposure]


async def apply_segments(resp: RespClient, batch: list[SegmentChange]) -> int:
    """Adds then removes, in batch order, one pipelined round trip. Returns the changes.

    Sent through the raw RESP client: redis-py's per-command cost (building the command,
    a timeout per reply) held the ingest under 50,000 updates per CPU-second."""
    n = 0
    commands: list[list[bytes | str | int]] = []
    for change in batch:
        key = keys.shopper(change.shopper_id)
        if change.add:
            cmd: list[bytes | str | int] = [b"HSET", key]
            for s in change.add:
                cmd += (f"s:{s}", b"1")
            commands.append(cmd)
        if change.remove:
            commands.append([b"HDEL", key, *(f"s:{s}" for s in change.remove)])
        if change.add or change.remove:
            commands.append([b"EXPIRE", key, STATE_TTL_S])
        n += len(change.add) + len(change.remove)
    for start in range(0, len(commands), 10_000):  # bounded writes and replies
        replies = await resp.pipeline(commands[start : start + 10_000])
        failed = next((r for r in replies if isinstance(r, ReplyError)), None)
        if failed is not None:
            raise failed
    return n


def _epoch_ms(ts: datetime, field: str) -> int:
    if ts.tzinfo is None:
        raise BadRequest("ts needs a time zone offset (e.g. Z)", field=field)
    return int(ts.timestamp() * 1000)


async def apply_purchases(client: aioredis.Redis, store: ShopperStore,
                          sku_to_pid: dict[str, int], batch: list[Purchase],
                          events_key: str, events_maxlen: int) -> Applied:
    """Suppression state per shopper (one script call each) and conversion events."""
    prices: list[int] = []
    stamps: list[int] = []
    for i, p in enumerate(batch):  # validate everything before writing anything
        try:
            prices.append(parse_micros(p.unit_price))
        except MoneyError as exc:
            raise BadRequest(str(exc), field=f"[{i}].unit_price") from None
        stamps.append(_epoch_ms(p.ts, f"[{i}].ts"))
    unknown: list[str] = []
    by_shopper: dict[str, list[tuple[int, int]]] = {}
    events: list[bytes] = []
    for p, price, ts_ms in zip(batch, prices, stamps, strict=True):
        pid = sku_to_pid.get(p.sku)
        if pid is None:
            unknown.append(p.sku)
            continue
        if p.quantity > 0:
            by_shopper.setdefault(p.shopper_id, []).append((pid, ts_ms // 1000))
        events.append(encoder.encode(Event(
            v=SCHEMA_VERSION, id=f"o:{p.order_id}:{p.sku}:{p.quantity}", type="conversion",
            ts=ts_ms, sku=p.sku, price_micros=price, quantity=p.quantity,
            shopper_id=p.shopper_id, store_id=p.store_id or "", order_id=p.order_id)))
    if by_shopper:
        await store.record_purchases(by_shopper)
    if events:
        async with client.pipeline(transaction=False) as pipe:
            for e in events:
                pipe.xadd(events_key, {"e": e}, maxlen=events_maxlen, approximate=True)
            await pipe.execute()
    return Applied(applied=len(events), unknown_skus=list(dict.fromkeys(unknown)))


async def apply_stock(client: aioredis.Redis, sku_to_pid: dict[str, int],
                      batch: list[StockLevel]) -> Applied:
    """``SETRANGE`` per line, then one change-feed entry the workers patch from."""
    unknown: list[str] = []
    lines: list[tuple[str, int, int]] = []
    for s in batch:
        pid = sku_to_pid.get(s.sku)
        if pid is None:
            unknown.append(s.sku)
        else:
            lines.append((s.store_id, pid, min(s.quantity, MAX_QTY)))
    numbers = await store_numbers(client, list(dict.fromkeys(st for st, _, _ in lines)))
    flat: list[int] = []
    async with client.pipeline(transaction=False) as pipe:
        for st, pid, qty in lines:
            pipe.setrange(keys.stock(st), pid * 2, (qty + 1).to_bytes(2, "little"))
            flat += (numbers[st], pid, qty)
        await pipe.execute()
    for start in range(0, len(flat), 30_000):  # bounded feed entries: 10,000 lines each
        await changes.publish(client, "stock", flat[start : start + 30_000])
    return Applied(applied=len(lines), unknown_skus=list(dict.fromkeys(unknown)))
