"""Advertiser reports: ``GET /v1/reports/campaigns/{id}?from&to&granularity``."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import campaigns, reports
from exchange.auth import require_advertiser
from exchange.errors import BadRequest
from exchange.responses import json_response
from exchange.runtime import runtime_of


async def campaign_report(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    campaign_id = campaigns.parse_public_id(request.path_params["campaign_id"])
    record = await campaigns.load_owned(rt.client, campaign_id, advertiser_id)
    granularity = request.query_params.get("granularity", "day")
    if granularity != "day":
        raise BadRequest("only granularity=day is available", field="granularity")
    today = datetime.now(rt.settings.zone).date()
    start, end = reports.parse_range(request.query_params.get("from"),
                                     request.query_params.get("to"), today)
    counters = await rt.ledger.counters(record.id)
    return json_response(reports.build(campaigns.public_id(record.id), counters, start, end))


routes = [Route("/v1/reports/campaigns/{campaign_id}", campaign_report, methods=["GET"])]
