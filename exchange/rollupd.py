"""The report rollup (and the segment intake) as its own process: ``python -m exchange rollup``.

``serve`` starts it beside the request workers (setting ``rollup = "process"``), so the
analytics never take CPU or event-loop time from the ad path, and stops it on the way
out (it also dies with its parent). Several can run at once, on any machine: they share
the ``rollup`` consumer group, so each event is counted once. Campaign time zones (the
day an event belongs to) are read from the store and refreshed every 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from exchange import campaigns
from exchange.clock import campaign_zone
from exchange.embedded import die_with_parent
from exchange.rollup import Rollup
from exchange.segmentintake import SegmentIntake
from exchange.settings import Settings, load_placements

log = logging.getLogger("endcap.rollup")
REFRESH_S = 30


class CampaignZones:
    """Campaign id -> the zone its days are counted in, from the stored campaigns."""

    def __init__(self, client: aioredis.Redis, retailer: ZoneInfo) -> None:
        self._client = client
        self._retailer = retailer
        self._zones: dict[int, ZoneInfo] = {}

    async def refresh(self) -> None:
        records = await campaigns.load_all(self._client)
        self._zones = {r.id: campaign_zone(r.time_zone, self._retailer) for r in records}

    def __call__(self, campaign_id: int) -> ZoneInfo:
        return self._zones.get(campaign_id, self._retailer)


async def run(settings: Settings, redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    zones = CampaignZones(client, settings.zone)
    placements = load_placements(settings.resolve(settings.placements_file))
    rollup = Rollup(client, zone_of=zones, term_ttl_s=settings.token_ttl_s,
                    search_placements=[p.id for p in placements.values()
                                       if p.page_type == "search"])
    intake = SegmentIntake(client, redis_url)
    try:
        await zones.refresh()
        await rollup.ensure_group()
        await intake.ensure_group()
        rollup.start()
        intake.start()
        log.info("rollup consumer %s started", rollup.consumer)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_S)
            try:
                await zones.refresh()
            except (RedisError, OSError) as exc:
                log.warning("campaign zones not refreshed: %s", exc)
        intake.request_stop()
        await rollup.stop()  # finish the batch in hand (counted and acknowledged)
        await intake.stop()
        log.info("rollup consumer %s stopped: %d counted", rollup.consumer, rollup.counted)
    finally:
        await client.aclose()


def spawn(redis_url: str) -> subprocess.Popen[bytes]:
    """Start ``python -m exchange rollup`` as a child that dies with its parent (its logs
    go to the parent's stderr)."""
    return subprocess.Popen([sys.executable, "-m", "exchange", "rollup"],
                            env={**os.environ, "REDIS_URL": redis_url},
                            preexec_fn=die_with_parent)
