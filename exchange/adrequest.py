"""Wire shapes of ``POST /v1/ads`` (the storefront contract in DESIGN.md).

Unknown fields are ignored (storefronts send more than we read); every field we read
is typed and bounded, so a bad value is a 400 that names it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from exchange.settings import PageType

Short = Annotated[str, msgspec.Meta(max_length=128)]


class Page(msgspec.Struct, kw_only=True, gc=False):
    type: PageType
    query: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    category: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    sku: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class Shopper(msgspec.Struct, kw_only=True, gc=False):
    id: Short | None = None
    loyalty_id: Short | None = None


class Device(msgspec.Struct, kw_only=True, gc=False):
    # The shopper's browser, as the storefront saw it (default: this request's own).
    ua: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    ip: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    id: Short | None = None  # a stable device id, if the storefront has one


class AdRequest(msgspec.Struct, kw_only=True, gc=False):
    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    placement: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    page: Page
    shopper: Shopper | None = None
    store_id: Short | None = None
    device: Device | None = None
    slots: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None


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


decoder = msgspec.json.Decoder(AdRequest)
encoder = msgspec.json.Encoder()
