"""Redis key names owned by ``exchange/`` (prefix ``ex:``); see docs/redis-keys.md.

Other packages own their own prefixes (``pc:`` pacing). Keys are built only here.
"""

from __future__ import annotations

SEQ_ADVERTISER = "ex:seq:advertiser"
SEQ_CAMPAIGN = "ex:seq:campaign"
SEQ_PRODUCT = "ex:seq:product"

ADVERTISERS = "ex:advertisers"            # hash: advertiser id -> msgpack AdvertiserRecord
API_KEYS = "ex:apikeys"                   # hash: sha256(api key) hex -> "<adv id>[:<key id>]"
API_KEYS_ADOPTED = "ex:apikeys:adopted"   # string: ms when pre-key-id keys got records

PRODUCT_IDS = "ex:cat:pid"                # hash: sku -> product id (int, dense from 1)
PRODUCTS = "ex:cat:products"              # hash: product id -> msgpack ProductRecord

CAMPAIGN_IDS = "ex:cmp:ids"               # set of campaign ids
CHANGES = "ex:changes"                    # stream: index change feed tailed by every worker
EVENTS = "ex:events"                      # stream: win/impression/click/invalid events
DEMO_MARKER = "ex:demo"                   # hash: what the demo loader put in the store


def campaign(campaign_id: int) -> str:
    """msgpack CampaignRecord of one campaign."""
    return f"ex:cmp:{campaign_id}"


def advertiser_campaigns(advertiser_id: int) -> str:
    """set of the advertiser's campaign ids."""
    return f"ex:adv:{advertiser_id}:cmps"


def advertiser_keys(advertiser_id: int) -> str:
    """hash: the advertiser's API key id -> msgpack KeyRecord (sha256 of the secret, ...)."""
    return f"ex:adv:{advertiser_id}:keys"


def advertiser_key_use(advertiser_id: int) -> str:
    """hash: the advertiser's API key id -> last-used ms (written at most once a minute)."""
    return f"ex:adv:{advertiser_id}:keyuse"


def stock(store_id: str) -> str:
    """packed little-endian uint16 quantities indexed by product id (SETRANGE per update)."""
    return f"ex:stock:{store_id}"


def shopper(shopper_id: str) -> str:
    """hash: everything the auction reads about a shopper in one HGETALL (segments
    ``s:``, purchases ``b:``, frequency counts ``f:``, exposure ``x:``; exchange/shoppers.py)."""
    return f"ex:shp:{{{shopper_id}}}"


def shopper_exposures(shopper_id: str) -> str:
    """hash: per-campaign exposure detail ``<pid>:<campaign>`` -> "imps clicks last first"."""
    return f"ex:shp:{{{shopper_id}}}:x"


STORES = "ex:stores"                      # hash: store id -> number (dense from 1; online 0)
SEGMENT_INTAKE = "ex:signals:segments"    # stream: the loyalty system's segment changes
SEGMENT_GROUP = "segments"                # its consumer group
EXPOSED = "ex:signals:exposed"            # stream: "exposed_not_converted" events


def idempotency(scope: str, key: str) -> str:
    """msgpack (state, body sha-256, status, response) of one Idempotency-Key; TTL 24 h."""
    return f"ex:idem:{scope}:{key}"


def campaign_audit(campaign_id: int) -> str:
    """stream of the campaign's changes (who, when, before/after), MAXLEN ~ 1000."""
    return f"ex:audit:cmp:{campaign_id}"


# Report aggregates (prefix ``rp:``), written by ``rollup.lua``; every key carries the
# campaign's hash tag ``{c<id>}`` so one script call touches a single cluster slot.
ROLLUP_GROUP = "rollup"                   # consumer group on ``ex:events``


def rollup_day(campaign_id: int, day: str) -> str:
    """hash: the campaign's aggregates for one day (YYYYMMDD, campaign zone); fields
    ``h:<HH>``/``k:<sku>``/``p:<placement>``/``t:<term>``/``r:<reason>`` -> "wins imps
    clicks spend_micros position_sum invalid"; TTL ``rollup.AGGREGATE_TTL_S``."""
    return f"rp:{{c{campaign_id}}}:{day}"


def rollup_seen(campaign_id: int, event_id: str) -> str:
    """string: marker that the rollup counted ``event_id``; TTL ``rollup.SEEN_TTL_S``."""
    return f"rp:{{c{campaign_id}}}:seen:{event_id}"


def rollup_term(campaign_id: int, imp_id: str) -> str:
    """string: the search term an impression id was won on (impressions and clicks do not
    carry it); TTL token lifetime + margin."""
    return f"rp:{{c{campaign_id}}}:term:{imp_id}"


def rollup_wait(campaign_id: int, imp_id: str) -> str:
    """list: a search ad's beacons counted before its win (whose term they need);
    TTL token lifetime + margin, deleted when the win is counted."""
    return f"rp:{{c{campaign_id}}}:wait:{imp_id}"
