"""Stock per product and store, in memory on every worker; stored packed in Redis.

Redis: ``ex:stock:<store>`` is a little-endian uint16 string indexed by product id, where
0 means *unknown* (never reported; ``SETRANGE`` pads gaps with zeros) and ``q + 1`` means a
quantity of ``q`` (capped at ``MAX_QTY``). ``ex:stores`` numbers the stores densely from
0 (``online`` is the web shop's stock). ``POST /v1/signals/stock`` writes both and appends a
``stock`` entry to the change feed; every worker patches its table from it.

In memory: one C-contiguous uint16 array ``(store count, product capacity)`` holding the
quantity, or ``STOCK_UNKNOWN`` (65535): a row per store, so an auction's lookups stay in
one or two contiguous rows. The auction kernel reads it directly (``auction.selection``:
unknown = available, 0 = out of stock).
"""

from __future__ import annotations

import numpy as np
import redis.asyncio as aioredis

from auction.selection import STOCK_UNKNOWN
from exchange import keys

ONLINE = "online"
MAX_QTY = 65_533  # stored as q + 1 < 65535, so it never reads as unknown


def encode_quantities(qty: np.ndarray) -> bytes:
    """Known quantities as stored (q + 1, little-endian uint16)."""
    return (np.minimum(qty.astype(np.int64), MAX_QTY) + 1).astype("<u2").tobytes()


def decode_quantities(raw: bytes) -> np.ndarray:
    """Stored bytes -> quantities with ``STOCK_UNKNOWN`` for never-reported products."""
    stored = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<u2").astype(np.int32) - 1
    stored[stored < 0] = STOCK_UNKNOWN
    return stored.astype(np.uint16)


class StockTable:
    """Quantities by (product id, store column)."""

    def __init__(self, products: int = 1024, stores: dict[str, int] | None = None) -> None:
        self.columns: dict[str, int] = dict(stores or {})
        width = max(self.columns.values(), default=-1) + 1
        self.array = np.full((max(width, 1), max(products, 1)), STOCK_UNKNOWN, dtype=np.uint16)
        self.version = 0

    def column(self, store: str | None) -> int:
        """The store's column, -1 when it never reported stock."""
        return self.columns.get(store, -1) if store else -1

    def _fit(self, pid: int, col: int) -> None:
        cols, pids = self.array.shape
        if pid < pids and col < cols:
            return
        grown = np.full((max(cols, col + 1), max(pids, pid + 1 + pids // 2)), STOCK_UNKNOWN,
                        dtype=np.uint16)
        grown[:cols, :pids] = self.array
        self.array = grown

    def set_column(self, store: str, col: int, quantities: np.ndarray) -> None:
        self.columns[store] = col
        self._fit(max(len(quantities) - 1, 0), col)
        self.array[col, : len(quantities)] = quantities
        self.version += 1

    def apply(self, col: int, pid: int, qty: int) -> None:
        """One reported quantity (``STOCK_UNKNOWN`` clears it)."""
        if pid < 0 or col < 0:
            return
        self._fit(pid, col)
        self.array[col, pid] = min(qty, STOCK_UNKNOWN)
        self.version += 1


async def load(client: aioredis.Redis, products: int) -> StockTable:
    """Every store's stock from Redis (start-up and full reloads)."""
    numbers = {k.decode(): int(v) for k, v in (await client.hgetall(keys.STORES)).items()}
    table = StockTable(products, numbers)
    names = sorted(numbers, key=numbers.__getitem__)
    for start in range(0, len(names), 50):
        chunk = names[start : start + 50]
        for store, raw in zip(chunk, await client.mget([keys.stock(s) for s in chunk]),
                              strict=True):
            if raw:
                table.set_column(store, numbers[store], decode_quantities(raw))
    return table


_NUMBER_LUA = """
local out = {}
for i, store in ipairs(ARGV) do
  local n = redis.call("HGET", KEYS[1], store)
  if not n then
    n = redis.call("HLEN", KEYS[1])
    redis.call("HSET", KEYS[1], store, n)
  end
  out[i] = tonumber(n)
end
return out
"""


async def store_numbers(client: aioredis.Redis, stores: list[str]) -> dict[str, int]:
    """Numbers of ``stores``, new ones assigned densely in one atomic script."""
    if not stores:
        return {}
    got = await client.eval(_NUMBER_LUA, 1, keys.STORES, *stores)
    return {s: int(n) for s, n in zip(stores, got, strict=True)}
