"""The HTTP floor of PERFORMANCE.md: the least work any ad handler must do.

A minimal Starlette app with one ``POST /v1/ads`` route that reads the JSON body
(~0.3-1 KB), decodes it into a msgspec Struct shaped like the ad request and encodes a
~1.5 KB response Struct shaped like four sponsored-product ads with signed-looking
tracking URLs. No store, no auction, no tokens are signed. ``bench.py`` serves it with
the same uvicorn settings as the exchange (uvloop, httptools, no access log, one worker,
pinned to one CPU) and divides the exchange's throughput by this one's.

``--stand-in`` adds what a load generator needs around ``/v1/ads`` (a synthetic
``GET /v1/catalog/products`` listing and the ``/t/i`` and ``/t/c`` beacons) so that
``bench.py --target-floor-twice`` and the locustfile can be tried without the exchange.
The floor measurement itself never uses ``--stand-in``.

    python loadtest/floor.py --host 127.0.0.1 --port 8099 [--stand-in]
"""

from __future__ import annotations

import argparse
import hashlib
import random
from typing import Literal

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# --- shapes (close to the exchange's ad request and answer) -----------------------------


class Page(msgspec.Struct, kw_only=True, gc=False):
    type: Literal["search", "product", "category", "home", "in_store"]
    query: str | None = None
    category: str | None = None
    sku: str | None = None


class Shopper(msgspec.Struct, kw_only=True, gc=False):
    id: str | None = None
    loyalty_id: str | None = None


class Device(msgspec.Struct, kw_only=True, gc=False):
    ua: str | None = None
    ip: str | None = None


class AdRequest(msgspec.Struct, kw_only=True, gc=False):
    placement: str
    page: Page
    request_id: str | None = None
    shopper: Shopper | None = None
    store_id: str | None = None
    device: Device | None = None
    slots: int | None = None


class ProductCard(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    title: str
    brand: str
    price: str
    image_url: str | None = None


class Ad(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    slot: int
    kind: str
    campaign_id: str
    sku: str | None = None
    product: ProductCard | None = None
    impression_url: str
    click_url: str


class AdResponse(msgspec.Struct, kw_only=True, gc=False):
    request_id: str
    ads: list[Ad]


_decoder = msgspec.json.Decoder(AdRequest)
_encoder = msgspec.json.Encoder()


def _token(seed: str) -> str:
    # About the length of a real token: base64url payload + "." + 43-char HMAC-SHA256.
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:24]}.{digest[:43]}"


# Four fixed ads; the route copies them into a fresh response each time.
_ADS = [
    (
        f"cmp_{1000 + i:06d}",
        f"SKU-{31337 + i * 7:06d}",
        ProductCard(title=f"Organic Oat Milk Barista {i}", brand="Oatly", price="4.49"),
        _token(f"i{i}"),
        _token(f"c{i}"),
    )
    for i in range(4)
]


def _answer(request_id: str) -> AdResponse:
    return AdResponse(
        request_id=request_id,
        ads=[
            Ad(
                slot=i,
                kind="sponsored_product",
                campaign_id=cid,
                sku=sku,
                product=card,
                impression_url=f"http://127.0.0.1:8080/t/i/{imp}",
                click_url=f"http://127.0.0.1:8080/t/c/{clk}",
            )
            for i, (cid, sku, card, imp, clk) in enumerate(_ADS)
        ],
    )


# --- the floor ----------------------------------------------------------------------------


async def ads(request: Request) -> Response:
    try:
        req = _decoder.decode(await request.body())
    except msgspec.ValidationError as exc:
        return Response(
            _encoder.encode({"error": {"code": "invalid", "message": str(exc)}}),
            status_code=422,
            media_type="application/json",
        )
    except msgspec.DecodeError as exc:
        return Response(
            _encoder.encode({"error": {"code": "bad_json", "message": str(exc)}}),
            status_code=400,
            media_type="application/json",
        )
    body = _encoder.encode(_answer(req.request_id or "r-0000000000000000"))
    return Response(body, media_type="application/json")


async def readyz(request: Request) -> Response:
    return Response(b'{"ready":true}', media_type="application/json")


# --- stand-in extras (never part of the floor measurement) --------------------------------

_WORDS = (
    "oat milk almond organic whole wheat bread greek yogurt dark roast coffee sparkling "
    "water peanut butter crunchy pasta sauce basil olive oil extra virgin cereal honey "
    "granola chocolate chip cookies cheddar cheese shredded baby spinach frozen pizza"
).split()
_BRANDS = ["Oatly", "Silk", "Fage", "Barilla", "Kind", "Chobani", "Tillamook", "Lavazza"]
_CATEGORIES = ["Dairy Alternatives", "Bakery", "Yogurt", "Coffee", "Pantry", "Snacks"]


def _catalog(n: int = 1200, seed: int = 7) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    return [
        {
            "sku": f"SKU-{i:06d}",
            "title": " ".join(rnd.sample(_WORDS, rnd.randint(2, 5))).title(),
            "brand": rnd.choice(_BRANDS),
            "category": rnd.choice(_CATEGORIES),
            "price": f"{rnd.uniform(0.5, 30):.2f}",
        }
        for i in range(n)
    ]


_CATALOG = _catalog()


async def catalog(request: Request) -> Response:
    limit = min(int(request.query_params.get("limit", "100")), 500)
    start = int(request.query_params.get("cursor") or 0)
    items = _CATALOG[start : start + limit]
    nxt = start + limit
    return Response(
        _encoder.encode({"items": items, "next_cursor": str(nxt) if nxt < len(_CATALOG) else None}),
        media_type="application/json",
    )


async def impression(request: Request) -> Response:
    return Response(status_code=204)


async def click(request: Request) -> Response:
    return Response(status_code=302, headers={"location": "https://shop.example/p"})


def build_app(*, stand_in: bool = False) -> Starlette:
    # /v1/ads is the first route, so routing costs the floor one path match.
    routes = [Route("/v1/ads", ads, methods=["POST"]), Route("/readyz", readyz)]
    if stand_in:
        routes += [
            Route("/v1/catalog/products", catalog),
            Route("/t/i/{token}", impression),
            Route("/t/c/{token}", click),
        ]
    return Starlette(routes=routes)


app = build_app()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--stand-in", action="store_true", help="add catalogue and beacons")
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(stand_in=args.stand_in),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
