"""The OpenAPI 3.1 document, generated from the msgspec Structs the routes decode and
encode, so the published schemas cannot drift from what the server accepts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from exchange.adrequest import AdRequest, AdResponse
from exchange.advertisers import AdvertiserCreated, AdvertiserIn
from exchange.apikeys import KeyCreated, KeyIn, KeyList
from exchange.audit import AuditPage
from exchange.bulkbids import BulkBids, BulkResult
from exchange.campaigns import CampaignIn, CampaignOut, CampaignPatch
from exchange.catalog import ProductIn, ProductPage
from exchange.pacingview import PacingOut
from exchange.reports import AdvertiserReport, CampaignReport
from exchange.signals import Applied, Exposures, PurchaseBatch, SegmentBatch, StockBatch


class ErrorDetail(msgspec.Struct, kw_only=True):
    field: str
    code: str
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    field: str | None = None
    details: list[ErrorDetail] | None = None  # every bad field or row, when several


class Error(msgspec.Struct, kw_only=True):
    error: ErrorBody


class Placement(msgspec.Struct, kw_only=True):
    id: str
    kind: str
    page_type: str
    slots: int
    formats: list[str]
    floor: str
    open_to_dsps: bool


class Upserted(msgspec.Struct, kw_only=True):
    upserted: int


class CampaignList(msgspec.Struct, kw_only=True):
    items: list[CampaignOut]


ERROR_CODES = [
    "malformed_json", "invalid_field", "unknown_placement", "body_too_large",
    "unauthorized", "forbidden", "not_found", "method_not_allowed", "not_ready",
    "last_key", "too_many_keys", "invalid_transition", "precondition_failed",
    "invalid_rows", "bid_below_floor", "bid_above_ceiling", "idempotency_key_reused",
    "idempotency_in_progress", "conflict",
]
_TYPES: list[Any] = [AdRequest, AdResponse, list[ProductIn], ProductPage, AdvertiserIn,
                     AdvertiserCreated, CampaignIn, CampaignPatch, CampaignOut, CampaignList,
                     list[Placement], Upserted, CampaignReport, Error, PacingOut]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: int, body: dict[str, Any] | None, answer: dict[str, Any],
        security: str | None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {str(ok): _json(answer), "4XX": _json(_ref("Error"), "Bad input "
                      "(the `field` names it), auth, or not found; codes: "
                      + ", ".join(ERROR_CODES))},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if security:
        op["security"] = [{security: []}]
    return op


def _header(name: str, description: str, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": schema}


def _key_paths(components: dict[str, Any]) -> dict[str, Any]:
    """API key paths: the advertiser's own (``/v1/keys``) and the operator's for any
    advertiser; adds their schemas to ``components``."""
    (key_in, key_list, key_created), key_components = msgspec.json.schema_components(
        [KeyIn, KeyList, KeyCreated], ref_template="#/components/schemas/{name}")
    components.update(key_components)
    key_id = [{"name": "key_id", "in": "path", "required": True,
               "schema": {"type": "string", "pattern": "^key_[0-9a-f]{16}$",
                          "example": "key_0123456789abcdef"}}]
    advertiser_id = [{"name": "advertiser_id", "in": "path", "required": True,
                      "schema": {"type": "string", "pattern": "^adv_[0-9]+$",
                                 "example": "adv_1"}}]

    def ops(security: str, whose: str, params: list[dict[str, Any]]
            ) -> tuple[dict[str, Any], dict[str, Any]]:
        create = _op(f"Create an API key for {whose}; the secret is in this answer only",
                     201, key_in, key_created, security)
        create["requestBody"]["required"] = False  # no body: a key without a label
        revoke = _op(f"Revoke one of {whose} keys: it stops authenticating at once "
                     "(404 for an id that is not theirs; 409 last_key for their only key)",
                     204, None, {}, security)
        revoke["responses"]["204"] = {"description": "Revoked"}
        listing = {"get": _op(f"List {whose} API keys (ids, prefixes, labels, created and "
                              "last used; never a secret)", 200, None, key_list, security),
                   "post": create}
        if params:
            listing = {k: {**v, "parameters": params} for k, v in listing.items()}
        return listing, {"delete": {**revoke, "parameters": [*params, *key_id]}}

    own, own_one = ops("advertiser", "the calling advertiser's", [])
    named, named_one = ops("operator", "the advertiser's", advertiser_id)
    return {"/v1/keys": own, "/v1/keys/{key_id}": own_one,
            "/v1/advertisers/{advertiser_id}/keys": named,
            "/v1/advertisers/{advertiser_id}/keys/{key_id}": named_one}


def _report_op(summary: str, answer: dict[str, Any], params: list[dict[str, Any]]
               ) -> dict[str, Any]:
    op = _op(summary, 200, None, answer, "advertiser")
    op["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    op["parameters"] = params + [
        {"name": n, "in": "query", "required": False, "schema": s}
        for n, s in (("from", {"type": "string", "example": "2026-11-01"}),
                     ("to", {"type": "string", "example": "2026-11-23"}),
                     ("granularity", {"enum": ["day", "hour"]}),
                     ("breakdown", {"enum": ["sku", "keyword", "placement"],
                                    "description": "rows per value over the range; "
                                                   "granularity=day only"}),
                     ("format", {"enum": ["json", "csv"]}))]
    return op


def _signal_paths(components: dict[str, Any]) -> dict[str, Any]:
    """The retailer's signals and a shopper's exposures (operator key)."""
    (seg, buy, stock, applied, exposures), more = msgspec.json.schema_components(
        [SegmentBatch, PurchaseBatch, StockBatch, Applied, Exposures],
        ref_template="#/components/schemas/{name}")
    components.update(more)
    shopper = [{"name": "shopper_id", "in": "path", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 120,
                           "example": "L000001"}}]
    return {
        "/v1/signals/segments": {"post": _op(
            "Loyalty segment changes per shopper (adds, then removes); used by the "
            "shopper's next auction", 200, seg, applied, "operator")},
        "/v1/signals/purchases": {"post": _op(
            "Purchase lines (online orders, in-store till lines by loyalty id): purchase "
            "suppression, and conversions for attribution; unknown SKUs are listed and "
            "skipped", 200, buy, applied, "operator")},
        "/v1/signals/stock": {"post": _op(
            "Stock per SKU and store (store_id \"online\" for the web shop); on every "
            "worker within the change feed's latency", 200, stock, applied, "operator")},
        "/v1/shoppers/{shopper_id}/exposures": {"get": {
            **_op("What the shopper was shown: per SKU and campaign, impressions, clicks, "
                  "first and last seen, purchased since", 200, None, exposures, "operator"),
            "parameters": shopper}},
    }


def document() -> dict[str, Any]:
    (schemas_of, components) = msgspec.json.schema_components(_TYPES,
                                                             ref_template="#/components/schemas/{name}")
    ad_req, ad_resp, products_in, page, adv_in, adv_out, c_in, c_patch, c_out, c_list, \
        placements, upserted, report, _, pacing = schemas_of
    (audit_page, bulk_in, bulk_out, adv_report), audit_components = \
        msgspec.json.schema_components([AuditPage, BulkBids, BulkResult, AdvertiserReport],
                                       ref_template="#/components/schemas/{name}")
    components.update(audit_components)
    campaign_id = [{"name": "campaign_id", "in": "path", "required": True,
                    "schema": {"type": "string", "example": "cmp_1"}}]
    token = [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}]
    # allowEmptyValue: an empty parameter (a submitted blank form field) means "not given".
    listing = [{"name": n, "in": "query", "required": False, "allowEmptyValue": True, "schema": s}
               for n, s in (("q", {"type": "string"}), ("category", {"type": "string"}),
                            ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                            ("cursor", {"type": "string", "description": "next_cursor"}))]
    paths: dict[str, Any] = {
        "/v1/ads": {"post": _op("Sponsored-product ads for a page", 200, ad_req, ad_resp, None)},
        "/t/i/{token}": {"get": {"summary": "Impression beacon", "parameters": token,
                                 "responses": {"204": {"description": "Recorded (or not)"}}}},
        "/t/c/{token}": {"get": {"summary": "Click: records, charges, redirects",
                                 "parameters": token,
                                 "responses": {"302": {"description": "To the landing URL"}}}},
        "/v1/placements": {"get": _op("Placements", 200, None, placements, None)},
        "/v1/catalog/products": {
            "put": _op("Bulk upsert products (all or nothing)", 200, products_in, upserted,
                       "operator"),
            "get": {**_op("List products", 200, None, page, "operator"),
                    "parameters": listing},
        },
        "/v1/advertisers": {"post": _op("Create an advertiser; returns its API key once", 201,
                                        adv_in, adv_out, "operator")},
        "/v1/campaigns": {
            "post": {**_op("Create a campaign (Idempotency-Key: a retry returns the first "
                           "answer)", 201, c_in, c_out, "advertiser"),
                     "parameters": [_header("Idempotency-Key", "1-255 printable ASCII",
                                                    r"^[\x21-\x7e]{1,255}$")]},
            "get": _op("The advertiser's campaigns", 200, None, c_list, "advertiser"),
        },
        "/v1/campaigns/{campaign_id}": {
            "get": {**_op("One campaign", 200, None, c_out, "advertiser"),
                    "parameters": campaign_id},
            "patch": {**_op("Partial update, validated whole, atomic; with If-Match (the "
                            "ETag of a GET) 412 if it changed since", 200, c_patch, c_out,
                            "advertiser"),
                      "parameters": [*campaign_id, _header("If-Match", "an ETag, or *")]},
        },
        "/v1/campaigns/{campaign_id}/pacing": {"get": {
            **_op("Pacing now: spend against the target curve, throttle, projected "
                  "exhaustion", 200, None, pacing, "advertiser"),
            "parameters": campaign_id}},
        "/v1/campaigns/{campaign_id}/bids": {"put": {
            **_op("Bulk upsert/remove of up to 10,000 SKU bids, all or nothing; 400 "
                  "invalid_rows lists every bad row in error.details", 200, bulk_in, bulk_out,
                  "advertiser"),
            "parameters": [*campaign_id, _header("If-Match", "an ETag, or *")]}},
        "/v1/campaigns/{campaign_id}/audit": {"get": {
            **_op("Change log: who, when, before/after, newest first", 200, None,
                  audit_page, "advertiser"),
            "parameters": campaign_id}},
        "/v1/reports/campaigns/{campaign_id}": {"get": _report_op(
            "Campaign report: impressions, clicks, spend, CTR, CPC, average position, "
            "invalid traffic removed; by day or hour, or broken down by SKU, search term or "
            "placement", report, campaign_id)},
        "/v1/reports/advertiser": {"get": _report_op(
            "The same report summed over the caller's campaigns (or those in campaign_ids; "
            "another tenant's id is a 404)", adv_report, [
                {"name": "campaign_ids", "in": "query", "required": False,
                 "schema": {"type": "string", "pattern": r"^cmp_[0-9]+(,cmp_[0-9]+)*$",
                            "example": "cmp_1"}}])},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
        "/readyz": {"get": {"summary": "Readiness (index loaded, Redis up)",
                            "responses": {"200": {"description": "Ready"},
                                          "503": {"description": "Not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "text/plain"}}}},
    }
    paths.update(_key_paths(components))
    paths.update(_signal_paths(components))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Endcap", "version": "1",
                 "description": "Retail-media ad exchange. Money is a decimal string in "
                                "currency units; errors are {error: {code, message, field}}."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "operator": {"type": "http", "scheme": "bearer",
                             "description": "The retailer's operator key"},
                "advertiser": {"type": "http", "scheme": "bearer",
                               "description": "An advertiser's API key (ek_...)"},
            },
        },
    }


def deployed(placements: Iterable[str]) -> dict[str, Any]:
    """The document as one deployment serves it: its placement ids are the enum of
    ``AdRequest.placement`` (a client, the docs page and the fuzz test see the real ones)."""
    doc = document()
    doc["components"]["schemas"]["AdRequest"]["properties"]["placement"]["enum"] = \
        sorted(placements)
    return doc
