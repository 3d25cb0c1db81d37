"""Advertiser campaign API: create, list, read, partial update. Tenancy: an advertiser
sees only its own campaigns; any other id answers 404, exactly like a missing one."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.exceptions import WatchError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exchange import audit, bulkbids, campaigns, changes, idempotency, keys, pacingview
from exchange.auth import require_advertiser
from exchange.campaigns import CampaignIn, CampaignPatch, CampaignRecord
from exchange.clock import business_day, campaign_zone
from exchange.decoding import decode_as
from exchange.errors import ApiError, Conflict, NotFound
from exchange.responses import json_response, read_body, read_json
from exchange.runtime import Runtime, runtime_of

BODY_MAX = 4 * 1024 * 1024  # 10,000 SKU bids fit


async def _pids(rt: Runtime, body: CampaignIn) -> dict[str, int]:
    skus = [p.sku for p in body.products]
    if not skus:
        return {}
    found = await rt.client.hmget(keys.PRODUCT_IDS, skus)
    return {s: int(v) for s, v in zip(skus, found, strict=True) if v is not None}


async def _create(rt: Runtime, record: CampaignRecord) -> None:
    """Store a new campaign with its first audit entry, in one transaction."""
    pipe = rt.client.pipeline(transaction=True)
    pipe.set(keys.campaign(record.id), campaigns.encode_record(record))
    pipe.sadd(keys.CAMPAIGN_IDS, record.id)
    pipe.sadd(keys.advertiser_campaigns(record.advertiser_id), record.id)
    pipe.xadd(keys.campaign_audit(record.id), audit.entry_fields(  # type: ignore[arg-type]
        who=f"adv_{record.advertiser_id}", action="create", version=record.version,
        before=None, after=campaigns.to_input(record), at_ms=record.updated_ms),
        maxlen=audit.MAXLEN, approximate=True)
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
    raw = await read_body(request, BODY_MAX)
    claim = await idempotency.claim(rt.client, f"adv{advertiser_id}:campaigns",
                                    request.headers.get(idempotency.HEADER), raw)
    if claim is not None and claim.replay is not None:
        return Response(claim.replay.body, status_code=claim.replay.status,
                        media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})
    try:
        body = decode_as(raw, CampaignIn)
        campaigns.check_transition(None, body.status)
        pids = await _pids(rt, body)
        # Validate before taking an id, so a rejected body leaves no trace.
        campaigns.build_record(body, campaign_id=0, advertiser_id=advertiser_id, pids=pids,
                               created_ms=0, version=1, limits=rt.limits_of)
    except ApiError:
        if claim is not None:
            await claim.release()
        raise
    campaign_id = int(await rt.client.incr(keys.SEQ_CAMPAIGN))
    now = int(time.time() * 1000)
    record = campaigns.build_record(body, campaign_id=campaign_id, advertiser_id=advertiser_id,
                                    pids=pids, created_ms=now, version=1, limits=rt.limits_of)
    (out,) = await _out(rt, [record])
    await _create(rt, record)
    answer = json_response(out, status=201, headers={"ETag": campaigns.etag(record)})
    if claim is not None:
        await claim.done(201, bytes(answer.body))
    return answer


def _campaign_id(request: Request) -> int | None:
    return campaigns.parse_public_id(request.path_params["campaign_id"])


async def get_campaign(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    record = await campaigns.load_owned(rt.client, _campaign_id(request), advertiser_id)
    (out,) = await _out(rt, [record])
    return json_response(out, headers={"ETag": campaigns.etag(record)})


async def list_campaigns(request: Request) -> Response:
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    ids = sorted(int(i) for i in await rt.client.smembers(keys.advertiser_campaigns(advertiser_id)))
    records = [r for r in await campaigns.load_many(rt.client, ids)
               if r.advertiser_id == advertiser_id]
    return json_response({"items": await _out(rt, records)})


# A change: the stored record -> (the new record, its audit "before" and "after").
Change = Callable[[CampaignRecord], Awaitable[tuple[CampaignRecord, Any, Any]]]


async def _update(rt: Runtime, campaign_id: int, advertiser_id: int, if_match: str | None,
                  change: Change) -> CampaignRecord:
    """Apply ``change`` atomically (WATCH/MULTI on the record) with its audit entry.

    ``If-Match`` with the ETag from a GET makes it conditional: if someone else changed
    the campaign since, 412 and nothing is written. Without it, a concurrent change is
    not lost either: ``change`` is re-applied on top of the newer version.
    """
    key = keys.campaign(campaign_id)
    for _ in range(10):
        async with rt.client.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            raw = await pipe.get(key)
            record = campaigns.decode_record(raw) if raw else None
            if record is None or record.advertiser_id != advertiser_id:
                raise NotFound("campaign not found")
            if if_match is not None and not _matches(if_match, campaigns.etag(record)):
                raise ApiError("the campaign changed since you read it (ETag mismatch); "
                               "GET it again and re-apply your change", field="If-Match",
                               code="precondition_failed", status=412)
            updated, before, after = await change(record)
            pipe.multi()
            pipe.set(key, campaigns.encode_record(updated))
            pipe.xadd(keys.campaign_audit(record.id), audit.entry_fields(  # type: ignore[arg-type]
                who=f"adv_{advertiser_id}", action="update", version=updated.version,
                before=before, after=after, at_ms=updated.updated_ms),
                maxlen=audit.MAXLEN, approximate=True)
            try:
                await pipe.execute()
            except WatchError:
                continue  # changed under us: read again and re-apply (or 412 with If-Match)
        await changes.publish(rt.client, "campaign", [updated.id])
        return updated
    raise Conflict("the campaign is being changed by others; retry", code="conflict")


async def patch_campaign(request: Request) -> Response:
    """Partial update, validated whole, applied atomically (see ``_update``)."""
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    campaign_id = _campaign_id(request)
    await campaigns.load_owned(rt.client, campaign_id, advertiser_id)  # 404 before the body
    assert campaign_id is not None
    patch = await read_json(request, CampaignPatch, BODY_MAX)

    async def change(record: CampaignRecord) -> tuple[CampaignRecord, Any, Any]:
        before = campaigns.to_input(record)
        body = campaigns.apply_patch(before, patch)
        campaigns.check_transition(record.status, body.status)
        updated = campaigns.build_record(
            body, campaign_id=record.id, advertiser_id=advertiser_id,
            pids=await _pids(rt, body), created_ms=record.created_ms,
            version=record.version + 1, limits=rt.limits_of)
        return updated, before, campaigns.to_input(updated)

    updated = await _update(rt, campaign_id, advertiser_id, request.headers.get("if-match"),
                            change)
    (out,) = await _out(rt, [updated])
    return json_response(out, headers={"ETag": campaigns.etag(updated)})


async def put_bids(request: Request) -> Response:
    """Bulk upsert / remove of up to 10,000 SKU bids, all or nothing (``bulkbids``)."""
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    campaign_id = _campaign_id(request)
    await campaigns.load_owned(rt.client, campaign_id, advertiser_id)
    assert campaign_id is not None
    body = await read_json(request, bulkbids.BulkBids, BODY_MAX)
    skus = [row.sku for row in body.upsert]
    found = await rt.client.hmget(keys.PRODUCT_IDS, skus) if skus else []
    pids = {sku: int(v) for sku, v in zip(skus, found, strict=True) if v is not None}
    summary: list[bulkbids.BulkResult] = []

    async def change(record: CampaignRecord) -> tuple[CampaignRecord, Any, Any]:
        bids, result = bulkbids.merge(record, body, pids, rt.limits_of)
        summary[:] = [result]
        updated = msgspec.structs.replace(record, bids=bids, version=record.version + 1,
                                          updated_ms=int(time.time() * 1000))
        counts = {"products": len(record.bids)}
        return updated, counts, {"products": result.products, "added": result.added,
                                 "updated": result.updated, "removed": result.removed}

    updated = await _update(rt, campaign_id, advertiser_id, request.headers.get("if-match"),
                            change)
    result = msgspec.structs.replace(summary[0], campaign_id=campaigns.public_id(updated.id),
                                     version=updated.version)
    return json_response(result, headers={"ETag": campaigns.etag(updated)})


def _matches(header: str, tag: str) -> bool:
    """RFC 9110 If-Match: ``*`` or a list of entity tags (weak tags never match)."""
    candidates = [t.strip() for t in header.split(",")]
    return "*" in candidates or tag in candidates


async def get_audit(request: Request) -> Response:
    """The campaign's change log, newest first: who, when, before/after, fields changed."""
    rt = runtime_of(request)
    advertiser_id = await require_advertiser(request, rt.client, rt.settings.operator_key)
    record = await campaigns.load_owned(rt.client, _campaign_id(request), advertiser_id)
    return json_response(audit.AuditPage(items=await audit.read(rt.client, record.id)))


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
    Route("/v1/campaigns/{campaign_id}/audit", get_audit, methods=["GET"]),
    Route("/v1/campaigns/{campaign_id}/bids", put_bids, methods=["PUT"]),
]
