"""Operator creates advertisers; the answer carries the advertiser's API key, once.

API keys: an advertiser lists, creates and revokes its own under ``/v1/keys`` (with any
of its live keys); the operator does the same for any advertiser under
``/v1/advertisers/{advertiser_id}/keys``. Rotation is create, switch, revoke.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import advertisers, apikeys
from exchange.auth import require_advertiser, require_operator
from exchange.decoding import decode_as
from exchange.errors import NotFound
from exchange.responses import json_response, read_body, read_json
from exchange.runtime import Runtime, runtime_of

KEY_BODY_MAX = 4096
Whose = Callable[[Request, Runtime], Awaitable[int]]
Endpoint = Callable[[Request], Awaitable[Response]]


async def create_advertiser(request: Request) -> Response:
    rt = runtime_of(request)
    require_operator(request, rt.settings.operator_key)
    body = await read_json(request, advertisers.AdvertiserIn, rt.settings.max_body_bytes)
    created = await advertisers.create(rt.client, body)
    return json_response(created, status=201)


async def _caller(request: Request, rt: Runtime) -> int:
    """The advertiser whose key authenticates the request (the operator key: 403)."""
    return await require_advertiser(request, rt.client, rt.settings.operator_key)


async def _named(request: Request, rt: Runtime) -> int:
    """The advertiser in the path, for the operator (an advertiser key: 403)."""
    require_operator(request, rt.settings.operator_key)
    advertiser_id = advertisers.parse_public_id(request.path_params["advertiser_id"])
    if advertiser_id is None or not await advertisers.exists(rt.client, advertiser_id):
        raise NotFound("advertiser not found")
    return advertiser_id


def _list_keys(whose: Whose) -> Endpoint:
    async def list_keys(request: Request) -> Response:
        rt = runtime_of(request)
        advertiser_id = await whose(request, rt)
        await apikeys.adopt_all(rt.client)
        return json_response(await apikeys.listing(rt.client, advertiser_id))
    return list_keys


def _create_key(whose: Whose) -> Endpoint:
    async def create_key(request: Request) -> Response:
        rt = runtime_of(request)
        advertiser_id = await whose(request, rt)
        raw = await read_body(request, KEY_BODY_MAX)
        body = decode_as(raw, apikeys.KeyIn) if raw.strip() else apikeys.KeyIn()
        await apikeys.adopt_all(rt.client)
        created = await apikeys.create(rt.client, advertiser_id, body.label)
        return json_response(created, status=201)
    return create_key


def _revoke_key(whose: Whose) -> Endpoint:
    async def revoke_key(request: Request) -> Response:
        rt = runtime_of(request)
        advertiser_id = await whose(request, rt)
        await apikeys.adopt_all(rt.client)
        await apikeys.revoke(rt.client, advertiser_id, request.path_params["key_id"])
        return Response(status_code=204)
    return revoke_key


routes = [
    Route("/v1/advertisers", create_advertiser, methods=["POST"]),
    Route("/v1/keys", _list_keys(_caller), methods=["GET"]),
    Route("/v1/keys", _create_key(_caller), methods=["POST"]),
    Route("/v1/keys/{key_id}", _revoke_key(_caller), methods=["DELETE"]),
    Route("/v1/advertisers/{advertiser_id}/keys", _list_keys(_named), methods=["GET"]),
    Route("/v1/advertisers/{advertiser_id}/keys", _create_key(_named), methods=["POST"]),
    Route("/v1/advertisers/{advertiser_id}/keys/{key_id}", _revoke_key(_named),
          methods=["DELETE"]),
]
