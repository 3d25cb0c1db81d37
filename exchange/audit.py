"""The audit log of a campaign: who changed what, when, before and after.

Each create or change appends one entry to the campaign's stream (``ex:audit:cmp:<id>``,
bounded to ~1000 entries) in the same transaction as the write, so the log and the stored
campaign cannot disagree. ``GET /v1/campaigns/{id}/audit`` reads it, newest first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis

from exchange import keys

MAXLEN = 1_000


class AuditEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    at: datetime
    who: str  # "adv_<id>" (key id when known) or "operator"
    action: str  # "create" or "update"
    version: int
    before: dict[str, Any] | None = None  # the campaign as the API showed it
    after: dict[str, Any]
    changed: list[str] = []  # top-level fields that differ


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntry]


_encoder = msgspec.json.Encoder()


def entry_fields(*, who: str, action: str, version: int, before: Any, after: Any,
                 at_ms: int) -> dict[str, bytes | str | int]:
    """Stream fields of one entry (``before``/``after``: API-shaped Structs or None)."""
    before_d = msgspec.to_builtins(before) if before is not None else None
    after_d = msgspec.to_builtins(after)
    changed = sorted(k for k in set(after_d) | set(before_d or {})
                     if before_d is None or before_d.get(k) != after_d.get(k))
    return {"at": at_ms, "who": who, "action": action, "version": version,
            "before": _encoder.encode(before_d), "after": _encoder.encode(after_d),
            "changed": _encoder.encode(changed)}


async def read(client: aioredis.Redis, campaign_id: int, limit: int = 100) -> list[AuditEntry]:
    rows = await client.xrevrange(keys.campaign_audit(campaign_id), count=limit)
    out = []
    for _, f in rows:
        g = {(k.decode() if isinstance(k, bytes) else k): v for k, v in f.items()}
        before = msgspec.json.decode(g["before"])
        out.append(AuditEntry(
            at=datetime.fromtimestamp(int(g["at"]) / 1000, tz=UTC), who=_s(g["who"]),
            action=_s(g["action"]), version=int(g["version"]), before=before,
            after=msgspec.json.decode(g["after"]), changed=msgspec.json.decode(g["changed"])))
    return out


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
