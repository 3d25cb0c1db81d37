"""The ASGI application: composition root.

``POST /v1/ads`` is served by a plain ASGI callable (no Starlette request object, no
routing, no middleware: Starlette's request/body machinery alone costs ~25 µs, a third
of the whole budget); everything else goes through Starlette routes. The lifespan
starts and stops the :class:`~exchange.runtime.Runtime`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from exchange.errors import ApiError, BadRequest
from exchange.logs import configure_logging
from exchange.responses import error_bytes, error_response, json_response
from exchange.routes import advertisers, campaigns, catalog, ops, reports, signals, tracking
from exchange.runtime import Runtime
from exchange.settings import Settings, load_placements, load_settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
log = logging.getLogger("endcap.app")

_JSON_HEADERS = [(b"content-type", b"application/json")]
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
# Headers by which browsers mark speculative loads (prefetch, prerender, link previews).
_PURPOSE_HEADERS = frozenset((b"purpose", b"sec-purpose", b"x-purpose", b"x-moz"))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return json_response({"error": {"code": code, "message": str(exc.detail)}},
                         status=exc.status_code, headers=exc.headers)


async def _bug(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return json_response({"error": {"code": "internal", "message": "internal error"}},
                         status=500)


class Exchange:
    """The ASGI app: the ad hot path in front of a Starlette app for everything else."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        placements = load_placements(settings.resolve(settings.placements_file))
        self.runtime = Runtime(settings, placements, redis_url)
        self._max_body = settings.max_body_bytes
        self._public_url = settings.public_url.rstrip("/")
        self.starlette = Starlette(
            routes=[*ops.routes, *catalog.routes, *advertisers.routes, *campaigns.routes,
                    *tracking.routes, *reports.routes, *signals.routes],
            exception_handlers={ApiError: _api_error, HTTPException: _http_error,
                                Exception: _bug},
            lifespan=self._lifespan,
        )
        self.starlette.state.runtime = self.runtime

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.runtime.start()
        try:
            yield
        finally:
            await self.runtime.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/ads":
            if scope["method"] == "POST":
                await self._ads(scope, receive, send)
            else:
                await self._reply(send, 405, error_bytes(ApiError(
                    "use POST", code="method_not_allowed", status=405)))
            return
        await self.starlette(scope, receive, send)

    async def _ads(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = b""
        ua: str | None = None
        purpose: str | None = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"user-agent":
                ua = value.decode("latin-1")
            elif name in _PURPOSE_HEADERS:
                purpose = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit() and (
                    len(value) > 18 or int(value) > self._max_body):
                await self._reply(send, 413, error_bytes(BadRequest(
                    f"body larger than {self._max_body} bytes", code="body_too_large",
                    status=413)))
                return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self._max_body:
                await self._reply(send, 413, error_bytes(BadRequest(
                    f"body larger than {self._max_body} bytes", code="body_too_large",
                    status=413)))
                return
        runtime = self.runtime
        if not runtime.ready:
            await self._reply(send, 503, error_bytes(ApiError(
                "starting up", code="not_ready", status=503)))
            return
        base = self._public_url or f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}"
        try:
            client = scope.get("client")
            ads = runtime.ads
            pending = ads.begin(body, base, ua, client[0] if client else None, purpose)
            if isinstance(pending, bytes):
                payload = pending
            else:  # one round trip for the shopper's state, then the auction
                payload = ads.finish(pending, await runtime.shopper_state(pending.shopper))
            status = 200
        except ApiError as exc:
            payload, status = error_bytes(exc), exc.status
        except Exception:
            log.exception("unhandled error in POST /v1/ads")
            payload = b'{"error":{"code":"internal","message":"internal error"}}'
            status = 500
        await self._reply(send, status, payload)

    @staticmethod
    async def _reply(send: Send, status: int, payload: bytes) -> None:
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
        })
        await send({"type": "http.response.body", "body": payload})


def create_app() -> Exchange:
    """Factory for uvicorn (``--factory``): settings from the environment."""
    settings = load_settings()
    configure_logging(settings.log_level)
    redis_url = os.environ.get("ENDCAP_REDIS_URL_RESOLVED") or settings.redis_url
    if not redis_url:
        raise RuntimeError("no Redis URL: start through `python -m exchange` or set REDIS_URL")
    return Exchange(settings, redis_url)
