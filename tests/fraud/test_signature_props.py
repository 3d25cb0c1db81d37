"""Properties of tracking tokens: any in-range token round-trips; nothing else verifies."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from fraud.errors import BadSignature, MalformedToken, TokenError
from fraud.signature import AdToken, TokenSigner

SIGNER = TokenSigner({"k1": b"old-secret-0123456789abcdef", "k22": "x" * 32}, "k1", ttl_s=900)
ROTATED = TokenSigner({"k1": b"old-secret-0123456789abcdef", "k22": "x" * 32}, "k22", ttl_s=900)


def _uint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=2**bits - 1)


tokens = st.builds(
    AdToken,
    imp_id=st.binary(min_size=12, max_size=12),
    campaign_id=_uint(32),
    product_id=_uint(32),
    price_micros=_uint(64),
    slot=_uint(8),
    placement=_uint(16),
    kind=_uint(8),
    issued_s=_uint(32),
    expires_s=st.integers(min_value=1, max_value=2**32 - 1),
    # Version 2 tokens carry the shopper (up to 120 bytes of utf-8); "" is version 1.
    shopper=st.one_of(st.just(""), st.text(min_size=1, max_size=30).filter(
        lambda s: len(s.encode()) <= 120)),
)
signers = st.sampled_from([SIGNER, ROTATED])


def _raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@given(tokens, signers)
def test_round_trip(token: AdToken, signer: TokenSigner) -> None:
    text = signer.sign(token)
    # Both signers list both keys, so either verifies the other's tokens.
    assert SIGNER.verify(text, token.expires_s - 1) == token
    assert ROTATED.verify(text, token.expires_s - 1) == token


@given(tokens, signers, st.data())
def test_any_bit_flip_is_refused(token: AdToken, signer: TokenSigner, data: st.DataObject) -> None:
    raw = bytearray(_raw(signer.sign(token)))
    bit = data.draw(st.integers(min_value=0, max_value=len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    text = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    try:
        got = signer.verify(text, 0)
    except (BadSignature, MalformedToken):
        return
    except TokenError as exc:
        # Flipping a key-id bit may name the other listed key or none at all.
        assert exc.reason in {"unknown_key"}
        return
    raise AssertionError(f"tampered token verified as {got!r}")


@given(st.text(max_size=200), st.integers(min_value=0, max_value=2**32))
def test_any_string_raises_only_token_error(text: str, now_s: int) -> None:
    try:
        SIGNER.verify(text, now_s)
    except TokenError:
        pass


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/",
               min_size=70, max_size=90))
def test_any_base64ish_string_raises_only_token_error(text: str) -> None:
    try:
        SIGNER.verify(text, 0)
    except TokenError:
        pass


@given(st.binary(min_size=0, max_size=80))
def test_any_bytes_raise_only_token_error(raw: bytes) -> None:
    try:
        SIGNER.verify(base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), 0)
    except TokenError:
        pass


@given(tokens, st.integers(min_value=1, max_value=80))
def test_truncated_token_is_refused(token: AdToken, cut: int) -> None:
    text = SIGNER.sign(token)
    try:
        SIGNER.verify(text[: max(0, len(text) - cut)], 0)
    except TokenError:
        return
    raise AssertionError("truncated token verified")


@given(tokens)
def test_other_secret_same_key_id_never_verifies(token: AdToken) -> None:
    forger = TokenSigner({"k1": b"another-secret-0123456789"}, "k1", ttl_s=900)
    try:
        SIGNER.verify(forger.sign(token), 0)
    except BadSignature:
        return
    raise AssertionError("token from another secret verified")


@given(key=st.binary(min_size=0, max_size=200), message=st.binary(max_size=300))
def test_prepared_hmac_equals_the_standard_library(key: bytes, message: bytes) -> None:
    import hmac as std_hmac

    from fraud.signature import HmacSha256

    assert HmacSha256(key).digest(message) == std_hmac.digest(key, message, "sha256")
