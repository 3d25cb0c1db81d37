"""Every operation in ``/openapi.json`` fuzzed against the real app (schemathesis).

The app runs in process over ASGI with its lifespan, so the runtime, Redis and the index
are the real ones. Valid and invalid inputs, seeded: no answer may be a 5xx, and every
answer must be documented (status code, content type, body schema). Bad input must get a
4xx, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from exchange.app import Exchange
from exchange.openapi import deployed
from exchange.settings import load_placements
from tests.exchange.conftest import BROWSER_UA, OP, PRODUCTS, campaign_body, make_settings

EXAMPLES = 25  # per operation and phase: the file runs in ~25 s
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance,
          content_type_conformance, response_schema_conformance, negative_data_rejection]
_CONFIG: dict[str, Any] = {
    "seed": 20261123,
    # The test sends the keys itself (an advertiser's key exists only once the app runs).
    "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True,
                   "with-security-parameters": False},
    # The ad path is the one the public reaches: fuzz it harder.
    "operations": [{"include-path": "/v1/ads", "generation": {"max-examples": 4 * EXAMPLES}}],
}


class Api:
    """One started app, and the keys to call it with."""

    def __init__(self, app: Exchange) -> None:
        self.app = app
        self.advertiser: dict[str, str] = {}

    def headers(self, path: str) -> dict[str, str]:
        own = path.startswith(("/v1/campaigns", "/v1/reports", "/v1/keys"))
        auth = self.advertiser if own else OP
        return {"User-Agent": BROWSER_UA, **auth}

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        with asgi.get_client(self.app) as client:  # the transport schemathesis calls through
            response = client.request(method, path, json=body,
                                      headers={"User-Agent": BROWSER_UA, **(headers or {})})
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json()


# Built at import (pytest parametrizes from it); the fixture checks the app serves it.
_SETTINGS = make_settings()
_PLACEMENTS = load_placements(_SETTINGS.resolve(_SETTINGS.placements_file))
schema = schemathesis.openapi.from_dict(deployed(_PLACEMENTS),
                                        config=schemathesis.Config.from_dict(_CONFIG))


@pytest.fixture
def api(redis_url: str, redis_sync: redis.Redis) -> Iterator[Api]:
    """A fresh app per operation (schemathesis ends the lifespan with each test), seeded
    with a catalogue, an advertiser and its campaign ``cmp_1``, the documented example."""
    api = Api(Exchange(make_settings(), redis_url))
    assert api.call("GET", "/openapi.json") == schema.raw_schema
    api.call("PUT", "/v1/catalog/products", PRODUCTS, OP)
    key = api.call("POST", "/v1/advertisers", {"name": "Oatly"}, OP)["api_key"]
    api.advertiser = {"Authorization": f"Bearer {key}"}
    created = api.call("POST", "/v1/campaigns", campaign_body(), api.advertiser)
    assert created["id"] == "cmp_1", created
    yield api


@pytest.mark.slow
@schema.parametrize()
# One app per operation, shared by its examples on purpose (function_scoped_fixture).
@settings(deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_every_operation_answers_as_documented(case: schemathesis.Case, api: Api) -> None:
    case.call_and_validate(headers=api.headers(case.operation.path), checks=CHECKS,
                           app=api.app)

