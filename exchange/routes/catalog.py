"""Operator catalogue API: bulk upsert and listing of products."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import catalog, changes
from exchange.auth import require_operator
from exchange.errors import BadRequest
from exchange.responses import json_response, read_json
from exchange.runtime import runtime_of
from exchange.tokenizer import category_path, tokens

MAX_LIMIT = 500


async def put_products(request: Request) -> Response:
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    body = await read_json(request, list[catalog.ProductIn], 16 * 1024 * 1024)
    records = await catalog.upsert(rt.client, body)
    if records:  # an empty change would make every worker rebuild its whole index
        await changes.publish(rt.client, "product", [r.pid for r in records])
    return json_response({"upserted": len(records)})


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    # isascii: "²".isdigit() is true but int() refuses it; the length bounds int()'s work.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not lo <= int(raw) <= hi:
        raise BadRequest(f"{name} must be an integer in [{lo}, {hi}]", field=name)
    return int(raw)


async def list_products(request: Request) -> Response:
    """Products in pid order from the worker's index; ``cursor`` is the last pid seen."""
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    limit = _int_param(request, "limit", 50, 1, MAX_LIMIT)
    cursor = _int_param(request, "cursor", 0, 0, 2**31)
    q = tokens(request.query_params.get("q", ""))
    cat = category_path(request.query_params.get("category", ""))
    index = rt.index
    items: list[catalog.ProductOut] = []
    last = None
    for pid in sorted(p for p in index.products if p > cursor):
        if q and not set(q) <= set(index.product_tokens(pid)):
            continue
        if cat and cat[-1] not in index.product_categories(pid):
            continue
        items.append(catalog.to_out(index.products[pid]))
        last = pid
        if len(items) == limit:
            break
    more = last is not None and len(items) == limit and last < max(index.products, default=0)
    return json_response(catalog.ProductPage(items=items, next_cursor=str(last) if more else None))


routes = [
    Route("/v1/catalog/products", put_products, methods=["PUT"]),
    Route("/v1/catalog/products", list_products, methods=["GET"]),
]
