"""Who is calling: the retailer's operator key, or an advertiser's API key.

Missing or unknown key -> 401; a valid key of the wrong role -> 403.
"""

from __future__ import annotations

import hmac

import redis.asyncio as aioredis
from starlette.requests import Request

from exchange import advertisers
from exchange.errors import Forbidden, Unauthorized


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token (Authorization: Bearer <key>)")
    return token.strip()


def is_operator(token: str, operator_key: str) -> bool:
    return hmac.compare_digest(token.encode(), operator_key.encode())


def require_operator(request: Request, operator_key: str) -> None:
    token = bearer(request)
    if is_operator(token, operator_key):
        return
    if token.startswith(advertisers.KEY_PREFIX):
        raise Forbidden("this endpoint needs the operator key")
    raise Unauthorized("invalid key")


async def require_advertiser(request: Request, client: aioredis.Redis, operator_key: str
                             ) -> int:
    token = bearer(request)
    advertiser_id = await advertisers.authenticate(client, token)
    if advertiser_id is not None:
        return advertiser_id
    if is_operator(token, operator_key):
        raise Forbidden("this endpoint needs an advertiser key")
    raise Unauthorized("invalid key")
