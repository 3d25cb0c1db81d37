"""Operations and public configuration: health, readiness, metrics, placements, and the
API reference (``/openapi.json`` and the Swagger UI page at ``/docs``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from exchange.openapi import deployed
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


async def openapi(request: Request) -> Response:
    state = request.app.state
    if getattr(state, "openapi", None) is None:  # built once per app
        state.openapi = bytes(json_response(deployed(runtime_of(request).placements)).body)
    return Response(state.openapi, media_type="application/json")


def _swagger_ui_assets() -> Path:
    # Only the package's static files are used (its framework glue adds routes itself);
    # find_spec locates them without importing it.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency in pyproject.toml)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


DOCS_ASSETS = "/docs/assets"
# Served from the wheel's files, not a CDN: the docs work on an offline machine.
_DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Endcap API</title>
<link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{DOCS_ASSETS}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  displayRequestDuration: true, persistAuthorization: true,
}});
</script>
</body>
</html>
"""


async def docs(request: Request) -> Response:
    return HTMLResponse(_DOCS_PAGE)


routes = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Mount(DOCS_ASSETS, StaticFiles(directory=_swagger_ui_assets()), name="docs-assets"),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/v1/placements", placements, methods=["GET"]),
]
