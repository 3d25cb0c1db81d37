"""Operations and public configuration: health, readiness, metrics, placements."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange.openapi import document
from exchange.responses import json_response
from exchange.runtime import runtime_of


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    rt = runtime_of(request)
    if not rt.ready:
        return json_response({"status": "starting"}, status=503)
    try:
        await rt.client.ping()
    except Exception as exc:  # any failure to reach Redis means not ready
        return json_response({"status": "redis_unavailable", "detail": str(exc)}, status=503)
    return json_response({"status": "ready", "index": rt.index.stats()})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(runtime_of(request).metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


async def placements(request: Request) -> Response:
    rt = runtime_of(request)
    return json_response([
        {"id": p.id, "kind": p.kind, "page_type": p.page_type, "slots": p.slots,
         "formats": p.formats, "floor": p.floor, "open_to_dsps": p.open_to_dsps}
        for p in rt.placements.values()
    ])


_OPENAPI: bytes | None = None


async def openapi(request: Request) -> Response:
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = bytes(json_response(document()).body)
    return Response(_OPENAPI, media_type="application/json")


routes = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/v1/placements", placements, methods=["GET"]),
]
