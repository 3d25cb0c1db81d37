"""Redis key names of the fraud package (prefix ``fr:``); ``docs/redis-keys.md`` lists them.

Every rate-limiter key carries the one hash tag ``{rl}``: ``ratelimit.lua`` touches the
counters of thousands of sources plus the block list in one call, so on Redis Cluster they
must share a slot. That puts the whole limiter on one shard, which is fine: it is small
(bounded by TTLs and the per-sync cap) and written in batches, a few calls per second per
worker.
"""

from __future__ import annotations

PREFIX = "fr:"
RL_TAG = "{rl}"


def rl_meta_key() -> str:
    """Hash, fields ``seq`` (last block-list change number) and ``floor`` (the highest
    change number trimmed from the journal). TTL: refreshed by every sync."""
    return f"{PREFIX}{RL_TAG}:meta"


def rl_blocks_key() -> str:
    """Hash: source (``<dimension>:<key>``) -> block reason, for every blocked source."""
    return f"{PREFIX}{RL_TAG}:blocks"


def rl_until_key() -> str:
    """Sorted set: source -> block-until time (ms since epoch)."""
    return f"{PREFIX}{RL_TAG}:until"


def rl_journal_key() -> str:
    """Sorted set: source -> change number of its last block or release (capped size)."""
    return f"{PREFIX}{RL_TAG}:journal"


def rl_counter_prefix(kind: str, dimension: str) -> str:
    """Prefix of the counter hashes of one (kind, dimension); append the source key."""
    return f"{PREFIX}{RL_TAG}:c:{kind}:{dimension}:"


def rl_counter_key(kind: str, dimension: str, key: str) -> str:
    """Hash of one source's counts of one kind. Fields: ``<unix second>`` events in that
    second (only the last ``window_s`` seconds are kept), ``t`` their sum, ``n`` the last
    second written, ``o`` the first second seen, ``b`` the raw EWMA of events per second.
    TTL ``max(window_s, 2 * baseline_s)`` after its last event."""
    return f"{rl_counter_prefix(kind, dimension)}{key}"


def rl_source(dimension: str, key: str) -> str:
    """Member naming a source in the block hash and sorted sets."""
    return f"{dimension}:{key}"
