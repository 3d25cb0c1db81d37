"""JSON out of Starlette routes and request bodies in, in the error shape of the contract."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from exchange.decoding import decode_as
from exchange.errors import ApiError, BadRequest

T = TypeVar("T")
log = logging.getLogger("endcap.http")
_encoder = msgspec.json.Encoder()


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> Response:
    return Response(_encoder.encode(payload), status_code=status, headers=headers,
                    media_type="application/json")


def error_response(exc: ApiError) -> Response:
    return json_response(exc.body(), status=exc.status)


def error_bytes(exc: ApiError) -> bytes:
    return _encoder.encode(exc.body())


async def read_json(request: Request, kind: type[T], max_bytes: int) -> T:
    return decode_as(await read_body(request, max_bytes), kind)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and (
            len(declared) > 18 or int(declared) > max_bytes):
        raise BadRequest(f"body larger than {max_bytes} bytes", code="body_too_large",
                         status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest(f"body larger than {max_bytes} bytes", code="body_too_large",
                             status=413)
        chunks.append(chunk)
    return b"".join(chunks)
