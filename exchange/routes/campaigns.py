"""Advertiser campaign API: create, list, read, partial update. Tenancy: an advertiser
sees only its own campaigns; any other id answers 404, exactly like a missing one."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import campaigns, changes, keys, pacingview
from exchange.auth import require_advertiser
from exchange.campaigns import CampaignIn, CampaignPatch, CampaignRecord
from exchange.clock import business_day, campaign_zone
from exchange.errors import NotFound
from exchange.responses import json_response, read_json
from exchange.runtime import Runtime, runtime_of

BODY_MAX = 4 * 1024 * 1024  # 10,000 SKU bids fit


async def _pids(rt: Runtime, body: CampaignIn) -> dict[str, int]:
    skus = [p.sku for p in body.products]
    if not skus:
        return {}
    found = await rt.client.hmget(keys.PRODUCT_IDS, skus)
    return {s: int(v) for s, v in zip(skus, found, strict=True) if v is not None}


async def _store(rt: Runtime, record: CampaignRecord, *, new: bool) -> None:
    pipe = rt.client.pipeline(transaction=True)
    pipe.set(keys.campaign(record.id), campaigns.encode_record(record))
    if new:
        pipe.sadd(keys.CAMPAIGN_IDS, record.id)
        pipe.sadd(keys.advertiser_campaigns(record.advertiser_id), record.id)
    await pipe.execute()
    await changes.publish(rt.client, "campaign", [record.id])


async def _out(rt: Runtime, records: list[CampaignRecord]) -> list[campaigns.CampaignOut]:
    """Each campaign with its spend today (its own day, in its own time zone)."""
    by_day: dict[str, list[int]] = {}
    for r in records:
        day = business_day(campaign_zone(r.time_zone, rt.settings.zone))
        by_day.setdefault(day, []).append(r.id)
    spend: dict[int, tuple[int, int]] = {}
    for day, ids in by_day.items():
        spend.update(await rt.ledger.spend(ids, day))
    return [campaigns.to_out(r, *spend.get(r.id, (0, 0))) for r in records]


async def create_campaign(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    body = await read_json(request, CampaignIn, BODY_MAX)
    pids = await _pids(rt, body)
    # Validate before taking an id, so a rejected body leaves no trace.
    campaigns.build_record(body, campaign_id=0, advertiser_id=advertiser_id, pids=pids,
                           created_ms=0, version=1)
    campaign_id = int(await rt.client.incr(keys.SEQ_CAMPAIGN))
    now = int(time.time() * 1000)
    record = campaigns.build_record(body, campaign_id=campaign_id, advertiser_id=advertiser_id,
                                    pids=pids, created_ms=now, version=1)
    await _store(rt, record, new=True)
    (out,) = await _out(rt, [record])
    return json_response(out, status=201)


def _campaign_id(request: Request) -> int | None:
    return campaigns.parse_public_id(request.path_params["campaign_id"])


async def get_campaign(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    record = await campaigns.load_owned(rt.client, _campaign_id(request), advertiser_id)
    (out,) = await _out(rt, [record])
    return json_response(out)


async def list_campaigns(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    ids = sorted(int(i) for i in await rt.client.smembers(keys.advertiser_campaigns(advertiser_id)))
    records = [r for r in await campaigns.load_many(rt.client, ids)
               if r.advertiser_id == advertiser_id]
    return json_response({"items": await _out(rt, records)})


async def patch_campaign(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    record = await campaigns.load_owned(rt.client, _campaign_id(request), advertiser_id)
    patch = await read_json(request, CampaignPatch, BODY_MAX)
    body = campaigns.apply_patch(campaigns.to_input(record), patch)
    pids = await _pids(rt, body)
    updated = campaigns.build_record(
        body, campaign_id=record.id, advertiser_id=advertiser_id, pids=pids,
        created_ms=record.created_ms, version=record.version + 1,
    )
    if updated.id != record.id:  # pragma: no cover - build_record keeps the id
        raise NotFound("campaign not found")
    await _store(rt, updated, new=False)
    (out,) = await _out(rt, [updated])
    return json_response(out)


async def get_pacing(request: Request) -> Response:
    """Where the campaign's spend is against its pacing curve, now."""
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    record = await campaigns.load_owned(rt.client, _campaign_id(request), advertiser_id)
    status = await rt.pacer.status(rt.paced(record), time.time_ns() // 1_000_000)
    return json_response(pacingview.to_out(
        record, record.time_zone or rt.settings.timezone, status))


routes = [
    Route("/v1/campaigns", create_campaign, methods=["POST"]),
    Route("/v1/campaigns", list_campaigns, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}", get_campaign, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}", patch_campaign, methods=["PATCH"]),
    Route("/v1/campaigns/{campaign_id}/pacing", get_pacing, methods=["GET"]),
]
