"""``Idempotency-Key`` on POST: a retried create returns the first answer, creates nothing twice.

The first request with a key claims it (``SET NX``, a short *pending* marker) and, when it
succeeds, stores its status and body for ``TTL_S``. A retry with the same key and the
same body gets that answer again (header ``Idempotent-Replayed: true``); with another body
it is refused (422 ``idempotency_key_reused``); while the first is still running, 409
``idempotency_in_progress``. A request that fails (4xx) releases the key, so the client
can correct it and retry under the same key. Keys are scoped per caller and route, so two
advertisers can never see each other's answers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import msgspec
import redis.asyncio as aioredis

from exchange import keys
from exchange.errors import BadRequest, Conflict

HEADER = "idempotency-key"
TTL_S = 86_400
PENDING_TTL_S = 60  # a claim whose request died is released after this
_VALID = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces


@dataclass(frozen=True, slots=True)
class Stored:
    status: int
    body: bytes


class Claim:
    """One request's hold on its key: ``replay`` is set when the answer is already known."""

    def __init__(self, client: aioredis.Redis, redis_key: str, fingerprint: str,
                 replay: Stored | None) -> None:
        self._client = client
        self._key = redis_key
        self._fingerprint = fingerprint
        self.replay = replay

    async def done(self, status: int, body: bytes) -> None:
        await self._client.set(
            self._key, msgspec.msgpack.encode(("done", self._fingerprint, status, body)),
            ex=TTL_S)

    async def release(self) -> None:
        await self._client.delete(self._key)


async def claim(client: aioredis.Redis, scope: str, key: str | None, body: bytes
                ) -> Claim | None:
    """None without a key; otherwise the claim (check ``replay`` first)."""
    if key is None:
        return None
    if not _VALID.fullmatch(key):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters",
                         field="Idempotency-Key")
    redis_key = keys.idempotency(scope, key)
    fingerprint = hashlib.sha256(body).hexdigest()
    pending = msgspec.msgpack.encode(("pending", fingerprint, 0, b""))
    if await client.set(redis_key, pending, nx=True, ex=PENDING_TTL_S):
        return Claim(client, redis_key, fingerprint, None)
    raw = await client.get(redis_key)
    if raw is None:  # expired between the two calls: claim again
        return await claim(client, scope, key, body)
    state, seen, status, stored = msgspec.msgpack.decode(raw)
    if seen != fingerprint:
        raise BadRequest("this Idempotency-Key was used with another request body",
                         field="Idempotency-Key", code="idempotency_key_reused", status=422)
    if state != "done":
        raise Conflict("a request with this Idempotency-Key is still in progress",
                       field="Idempotency-Key", code="idempotency_in_progress")
    return Claim(client, redis_key, fingerprint, Stored(int(status), bytes(stored)))
