"""Campaigns: the API shapes (DESIGN.md contract), the stored record, validation, storage.

The API speaks decimal strings for money and SKUs for products; the record speaks
micro-units and product ids. A write stores the record and appends to the change feed,
from which every worker patches its index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo

import msgspec
import redis.asyncio as aioredis

from exchange import clock, keys
from exchange.catalog import Sku
from exchange.errors import BadRequest, Conflict, NotFound
from exchange.money import MoneyError, format_micros, parse_micros
from exchange.tokenizer import phrase

Status = Literal["draft", "active", "paused", "ended", "archived"]
Kind = Literal["sponsored_product", "display"]
Pacing = Literal["even", "asap", "traffic_shaped"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Keyword = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
MAX_PRODUCTS = 10_000
MAX_BID_MICROS = 1_000_000_000  # 1000 currency units per click: a typo guard
T = TypeVar("T")


class Budget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    daily: str
    total: str | None = None


class ProductBid(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    sku: Sku
    bid: str | None = None  # None: the campaign's default_bid


Multiplier = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,2}(\.[0-9]{1,3})?$")]
MULTIPLIER_MIN_PERMILLE = 100   # 0.1x
MULTIPLIER_MAX_PERMILLE = 10_000  # 10x


class Segments(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    include: list[Label] = []  # any of these (none listed: every shopper)
    exclude: list[Label] = []  # none of these
    # Bid multiplier for shoppers in a segment ("1.5" bids 50% more); the highest of the
    # shopper's segments applies. Decimal strings, 0.1 to 10.
    bid_multipliers: Annotated[dict[Label, Multiplier], msgspec.Meta(max_length=100)] = {}


MatchType = Literal["broad", "phrase", "exact"]


class KeywordMatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A keyword with its match type: ``broad`` (any of its words, ranked by how many),
    ``phrase`` (its words, in order, inside the query), ``exact`` (the query is it)."""

    text: Keyword
    match: MatchType = "broad"


class Targeting(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # A plain string is a broad-match keyword.
    keywords: Annotated[list[Keyword | KeywordMatch], msgspec.Meta(max_length=1000)] = []
    # Queries containing any of these (as a phrase) never show the campaign.
    negative_keywords: Annotated[list[Keyword], msgspec.Meta(max_length=1000)] = []
    categories: list[Label] = []
    segments: Segments = msgspec.field(default_factory=Segments)
    stores: list[Label] = []


class FrequencyCap(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    impressions: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    per: Literal["hour", "day", "week"]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Hour = Annotated[int, msgspec.Meta(ge=0, le=23)]


class Daypart(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Hours of the day (local, 0-23: 9 means 09:00-09:59) on the given weekdays."""

    weekdays: list[Weekday] = msgspec.field(default_factory=lambda: list(WEEKDAYS))
    hours: Annotated[list[Hour], msgspec.Meta(min_length=1, max_length=24)]


class Schedule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    start: datetime | None = None
    end: datetime | None = None
    # Dayparting: the campaign runs only in these hours (in ``time_zone``); none = always.
    dayparts: Annotated[list[Daypart], msgspec.Meta(max_length=50)] | None = None
    # IANA zone of the campaign's budget day (midnight to midnight there); default: the
    # retailer's zone (setting ``timezone``).
    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class CampaignIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    kind: Kind = "sponsored_product"
    status: Status = "draft"
    budget: Budget
    pacing: Pacing = "even"
    default_bid: str | None = None  # for products listed without their own bid
    products: Annotated[list[ProductBid], msgspec.Meta(max_length=MAX_PRODUCTS)] = []
    targeting: Targeting = msgspec.field(default_factory=Targeting)
    frequency_cap: FrequencyCap | None = None
    suppress_purchased_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 7
    schedule: Schedule | None = None


class CampaignPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update: only the fields present change; the result is validated whole."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET
    budget: Budget | msgspec.UnsetType = msgspec.UNSET
    pacing: Pacing | msgspec.UnsetType = msgspec.UNSET
    default_bid: str | msgspec.UnsetType | None = msgspec.UNSET
    products: Annotated[list[ProductBid], msgspec.Meta(max_length=MAX_PRODUCTS)] | (
        msgspec.UnsetType
    ) = msgspec.UNSET
    targeting: Targeting | msgspec.UnsetType = msgspec.UNSET
    frequency_cap: FrequencyCap | msgspec.UnsetType | None = msgspec.UNSET
    suppress_purchased_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] | (
        msgspec.UnsetType
    ) = msgspec.UNSET
    schedule: Schedule | msgspec.UnsetType | None = msgspec.UNSET


class BidRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    sku: str
    pid: int
    bid_micros: int
    explicit: bool = True  # False: the campaign's default bid (follows it when it changes)


class CampaignRecord(msgspec.Struct, kw_only=True, gc=False):
    """As stored in Redis (msgpack) and held by the index. Holds no references that
    could form a cycle, so it is untracked by the GC (thousands live in every worker)."""

    id: int
    advertiser_id: int
    name: str
    kind: Kind
    status: Status
    daily_budget_micros: int
    total_budget_micros: int  # 0 = no lifetime limit
    pacing: Pacing
    bids: list[BidRecord]
    default_bid_micros: int = 0  # 0 = none
    keywords: list[str] = []  # broad match, as the advertiser wrote them (lower case)
    phrase_keywords: list[str] = []  # normalised token phrases (tokenizer.phrase)
    exact_keywords: list[str] = []
    negative_keywords: list[str] = []
    categories: list[str] = []
    segments_include: list[str] = []
    segments_exclude: list[str] = []
    segment_multipliers: dict[str, int] = {}  # segment -> permille
    stores: list[str] = []
    frequency_cap: FrequencyCap | None = None
    suppress_purchased_days: int = 7
    start_ms: int = 0
    end_ms: int = 0
    time_zone: str = ""  # "" = the retailer's zone
    dayparts: list[int] = []  # 7 hour masks, Monday first (bit h: hour h on); [] = always
    created_ms: int = 0
    updated_ms: int = 0
    version: int = 1


class Spend(msgspec.Struct, kw_only=True):
    today: str
    total: str


class CampaignOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    advertiser_id: str
    name: str
    kind: Kind
    status: Status
    budget: Budget
    pacing: Pacing
    default_bid: str | None = None
    products: list[ProductBid]
    targeting: Targeting
    frequency_cap: FrequencyCap | None = None
    suppress_purchased_days: int
    schedule: Schedule | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    spend: Spend


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CampaignRecord)


def encode_record(record: CampaignRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> CampaignRecord:
    return _decoder.decode(data)


def public_id(campaign_id: int) -> str:
    return f"cmp_{campaign_id}"


def parse_public_id(text: str) -> int | None:
    if text.startswith("cmp_") and text[4:].isdigit() and len(text) < 24:
        return int(text[4:])
    return None


def _ms(value: datetime | None, field: str) -> int:
    if value is None:
        return 0
    if value.tzinfo is None:
        raise BadRequest("datetime needs a time zone offset (e.g. Z)", field=field)
    return int(value.timestamp() * 1000)


# Legal status changes. A campaign starts as draft, active or paused; ended and archived
# are where it finishes (archived hides it from lists, and nothing comes back from it).
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"active", "paused", "archived"}),
    "active": frozenset({"paused", "ended"}),
    "paused": frozenset({"active", "ended"}),
    "ended": frozenset({"archived"}),
    "archived": frozenset(),
}
INITIAL: frozenset[str] = frozenset({"draft", "active", "paused"})


def check_transition(before: str | None, after: str) -> None:
    """409 ``invalid_transition`` naming ``status`` unless ``before -> after`` is legal
    (``before`` None: a new campaign)."""
    if before is None:
        if after not in INITIAL:
            raise Conflict(f"a campaign cannot start as {after!r}; start as draft, active "
                           "or paused", field="status", code="invalid_transition")
    elif after != before and after not in TRANSITIONS[before]:
        allowed = ", ".join(sorted(TRANSITIONS[before])) or "nothing"
        raise Conflict(f"status cannot go from {before!r} to {after!r} (allowed: {allowed})",
                       field="status", code="invalid_transition")


def check_bid(bid: int, limits: tuple[int, int] | None, field: str) -> None:
    """A bid within the typo guard and the retailer's limits for its product, or 400."""
    if bid > MAX_BID_MICROS:
        raise BadRequest("bid above the maximum of 1000.00", field=field)
    if limits is None:
        return
    low, high = limits
    if bid < low:
        raise BadRequest(f"bid below this category's floor of {format_micros(low)}",
                         field=field, code="bid_below_floor")
    if bid > high:
        raise BadRequest(f"bid above this category's ceiling of {format_micros(high)}",
                         field=field, code="bid_above_ceiling")


def _phrases(texts: list[str], field: str) -> list[str]:
    """Keywords as the index matches them (``tokenizer.phrase``); one with no matchable
    word (only stop words or punctuation) could never match, so it is refused."""
    out: list[str] = []
    for text in texts:
        normal = phrase(text)
        if not normal:
            raise BadRequest(f"{text!r} has no word a query could match", field=field)
        out.append(normal)
    return list(dict.fromkeys(out))


def _daypart_masks(parts: list[Daypart] | None) -> list[int]:
    """Seven 24-bit hour masks (Monday first), or [] when the campaign runs all the time."""
    if not parts:
        return []
    masks = [0] * 7
    for i, part in enumerate(parts):
        if not part.weekdays:
            raise BadRequest("a daypart needs at least one weekday",
                             field=f"schedule.dayparts[{i}].weekdays")
        hours = 0
        for h in part.hours:
            hours |= 1 << h
        for day in part.weekdays:
            masks[WEEKDAYS.index(day)] |= hours
    return [] if all(m == (1 << 24) - 1 for m in masks) else masks


def _dayparts_of(masks: list[int]) -> list[Daypart] | None:
    """The masks back as API dayparts: one entry per distinct set of hours."""
    if not masks:
        return None
    by_hours: dict[int, list[Weekday]] = {}
    for day, mask in zip(WEEKDAYS, masks, strict=True):
        if mask:
            by_hours.setdefault(mask, []).append(day)
    return [Daypart(weekdays=days, hours=[h for h in range(24) if mask >> h & 1])
            for mask, days in by_hours.items()]


def in_daypart(record: CampaignRecord, zone: ZoneInfo, at_ms: int) -> bool:
    """Whether the campaign's dayparting lets it run at ``at_ms`` (in its zone)."""
    if not record.dayparts:
        return True
    local = datetime.fromtimestamp(at_ms / 1000, tz=zone)
    return bool(record.dayparts[local.weekday()] >> local.hour & 1)


def etag(record: CampaignRecord) -> str:
    """The campaign's entity tag: changes with every stored version."""
    return f'"{public_id(record.id)}-v{record.version}"'


def _money(text: str, field: str, *, positive: bool = True) -> int:
    try:
        micros = parse_micros(text)
    except MoneyError as exc:
        raise BadRequest(str(exc), field=field) from exc
    if positive and micros <= 0:
        raise BadRequest("must be greater than zero", field=field)
    return micros


class _Problems:
    """Every bad field of a body, so one answer lists them all (``error.details``)."""

    def __init__(self) -> None:
        self.found: list[BadRequest] = []

    def run(self, check: Callable[[], T], default: T) -> T:
        try:
            return check()
        except BadRequest as exc:
            self.found.append(exc)
            return default

    def passes(self, check: Callable[[], object]) -> bool:
        """Run ``check``; False (and the problem noted) if it raised ``BadRequest``."""
        try:
            check()
        except BadRequest as exc:
            self.found.append(exc)
            return False
        return True

    def add(self, message: str, field: str) -> None:
        self.found.append(BadRequest(message, field=field))

    def raise_any(self) -> None:
        if not self.found:
            return
        first = self.found[0]
        if len(self.found) == 1:
            raise first
        raise BadRequest(
            f"{len(self.found)} invalid fields (all in details); first: {first.message}",
            field=first.field, code=first.code, status=first.status,
            details=[{"field": e.field or "", "code": e.code, "message": e.message}
                     for e in self.found])


def build_record(
    body: CampaignIn,
    *,
    campaign_id: int,
    advertiser_id: int,
    pids: dict[str, int],
    created_ms: int,
    version: int,
    limits: Callable[[int], tuple[int, int]] | None = None,
) -> CampaignRecord:
    """Validate ``body`` as a whole and turn it into a record (``pids``: sku -> pid;
    ``limits``: the retailer's (min, max) bid for a product id, see ``bidlimits``)."""
    bad = _Problems()
    daily = bad.run(lambda: _money(body.budget.daily, "budget.daily"), 0)
    total = 0 if body.budget.total is None else bad.run(
        lambda: _money(body.budget.total or "", "budget.total"), 0)
    if total and daily and total < daily:
        bad.add("total budget is below the daily budget", "budget.total")
    if body.kind == "sponsored_product" and body.status == "active" and not body.products:
        bad.add("an active sponsored_product campaign needs products", "products")
    default_bid = (bad.run(lambda: _money(body.default_bid or "", "default_bid"), 0)
                   if body.default_bid is not None else 0)
    if default_bid > MAX_BID_MICROS:
        bad.add("bid above the maximum of 1000.00", "default_bid")
    bids: list[BidRecord] = []
    seen: set[str] = set()
    for i, pb in enumerate(body.products):
        if pb.sku in seen:
            bad.add(f"sku {pb.sku!r} listed twice", f"products[{i}].sku")
            continue
        seen.add(pb.sku)
        pid = pids.get(pb.sku)
        if pid is None:
            bad.add(f"unknown sku {pb.sku!r}", f"products[{i}].sku")
            continue
        if pb.bid is None and not default_bid:
            if body.default_bid is None:  # (an invalid default_bid is reported already)
                bad.add("needs a bid (or the campaign a default_bid)", f"products[{i}].bid")
            continue
        field = f"products[{i}].bid"
        bid = bad.run(lambda pb=pb, field=field: _money(pb.bid or "", field), 0) \
            if pb.bid is not None else default_bid
        if bid and bad.passes(lambda bid=bid, pid=pid, field=field: check_bid(
                bid, limits(pid) if limits else None, field)):
            bids.append(BidRecord(pb.sku, pid, bid, pb.bid is not None))
    start_ms = bad.run(lambda: _ms(body.schedule.start if body.schedule else None,
                                   "schedule.start"), 0)
    end_ms = bad.run(lambda: _ms(body.schedule.end if body.schedule else None,
                                 "schedule.end"), 0)
    if start_ms and end_ms and end_ms <= start_ms:
        bad.add("schedule ends before it starts", "schedule.end")
    dayparts = bad.run(lambda: _daypart_masks(body.schedule.dayparts if body.schedule
                                              else None), [])
    time_zone = (body.schedule.time_zone if body.schedule else None) or ""
    if time_zone:
        try:
            clock.zone(time_zone)
        except ValueError as exc:
            bad.add(str(exc), "schedule.time_zone")
    t = body.targeting
    matched: dict[str, list[str]] = {"phrase": [], "exact": []}
    broad: list[str] = []
    for k in t.keywords:
        if isinstance(k, str) or k.match == "broad":
            broad.append(k if isinstance(k, str) else k.text)
        else:
            matched[k.match].append(k.text)
    phrase_keywords = bad.run(lambda: _phrases(matched["phrase"], "targeting.keywords"), [])
    exact_keywords = bad.run(lambda: _phrases(matched["exact"], "targeting.keywords"), [])
    negative_keywords = bad.run(lambda: _phrases(t.negative_keywords,
                                                 "targeting.negative_keywords"), [])
    multipliers = bad.run(lambda: _multipliers(t.segments.bid_multipliers), {})
    bad.raise_any()
    return CampaignRecord(
        id=campaign_id,
        advertiser_id=advertiser_id,
        name=body.name,
        kind=body.kind,
        status=body.status,
        daily_budget_micros=daily,
        total_budget_micros=total,
        pacing=body.pacing,
        bids=bids,
        default_bid_micros=default_bid,
        keywords=list(dict.fromkeys(k.strip().lower() for k in broad if k.strip())),
        phrase_keywords=phrase_keywords,
        exact_keywords=exact_keywords,
        negative_keywords=negative_keywords,
        categories=list(dict.fromkeys(t.categories)),
        segments_include=list(dict.fromkeys(t.segments.include)),
        segments_exclude=list(dict.fromkeys(t.segments.exclude)),
        segment_multipliers=multipliers,
        stores=list(dict.fromkeys(t.stores)),
        frequency_cap=body.frequency_cap,
        suppress_purchased_days=body.suppress_purchased_days,
        start_ms=start_ms,
        end_ms=end_ms,
        time_zone=time_zone,
        dayparts=dayparts,
        created_ms=created_ms,
        updated_ms=int(time.time() * 1000),
        version=version,
    )


def _multipliers(given: dict[str, str]) -> dict[str, int]:
    """Segment -> permille, each in [0.1, 10] (the pattern already checked the digits)."""
    out: dict[str, int] = {}
    for segment, text in given.items():
        whole, _, frac = text.partition(".")
        permille = int(whole) * 1000 + int((frac + "000")[:3])
        if not MULTIPLIER_MIN_PERMILLE <= permille <= MULTIPLIER_MAX_PERMILLE:
            raise BadRequest(f"multiplier for {segment!r} must be between 0.1 and 10",
                             field="targeting.segments.bid_multipliers", code="out_of_range")
        out[segment] = permille
    return out


def _format_multiplier(permille: int) -> str:
    return f"{permille // 1000}.{permille % 1000:03d}".rstrip("0").rstrip(".")


def _dt(ms: int) -> datetime | None:
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def to_input(record: CampaignRecord) -> CampaignIn:
    """The record as the API body that would create it (base for PATCH)."""
    start, end = _dt(record.start_ms), _dt(record.end_ms)
    return CampaignIn(
        name=record.name,
        kind=record.kind,
        status=record.status,
        budget=Budget(
            daily=format_micros(record.daily_budget_micros),
            total=format_micros(record.total_budget_micros) if record.total_budget_micros else None,
        ),
        pacing=record.pacing,
        default_bid=format_micros(record.default_bid_micros) if record.default_bid_micros
        else None,
        products=[ProductBid(sku=b.sku, bid=format_micros(b.bid_micros) if b.explicit else None)
                  for b in record.bids],
        targeting=Targeting(
            keywords=[*record.keywords,
                      *(KeywordMatch(text=k, match="phrase") for k in record.phrase_keywords),
                      *(KeywordMatch(text=k, match="exact") for k in record.exact_keywords)],
            negative_keywords=record.negative_keywords,
            categories=record.categories,
            segments=Segments(
                include=record.segments_include, exclude=record.segments_exclude,
                bid_multipliers={k: _format_multiplier(v)
                                 for k, v in record.segment_multipliers.items()}),
            stores=record.stores,
        ),
        frequency_cap=record.frequency_cap,
        suppress_purchased_days=record.suppress_purchased_days,
        schedule=(Schedule(start=start, end=end, time_zone=record.time_zone or None,
                           dayparts=_dayparts_of(record.dayparts))
                  if (start or end or record.time_zone or record.dayparts) else None),
    )


def apply_patch(base: CampaignIn, patch: CampaignPatch) -> CampaignIn:
    changes = {
        f: getattr(patch, f)
        for f in patch.__struct_fields__
        if getattr(patch, f) is not msgspec.UNSET
    }
    return msgspec.structs.replace(base, **changes)


def to_out(record: CampaignRecord, spend_today: int, spend_total: int) -> CampaignOut:
    body = to_input(record)
    created = _dt(record.created_ms) or _dt(1)
    updated = _dt(record.updated_ms) or created
    assert created is not None and updated is not None
    return CampaignOut(
        id=public_id(record.id),
        advertiser_id=f"adv_{record.advertiser_id}",
        name=body.name,
        kind=body.kind,
        status=body.status,
        budget=body.budget,
        pacing=body.pacing,
        default_bid=body.default_bid,
        products=body.products,
        targeting=body.targeting,
        frequency_cap=body.frequency_cap,
        suppress_purchased_days=body.suppress_purchased_days,
        schedule=body.schedule,
        created_at=created,
        updated_at=updated,
        version=record.version,
        spend=Spend(today=format_micros(spend_today), total=format_micros(spend_total)),
    )


async def load(client: aioredis.Redis, campaign_id: int) -> CampaignRecord | None:
    data = await client.get(keys.campaign(campaign_id))
    return decode_record(data) if data else None


async def load_owned(
    client: aioredis.Redis, campaign_id: int | None, advertiser_id: int
) -> CampaignRecord:
    """The campaign if it exists and belongs to the advertiser; 404 otherwise (no leak)."""
    record = await load(client, campaign_id) if campaign_id is not None else None
    if record is None or record.advertiser_id != advertiser_id:
        raise NotFound("campaign not found")
    return record


async def load_many(client: aioredis.Redis, ids: list[int]) -> list[CampaignRecord]:
    out: list[CampaignRecord] = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for data in await client.mget([keys.campaign(i) for i in chunk]):
            if data:
                out.append(decode_record(data))
    return out


async def load_all(client: aioredis.Redis) -> list[CampaignRecord]:
    ids = sorted(int(i) for i in await client.smembers(keys.CAMPAIGN_IDS))
    return await load_many(client, ids)
