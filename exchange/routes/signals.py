"""Retailer signals (operator key): segments, purchases, stock; a shopper's exposures."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import keys, signals
from exchange.auth import require_operator
from exchange.campaigns import public_id
from exchange.errors import ApiError, BadRequest
from exchange.responses import json_response, read_json
from exchange.runtime import runtime_of
from exchange.shoppers import parse_state

MAX_BODY = 32 * 1024 * 1024


async def post_segments(request: Request) -> Response:
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    body = await read_json(request, signals.SegmentBatch, MAX_BODY)
    if rt.resp is None:
        raise ApiError("starting up", code="not_ready", status=503)
    n = await signals.apply_segments(rt.resp, body)
    return json_response(signals.Applied(applied=n))


async def post_purchases(request: Request) -> Response:
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    body = await read_json(request, signals.PurchaseBatch, MAX_BODY)
    out = await signals.apply_purchases(
        rt.client, rt.shoppers, rt.index.sku_to_pid, body, keys.EVENTS,
        rt.settings.event_stream_maxlen)
    return json_response(out)


async def post_stock(request: Request) -> Response:
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    body = await read_json(request, signals.StockBatch, MAX_BODY)
    return json_response(await signals.apply_stock(rt.client, rt.index.sku_to_pid, body))


async def get_exposures(request: Request) -> Response:
    """Per product and campaign: impressions, clicks, first/last seen, purchased since."""
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    shopper = request.path_params["shopper_id"]
    if not 0 < len(shopper) <= 120:
        raise BadRequest("shopper id must be 1 to 120 characters", field="shopper_id")
    async with rt.client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.shopper_exposures(shopper))
        pipe.hgetall(keys.shopper(shopper))
        detail, hot = await pipe.execute()
    bought = parse_state(hot).purchases
    products = rt.index.products
    out: list[signals.Exposure] = []
    for name, value in detail.items():
        try:
            pid_s, cid_s = name.split(b":")
            imps, clicks, last, first = (int(x) for x in value.split(b" "))
        except ValueError:
            continue
        pid = int(pid_s)
        product = products.get(pid)
        out.append(signals.Exposure(
            sku=product.sku if product else f"#{pid}", campaign_id=public_id(int(cid_s)),
            impressions=imps, clicks=clicks, first_seen=first, last_seen=last,
            purchased_since=bought.get(pid, 0) * 1000 >= first))
    out.sort(key=lambda e: -e.last_seen)
    return json_response(signals.Exposures(shopper_id=shopper, exposures=out))


routes = [
    Route("/v1/signals/segments", post_segments, methods=["POST"]),
    Route("/v1/signals/purchases", post_purchases, methods=["POST"]),
    Route("/v1/signals/stock", post_stock, methods=["POST"]),
    Route("/v1/shoppers/{shopper_id}/exposures", get_exposures, methods=["GET"]),
]
