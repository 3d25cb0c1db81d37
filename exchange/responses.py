"""JSON in and out of Starlette routes, and the error shape of the public contract."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from exchange.errors import ApiError, BadRequest

T = TypeVar("T")
log = logging.getLogger("endcap.http")
_encoder = msgspec.json.Encoder()


_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")


def field_of(exc: msgspec.ValidationError) -> str:
    """The offending field as a path: ``"Expected `str`, got `int` - at `$[3].price`"`` ->
    ``"[3].price"``; ``"Object missing required field `sku` - at `$[0]`"`` -> ``"[0].sku"``."""
    text = str(exc)
    path = ""
    marker = " - at `$"
    if marker in text:
        text, path = text.rsplit(marker, 1)
        path = path.rstrip("`").lstrip(".")
    named = _NAMED.search(text)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> Response:
    return Response(_encoder.encode(payload), status_code=status, headers=headers,
                    media_type="application/json")


def error_response(exc: ApiError) -> Response:
    return json_response(exc.body(), status=exc.status)


def error_bytes(exc: ApiError) -> bytes:
    return _encoder.encode(exc.body())


def decode(data: bytes, kind: type[T]) -> T:
    if not data:
        raise BadRequest("request body is empty", code="malformed_json")
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc), field=field_of(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="malformed_json") from None


async def read_json(request: Request, kind: type[T], max_bytes: int) -> T:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
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
    return decode(b"".join(chunks), kind)
