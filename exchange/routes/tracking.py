"""Beacons: ``/t/i/{token}`` answers 204, ``/t/c/{token}`` redirects; never an error page,
whatever the token (invalid ones are recorded, not billed, and answered the same)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from exchange.runtime import runtime_of

_NO_STORE = {"cache-control": "no-store"}


def _source(request: Request) -> tuple[str | None, str | None]:
    """The beacon's user agent and client address (after trusted-proxy resolution)."""
    client = request.client
    return request.headers.get("user-agent"), client.host if client else None


async def impression(request: Request) -> Response:
    await runtime_of(request).tracker.impression(request.path_params["token"],
                                                 *_source(request))
    return Response(status_code=204, headers=_NO_STORE)


async def click(request: Request) -> Response:
    location = await runtime_of(request).tracker.click(request.path_params["token"],
                                                       *_source(request))
    return RedirectResponse(location, status_code=302, headers=_NO_STORE)


routes = [
    Route("/t/i/{token}", impression, methods=["GET"]),
    Route("/t/c/{token}", click, methods=["GET"]),
]
