"""JSON in: decode into a typed Struct, and turn any failure into a 400 naming the field.

Shared by the ad hot path (which passes its module-level decoder), the Starlette routes
(``decode_as``, one cached decoder per type) and settings (which names the setting).
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVar

import msgspec

from exchange.errors import BadRequest

T = TypeVar("T")
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


def decode(data: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    if not data:
        raise BadRequest("request body is empty", code="malformed_json")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc), field=field_of(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="malformed_json") from None


@functools.lru_cache(maxsize=64)
def _decoder_for(kind: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(kind)


def decode_as(data: bytes, kind: type[T]) -> T:
    result: T = decode(data, _decoder_for(kind))
    return result
