"""Errors raised by the invalid-traffic library.

Hierarchy::

    FraudError               base for everything this package raises on bad input
    └── TokenError           a tracking token was refused; ``reason`` says why
        ├── MalformedToken   reason "malformed": not base64url, wrong length, unknown version
        ├── UnknownKey       reason "unknown_key": its key id is not (or no longer) listed
        ├── RetiredKey       reason "retired_key": its key's overlap window has ended
        ├── BadSignature     reason "bad_signature": the MAC does not match
        └── ExpiredToken     reason "expired": ``now_s >= expires_s``

``reason`` values are stable snake_case strings: the edge logs and counts them, and
clients never see them (a refused beacon still answers 204).
"""

from __future__ import annotations


class FraudError(Exception):
    """Base class of the errors raised by ``fraud``."""


class TokenError(FraudError):
    reason = "invalid_token"


class MalformedToken(TokenError):
    reason = "malformed"


class UnknownKey(TokenError):
    reason = "unknown_key"


class RetiredKey(TokenError):
    reason = "retired_key"


class BadSignature(TokenError):
    reason = "bad_signature"


class ExpiredToken(TokenError):
    reason = "expired"
