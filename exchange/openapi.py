"""The OpenAPI 3.1 document, generated from the msgspec Structs the routes decode and
encode, so the published schemas cannot drift from what the server accepts."""

from __future__ import annotations

from typing import Any

import msgspec

from exchange.adrequest import AdRequest, AdResponse
from exchange.advertisers import AdvertiserCreated, AdvertiserIn
from exchange.audit import AuditPage
from exchange.bulkbids import BulkBids, BulkResult
from exchange.campaigns import CampaignIn, CampaignOut, CampaignPatch
from exchange.catalog import ProductIn, ProductPage
from exchange.pacingview import PacingOut
from exchange.reports import CampaignReport


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    field: str | None = None


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


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    (schemas_of, components) = msgspec.json.schema_components(_TYPES,
                                                             ref_template="#/components/schemas/{name}")
    ad_req, ad_resp, products_in, page, adv_in, adv_out, c_in, c_patch, c_out, c_list, \
        placements, upserted, report, _, pacing = schemas_of
    (audit_page, bulk_in, bulk_out), audit_components = msgspec.json.schema_components(
        [AuditPage, BulkBids, BulkResult], ref_template="#/components/schemas/{name}")
    components.update(audit_components)
    campaign_id = [{"name": "campaign_id", "in": "path", "required": True,
                    "schema": {"type": "string", "example": "cmp_1"}}]
    token = [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}]
    listing = [{"name": n, "in": "query", "required": False, "schema": {"type": t}}
               for n, t in (("q", "string"), ("category", "string"), ("limit", "integer"),
                            ("cursor", "string"))]
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
                     "parameters": [_header("Idempotency-Key", "1-255 printable ASCII")]},
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
        "/v1/reports/campaigns/{campaign_id}": {"get": {
            **_op("Daily report: impressions, clicks, spend, CTR, CPC, invalid traffic removed",
                  200, None, report, "advertiser"),
            "parameters": campaign_id + [
                {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("from", "to", "granularity")]}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
        "/readyz": {"get": {"summary": "Readiness (index loaded, Redis up)",
                            "responses": {"200": {"description": "Ready"},
                                          "503": {"description": "Not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "text/plain"}}}},
    }
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
