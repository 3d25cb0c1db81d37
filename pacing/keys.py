"""Redis key names of the pacing package (prefix ``pc:``); ``docs/redis-keys.md`` lists them.

Every key that one script touches for a campaign carries the hash tag ``{c<id>}``, so on
Redis Cluster they share a slot and ``bill.lua`` can run there unchanged (the events
stream is the exception; see the header of ``bill.lua``).
"""

from __future__ import annotations

PREFIX = "pc:"


def campaign_tag(campaign_id: int) -> str:
    return f"{{c{campaign_id}}}"


def spend_key(campaign_id: int) -> str:
    """Hash of a campaign's spend, in micro-units and counts, no TTL. Fields:
    ``d:<YYYYMMDD>`` spend that day, ``total`` lifetime spend,
    ``n:<kind>:<YYYYMMDD>`` events of that kind recorded that day,
    ``charged:<kind>:<YYYYMMDD>`` spend on events of that kind that day."""
    return f"{PREFIX}{{c{campaign_id}}}:spend"


def billed_key(campaign_id: int, event_id: str) -> str:
    """Marker that ``event_id`` was billed; lives ``dedupe_ttl_s`` (longer than any retry)."""
    return f"{PREFIX}{{c{campaign_id}}}:seen:{event_id}"


def day_field(day: str) -> str:
    return f"d:{day}"


def count_field(kind: str, day: str) -> str:
    return f"n:{kind}:{day}"


def charged_field(kind: str, day: str) -> str:
    return f"charged:{kind}:{day}"


TOTAL_FIELD = "total"


def lease_key(campaign_id: int) -> str:
    """Hash of a campaign's budget leases and in-flight commitments (``lease.lua``):
    ``w:<worker>`` a worker's allowance, ``f:<n>`` cost committed in that 10-second span and
    not yet billed, ``x:<YYYYMMDD>`` cost committed that day. TTL ``LEASE_HASH_TTL_S``."""
    return f"{PREFIX}{{c{campaign_id}}}:lease"


LEASE_HASH_TTL_S = 2 * 86_400

# Shared pacing state, one key each (read by every worker every few seconds).
THROTTLE = f"{PREFIX}throttle"  # hash: campaign id -> throttle in 1/65536
CONTROL = f"{PREFIX}control"  # hash: campaign id -> controller state (msgpack)
LEADER = f"{PREFIX}leader"  # string: the worker running the controller; PX lease


def traffic_key(day: str) -> str:
    """Hash of one retailer day's auction counts by hour (``"0".."23"``), TTL 10 days:
    what ``traffic_shaped`` pacing learns its curve from."""
    return f"{PREFIX}traffic:{day}"


TRAFFIC_TTL_S = 10 * 86_400
