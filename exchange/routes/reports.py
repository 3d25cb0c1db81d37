"""Advertiser reports: ``GET /v1/reports/campaigns/{id}`` and ``GET /v1/reports/advertiser``
with ``from``, ``to``, ``granularity=day|hour``, ``breakdown=sku|keyword|placement`` and
``format=json|csv``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import advertisers, campaigns, keys, reports
from exchange.auth import require_advertiser
from exchange.errors import BadRequest, NotFound
from exchange.responses import json_response
from exchange.runtime import Runtime, runtime_of

MAX_CAMPAIGNS = 1000  # per advertiser report (one pipelined read per campaign and day)


async def _rows(rt: Runtime, ids: list[int], params: reports.Params
                ) -> tuple[list[reports.ReportRow], reports.ReportRow]:
    """Rows and totals over the campaigns ``ids``: the ledger's day counters for plain day
    rows, the rollup's aggregates for hours and breakdowns."""
    if params.breakdown is not None:
        return reports.breakdown_rows(params, await reports.by_dimension(
            rt.client, ids, params.days, params.breakdown))
    by_hour = await reports.hours(rt.client, ids, params.days)
    if params.granularity == "hour":
        return reports.hour_rows(params, by_hour)
    counters = reports.merge_counters(await reports.ledger_counters(rt.client, ids))
    day = reports.build("", counters, params.start, params.end, by_hour)
    return day.rows, day.totals


def _answer(params: reports.Params, payload: Any, name: str) -> Response:
    if params.format == "csv":
        return Response(reports.to_csv(payload.rows), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"'})
    return json_response(payload)


async def campaign_report(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    campaign_id = campaigns.parse_public_id(request.path_params["campaign_id"])
    record = await campaigns.load_owned(rt.client, campaign_id, advertiser_id)
    today = datetime.now(rt.settings.zone).date()
    params = reports.parse_params(request.query_params, today)
    rows, totals = await _rows(rt, [record.id], params)
    public = campaigns.public_id(record.id)
    return _answer(params, reports.CampaignReport(
        campaign_id=public, from_=params.start.isoformat(), to=params.end.isoformat(),
        granularity=params.granularity, breakdown=params.breakdown, rows=rows,
        totals=totals), public)


async def advertiser_report(request: Request) -> Response:
    """Summed over the caller's campaigns, or the ones in ``campaign_ids`` (a comma list):
    any id that is not the caller's is a 404, like on every campaign route."""
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    owned = {int(i) for i in await rt.client.smembers(keys.advertiser_campaigns(advertiser_id))}
    raw = request.query_params.get("campaign_ids")
    if raw is None:
        ids = sorted(owned)
    else:
        ids = []
        for text in raw.split(","):
            cid = campaigns.parse_public_id(text)
            if cid is None:
                raise BadRequest("expected a comma list of campaign ids (cmp_...)",
                                 field="campaign_ids")
            if cid not in owned:  # another tenant's or missing: the same 404
                raise NotFound("campaign not found")
            if cid not in ids:
                ids.append(cid)
    if len(ids) > MAX_CAMPAIGNS:
        raise BadRequest(f"at most {MAX_CAMPAIGNS} campaigns per report: pass campaign_ids",
                         field="campaign_ids")
    today = datetime.now(rt.settings.zone).date()
    params = reports.parse_params(request.query_params, today)
    rows, totals = await _rows(rt, ids, params)
    public = advertisers.public_id(advertiser_id)
    return _answer(params, reports.AdvertiserReport(
        advertiser_id=public, campaign_ids=[campaigns.public_id(i) for i in ids],
        from_=params.start.isoformat(), to=params.end.isoformat(),
        granularity=params.granularity, breakdown=params.breakdown, rows=rows,
        totals=totals), public)


routes = [Route("/v1/reports/campaigns/{campaign_id}", campaign_report, methods=["GET"]),
          Route("/v1/reports/advertiser", advertiser_report, methods=["GET"])]
