"""Operator creates advertisers; the answer carries the advertiser's API key, once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import advertisers
from exchange.auth import require_operator
from exchange.responses import json_response, read_json
from exchange.runtime import runtime_of


async def create_advertiser(request: Request) -> Response:
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    body = await read_json(request, advertisers.AdvertiserIn, rt.settings.max_body_bytes)
    created = await advertisers.create(rt.client, body)
    return json_response(created, status=201)


routes = [Route("/v1/advertisers", create_advertiser, methods=["POST"])]
