"""SIVT rate limiter: per-source event rates shared by every worker, checked without Redis.

A *source* is a dimension and a key (``ip`` "203.0.113.9", ``shopper`` id, ``device``
hash). The hot path calls :meth:`RateLimiter.hit` once per dimension: it adds 1 to an
in-process table of pending counts and looks the source up in the local set of blocked
sources, two dict operations and no I/O. A background task calls :meth:`RateLimiter.sync`
every ``sync_ms`` (200 ms): one ``ratelimit.lua`` call adds the pending counts to
per-second buckets in Redis, judges every source it touched against its
:class:`Limits`, releases expired blocks and answers the block-list changes this worker
has not seen, which it applies to its local set. So a source that floods any mix of
workers is blocked everywhere about one sync period after its counts reach Redis
(~0.2-0.4 s), and the hot path never waits for Redis.

Rules (per kind and dimension, see ``DEFAULT_LIMITS``):

- ``rate_limited``: more than ``max_events`` in the last ``window_s`` seconds (whole
  seconds, the current one included).
- ``traffic_spike``: the last second's rate (this second plus the unexpired part of the
  previous one) is at least ``spike_factor`` x the source's baseline and at least
  ``spike_min`` events/s. The baseline is a bias-corrected EWMA of events per second
  (time constant ``baseline_s``) over the completed seconds before those two; it learns
  nothing while the source is blocked nor from a second that was itself a spike. A
  source with less than ``WARMUP_S`` seconds of baseline is judged by ``max_events``
  alone.
- A block lasts ``block_s`` after the last sync that still found the source over a
  limit; then it is released. A source blocks all its kinds (a click flooder gets no ads).

All keys share the hash tag ``{rl}`` (see ``fraud.keys``): the limiter lives on one shard
of a Redis Cluster, which is fine as it is small and batched.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from operator import itemgetter
from typing import Any

import redis.asyncio as aioredis

from fraud.keys import (
    rl_blocks_key,
    rl_counter_prefix,
    rl_journal_key,
    rl_meta_key,
    rl_until_key,
)

__all__ = [
    "DEFAULT_LIMITS",
    "RATE_LIMITED",
    "TRAFFIC_SPIKE",
    "Block",
    "Limits",
    "RateLimiter",
    "SyncResult",
]

RATELIMIT_LUA = files("fraud").joinpath("ratelimit.lua").read_text()

RATE_LIMITED = "rate_limited"
TRAFFIC_SPIKE = "traffic_spike"
WARMUP_S = 5  # seconds of history before a source has a baseline to spike against
JOURNAL_MAX = 100_000  # block-list changes kept for workers catching up; older: snapshot
RELEASE_MAX = 10_000  # blocks released per sync at most (the rest on the next one)
STATE_IDLE_S = 600  # the shared block keys outlive the longest block by this much


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of one (kind, dimension). Rates are events per second."""

    window_s: int
    max_events: int  # per window; more blocks the source as ``rate_limited``
    spike_factor: float = 100.0
    spike_min: int = 20
    block_s: int = 60
    baseline_s: int = 60  # EWMA time constant of the baseline rate

    def __post_init__(self) -> None:
        # The spike rate reads the previous second's bucket: a window keeps at least two.
        if self.window_s < 2:
            raise ValueError(f"window_s must be >= 2, got {self.window_s}")
        for name in ("max_events", "spike_min", "block_s", "baseline_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.spike_factor > 0:
            raise ValueError(f"spike_factor must be > 0, got {self.spike_factor}")

    @property
    def keep_s(self) -> int:
        """How long a source's counters and baseline outlive its last event."""
        return max(self.window_s, 2 * self.baseline_s)


# Ad requests are one per page view (slots ride in the request), impressions up to the ads
# per page, clicks ~1-3% of impressions. A person sustains at most a page every ~2 s; the
# per-shopper and per-device limits do the fine work. IP limits are the volumetric
# backstop and stay loose: a store's Wi-Fi or a mobile carrier's NAT puts hundreds of
# shoppers and the in-store screens behind one address, and blocking it blanks ads for all
# of them. Device hashes collide across identical phones, so they sit in between.
# Clicks are what advertisers pay for: tight per shopper, longer windows and blocks.
DEFAULT_LIMITS: Mapping[tuple[str, str], Limits] = {
    ("ad_request", "ip"): Limits(window_s=10, max_events=1200, spike_min=200),
    ("ad_request", "shopper"): Limits(window_s=10, max_events=100, spike_min=30),
    ("ad_request", "device"): Limits(window_s=10, max_events=300, spike_min=60),
    ("impression", "ip"): Limits(window_s=10, max_events=4800, spike_min=800),
    ("impression", "shopper"): Limits(window_s=10, max_events=400, spike_min=120),
    ("impression", "device"): Limits(window_s=10, max_events=1200, spike_min=240),
    ("click", "ip"): Limits(window_s=60, max_events=300, spike_min=20, block_s=300),
    ("click", "shopper"): Limits(window_s=60, max_events=20, spike_min=5, block_s=300),
    ("click", "device"): Limits(window_s=60, max_events=60, spike_min=10, block_s=300),
}


@dataclass(frozen=True, slots=True)
class Block:
    kind: str  # the kind whose counts made the block
    dimension: str
    key: str
    reason: str  # RATE_LIMITED or TRAFFIC_SPIKE
    until_ms: int


SYNC_CHUNK = 500  # sources per script call (see RateLimiter.sync)


@dataclass(frozen=True, slots=True)
class SyncResult:
    sources: int  # (kind, dimension, key) entries sent
    events: int  # their summed counts
    dropped_sources: int  # entries over max_sources_per_sync, smallest counts first
    dropped_events: int
    blocked: tuple[Block, ...]  # blocks this call made
    released: int  # blocks this call released (any worker's)
    changes: int  # block-list changes applied locally (all of them when reset)
    reset: bool  # the local set was replaced by a full snapshot
    blocked_now: int  # sources blocked in the local set after the sync
    now_ms: int  # the time the script judged at (the server's when none was given)


class RateLimiter:
    """Counts events per source locally and shares them through Redis in batches.

    ``hit`` and ``blocked`` are synchronous and never touch Redis; only ``sync`` does.
    One instance per worker process; all instances on one Redis share counts and blocks.
    Not thread-safe: call everything from the event loop's thread.
    """

    __slots__ = (
        "_blocked",
        "_client",
        "_last_seq",
        "_limit_args",
        "_max_sources",
        "_pairs",
        "_pending",
        "_prefixes",
        "_script",
    )

    def __init__(
        self,
        client: aioredis.Redis,
        limits: Mapping[tuple[str, str], Limits] | None = None,
        *,
        max_sources_per_sync: int = 20_000,
    ) -> None:
        limits = dict(DEFAULT_LIMITS if limits is None else limits)
        if not limits:
            raise ValueError("limits must not be empty")
        if max_sources_per_sync < 1:
            raise ValueError(f"max_sources_per_sync must be >= 1, got {max_sources_per_sync}")
        for kind, dimension in limits:
            for name in (kind, dimension):
                if not name or ":" in name or not name.isascii():
                    raise ValueError(f"kind and dimension must be ASCII without ':', got {name!r}")
        self._client = client
        self._max_sources = max_sources_per_sync
        self._pairs: tuple[tuple[str, str], ...] = tuple(limits)
        self._prefixes = tuple(rl_counter_prefix(k, d) for k, d in self._pairs)
        self._limit_args: list[int | float] = []
        for (kind, dimension), lim in limits.items():
            self._limit_args += [
                lim.window_s,
                lim.max_events,
                lim.spike_factor,
                lim.spike_min,
                lim.block_s * 1000,
                -math.expm1(-1.0 / lim.baseline_s),  # EWMA weight of one second
                lim.keep_s,
                len(rl_counter_prefix(kind, dimension)) - len(dimension) - 1,
            ]
        self._pending = self._fresh_pending()
        self._blocked: dict[str, dict[str, str]] = {d: {} for _, d in self._pairs}
        self._last_seq = -1  # never synced: the first sync brings a full snapshot
        # EVALSHA, falling back to loading the script once if the server lost it.
        self._script = client.register_script(RATELIMIT_LUA)

    def _fresh_pending(self) -> dict[str, dict[str, dict[str, int]]]:
        pending: dict[str, dict[str, dict[str, int]]] = {}
        for kind, dimension in self._pairs:
            pending.setdefault(kind, {})[dimension] = {}
        return pending

    def hit(self, kind: str, dimension: str, key: str) -> str:
        """Count one event of ``kind`` from the source; "" if it may pass, else the reason.

        Raises ``KeyError`` for a (kind, dimension) without limits.
        """
        counts = self._pending[kind][dimension]
        try:
            counts[key] += 1
        except KeyError:
            counts[key] = 1
        return self._blocked[dimension].get(key, "")

    def blocked(self, dimension: str, key: str) -> str:
        """The reason the source is blocked ("" if it is not), from the local set; no I/O."""
        table = self._blocked.get(dimension)
        return table.get(key, "") if table is not None else ""

    def pending_sources(self) -> int:
        """Entries waiting for the next sync."""
        return sum(len(t) for by_dim in self._pending.values() for t in by_dim.values())

    async def sync(self, now_ms: int | None = None) -> SyncResult:
        """Send the pending counts in one script call and apply the block-list changes.

        ``now_ms`` defaults to the Redis server's clock, which keeps every worker on one
        clock. On a Redis error the exception propagates, this batch's counts are lost
        (the next batch starts afresh) and the local blocked set is left as it was.
        """
        pending, self._pending = self._pending, self._fresh_pending()
        entries: list[tuple[int, int, str]] = []
        for index, (kind, dimension) in enumerate(self._pairs):
            for key, count in pending[kind][dimension].items():
                entries.append((count, index, key))
        total_events = sum(e[0] for e in entries)
        dropped = len(entries) - self._max_sources
        dropped_events = 0
        if dropped > 0:
            entries = heapq.nlargest(self._max_sources, entries, key=itemgetter(0))
            dropped_events = total_events - sum(e[0] for e in entries)
        else:
            dropped = 0

        # Several script calls of at most SYNC_CHUNK sources: packing one argument per
        # source is synchronous Python work (~1 µs each), and one call of thousands would
        # hold the event loop (and every request waiting on it) for milliseconds.
        blocks: list[Block] = []
        released = changed = 0
        reset = False
        judged_ms = 0
        for start in range(0, max(len(entries), 1), SYNC_CHUNK):
            made, freed, applied, was_reset, judged_ms = await self._send(
                entries[start : start + SYNC_CHUNK], now_ms)
            blocks.extend(made)
            released += freed
            changed += applied
            reset = reset or was_reset
        return SyncResult(
            sources=len(entries),
            events=total_events - dropped_events,
            dropped_sources=dropped,
            dropped_events=dropped_events,
            blocked=tuple(blocks),
            released=released,
            changes=changed,
            reset=reset,
            blocked_now=sum(len(t) for t in self._blocked.values()),
            now_ms=judged_ms,
        )

    async def _send(self, entries: list[tuple[int, int, str]], now_ms: int | None
                    ) -> tuple[list[Block], int, int, bool, int]:
        """One script call: add these counts, apply the block-list changes since our last
        sequence number. Returns (blocks made, released, changes applied, reset, time)."""
        keys = [rl_meta_key(), rl_blocks_key(), rl_until_key(), rl_journal_key()]
        args: list[Any] = [
            "" if now_ms is None else int(now_ms),
            self._last_seq,
            self._state_ttl_ms(),
            JOURNAL_MAX,
            RELEASE_MAX,
            WARMUP_S,
            len(self._pairs),
            *self._limit_args,
        ]
        prefixes, pairs, blocked = self._prefixes, self._pairs, self._blocked
        batch = []
        for count, index, key in entries:
            keys.append(prefixes[index] + key)
            # A negative count tells the script the source is blocked here: its baseline
            # must not learn from this traffic (saves a lookup per source in Redis).
            frozen = key in blocked.get(pairs[index][1], ())
            batch.append(f"{index + 1} {-count if frozen else count} ")
        args.append("".join(batch))

        reply = await self._script(keys=keys, args=args, client=self._client)
        seq, reset, changes, made, released, judged_ms = reply

        if reset:
            fresh: dict[str, dict[str, str]] = {d: {} for _, d in self._pairs}
            for j in range(0, len(changes), 3):
                dimension, key = _str(changes[j]).split(":", 1)
                fresh.setdefault(dimension, {})[key] = _str(changes[j + 1])
            self._blocked = fresh
        else:
            blocked = self._blocked
            for j in range(0, len(changes), 3):
                dimension, key = _str(changes[j]).split(":", 1)
                reason = _str(changes[j + 1])
                table = blocked.setdefault(dimension, {})
                if reason:
                    table[key] = reason
                else:
                    table.pop(key, None)
        self._last_seq = int(seq)

        blocks = []
        for j in range(0, len(made), 4):
            kind, dimension = self._pairs[int(made[j]) - 1]
            key = _str(made[j + 1]).split(":", 1)[1]
            blocks.append(Block(kind, dimension, key, _str(made[j + 2]), int(made[j + 3])))
        return blocks, int(released), len(changes) // 3, bool(reset), int(judged_ms)

    def _state_ttl_ms(self) -> int:
        longest = max(lim_block_ms for lim_block_ms in self._limit_args[4::8])
        return int(longest) + STATE_IDLE_S * 1000


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
