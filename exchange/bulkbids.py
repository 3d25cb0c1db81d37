"""Bulk SKU bids: up to 10,000 rows in one request, all or nothing, every bad row named.

``PUT /v1/campaigns/{id}/bids`` takes ``{"upsert": [{"sku", "bid"}, ...], "remove":
[sku, ...]}``. Every row is checked before anything is written (unknown SKU, bad or
out-of-range money, a SKU twice, a SKU both upserted and removed, more than
``MAX_PRODUCTS`` after the merge); any bad row rejects the whole request with 400
``invalid_rows`` and ``error.details`` listing each bad row's field, code and message, and
the campaign stays exactly as it was. A good request is merged into the stored record
without re-validating the unchanged rows, so 10,000 rows cost one SKU lookup round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec

from exchange.campaigns import (
    MAX_PRODUCTS,
    BidRecord,
    CampaignRecord,
    ProductBid,
    check_bid,
)
from exchange.catalog import Sku
from exchange.errors import BadRequest
from exchange.money import MoneyError, parse_micros

MAX_ROWS = 10_000


class BulkBids(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    upsert: Annotated[list[ProductBid], msgspec.Meta(max_length=MAX_ROWS)] = []
    remove: Annotated[list[Sku], msgspec.Meta(max_length=MAX_ROWS)] = []


class BulkResult(msgspec.Struct, kw_only=True):
    campaign_id: str
    version: int
    added: int
    updated: int
    unchanged: int
    removed: int
    products: int  # SKUs the campaign bids on now


def merge(record: CampaignRecord, body: BulkBids, pids: dict[str, int],
          limits: Callable[[int], tuple[int, int]] | None = None
          ) -> tuple[list[BidRecord], BulkResult]:
    """The campaign's new bid list, or BadRequest naming every bad row (``pids``: the
    catalogue's product id of each SKU in the request that exists; ``limits``: the
    retailer's (min, max) bid of a product). A row without a bid takes the campaign's
    default bid."""
    details: list[dict[str, str]] = []

    def bad(field: str, code: str, message: str) -> None:
        if len(details) < 1000:  # enough to fix a file; the rest would only be noise
            details.append({"field": field, "code": code, "message": message})

    seen: dict[str, int] = {}
    parsed: list[tuple[str, int, int, bool]] = []  # (sku, pid, micros, explicit)
    for i, row in enumerate(body.upsert):
        if row.sku in seen:
            bad(f"upsert[{i}].sku", "duplicate_sku", f"{row.sku!r} is also upsert[{seen[row.sku]}]")
            continue
        seen[row.sku] = i
        pid = pids.get(row.sku)
        if pid is None:
            bad(f"upsert[{i}].sku", "unknown_sku", f"no product {row.sku!r} in the catalogue")
        if row.bid is None:
            if not record.default_bid_micros:
                bad(f"upsert[{i}].bid", "missing_bid", "needs a bid (no default_bid)")
                continue
            micros = record.default_bid_micros
        else:
            try:
                micros = parse_micros(row.bid)
            except MoneyError as exc:
                bad(f"upsert[{i}].bid", "invalid_money", str(exc))
                continue
        if micros <= 0:
            bad(f"upsert[{i}].bid", "invalid_money", "must be greater than zero")
            continue
        if pid is None:
            continue
        try:
            check_bid(micros, limits(pid) if limits else None, f"upsert[{i}].bid")
        except BadRequest as exc:
            bad(f"upsert[{i}].bid", exc.code, exc.message)
            continue
        parsed.append((row.sku, pid, micros, row.bid is not None))
    removing: set[str] = set()
    for i, sku in enumerate(body.remove):
        if sku in seen:
            bad(f"remove[{i}]", "conflicting_rows", f"{sku!r} is also upserted")
        elif sku in removing:
            bad(f"remove[{i}]", "duplicate_sku", f"{sku!r} listed twice")
        removing.add(sku)

    current = {b.sku: b for b in record.bids}
    added = updated = unchanged = 0
    for sku, _, micros, _ in parsed:
        old = current.get(sku)
        if old is None:
            added += 1
        elif old.bid_micros == micros:
            unchanged += 1
        else:
            updated += 1
    removed = sum(1 for sku in removing if sku in current)
    total = len(current) + added - removed
    if total > MAX_PRODUCTS:
        bad("upsert", "too_many_products",
            f"the campaign would bid on {total} SKUs (at most {MAX_PRODUCTS})")
    if details:
        raise BadRequest(f"{len(details)} bad row(s); nothing was changed",
                         field=details[0]["field"], code="invalid_rows", details=details)

    merged = {sku: b for sku, b in current.items() if sku not in removing}
    for sku, pid, micros, explicit in parsed:
        merged[sku] = BidRecord(sku, pid, micros, explicit)
    result = BulkResult(campaign_id="", version=0, added=added, updated=updated,
                        unchanged=unchanged, removed=removed, products=len(merged))
    return list(merged.values()), result
