"""Tracking tokens: signing, verification failures by reason, key rotation, imp ids."""

from __future__ import annotations

import base64
import os

import pytest

from fraud.errors import (
    BadSignature,
    ExpiredToken,
    MalformedToken,
    TokenError,
    UnknownKey,
)
from fraud.signature import KIND_DISPLAY, AdToken, TokenSigner, new_imp_id

NOW = 1_750_000_000
OLD_SECRET = b"old-secret-0123456789abcdef"
NEW_SECRET = b"new-secret-0123456789abcdef"


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner({"k1": OLD_SECRET}, "k1", ttl_s=900)


def _token(signer: TokenSigner) -> AdToken:
    return signer.new_token(
        campaign_id=42, product_id=7, price_micros=850_000, slot=2, placement=3, now_s=NOW
    )


def _raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip(signer: TokenSigner) -> None:
    token = _token(signer)
    text = signer.sign(token)
    assert signer.verify(text, NOW) == token
    assert token.issued_s == NOW
    assert token.expires_s == NOW + 900
    assert len(token.imp_id) == 12


def test_text_is_url_safe_without_padding(signer: TokenSigner) -> None:
    for _ in range(50):
        text = signer.sign(_token(signer))
        assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_expired_at_expiry_second(signer: TokenSigner) -> None:
    text = signer.sign(_token(signer))
    assert signer.verify(text, NOW + 899).campaign_id == 42
    with pytest.raises(ExpiredToken) as info:
        signer.verify(text, NOW + 900)
    assert info.value.reason == "expired"


def test_unknown_key_id() -> None:
    other = TokenSigner({"zz": OLD_SECRET}, "zz", ttl_s=900)
    signer = TokenSigner({"k1": OLD_SECRET}, "k1", ttl_s=900)
    with pytest.raises(UnknownKey) as info:
        signer.verify(other.sign(_token(other)), NOW)
    assert info.value.reason == "unknown_key"


def test_same_key_id_other_secret_is_bad_signature() -> None:
    forger = TokenSigner({"k1": NEW_SECRET}, "k1", ttl_s=900)
    signer = TokenSigner({"k1": OLD_SECRET}, "k1", ttl_s=900)
    with pytest.raises(BadSignature) as info:
        signer.verify(forger.sign(_token(forger)), NOW)
    assert info.value.reason == "bad_signature"


def test_rotation_overlap_then_removal() -> None:
    before = TokenSigner({"k1": OLD_SECRET}, "k1", ttl_s=900)
    old_text = before.sign(_token(before))
    during = TokenSigner({"k1": OLD_SECRET, "k2": NEW_SECRET}, "k2", ttl_s=900)
    new_text = during.sign(_token(during))
    assert during.verify(old_text, NOW).campaign_id == 42
    assert during.verify(new_text, NOW).campaign_id == 42
    assert _raw(new_text)[2:4] == b"k2"  # only current signs
    after = TokenSigner({"k2": NEW_SECRET}, "k2", ttl_s=900)
    assert after.verify(new_text, NOW).campaign_id == 42
    with pytest.raises(UnknownKey):
        after.verify(old_text, NOW)


def test_forged_price_is_bad_signature(signer: TokenSigner) -> None:
    raw = bytearray(_raw(signer.sign(_token(signer))))
    price_at = 2 + 2 + 12 + 4 + 4  # header, "k1", imp_id, campaign, product
    raw[price_at + 7] ^= 0x01
    with pytest.raises(BadSignature):
        signer.verify(_text(bytes(raw)), NOW)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "!!!!",
        "not a token",
        "A" * 81,
        "A" * 10_000,
        "é" * 80,
        "\x00" * 80,
    ],
)
def test_garbage_is_malformed(signer: TokenSigner, text: str) -> None:
    with pytest.raises(MalformedToken) as info:
        signer.verify(text, NOW)
    assert info.value.reason == "malformed"


def test_truncations_are_refused(signer: TokenSigner) -> None:
    text = signer.sign(_token(signer))
    for cut in range(len(text)):
        with pytest.raises(TokenError):
            signer.verify(text[:cut], NOW)


def test_wrong_version_is_malformed(signer: TokenSigner) -> None:
    raw = bytearray(_raw(signer.sign(_token(signer))))
    raw[0] = 2
    with pytest.raises(MalformedToken):
        signer.verify(_text(bytes(raw)), NOW)


def test_padding_or_standard_alphabet_is_malformed(signer: TokenSigner) -> None:
    token = _token(signer)
    text = signer.sign(token)
    raw = _raw(text)
    with pytest.raises(MalformedToken):
        signer.verify(text + "=" * (-len(text) % 4 or 4), NOW)
    with pytest.raises(MalformedToken):
        signer.verify(base64.b64encode(raw).rstrip(b"=").decode().replace("-", "+"), NOW)


def test_non_canonical_trailing_bits_are_malformed() -> None:
    # A 3-letter key id gives 61 raw bytes: the last character carries 4 unused bits.
    signer = TokenSigner({"abc": OLD_SECRET}, "abc", ttl_s=900)
    text = signer.sign(_token(signer))
    assert len(_raw(text)) % 3 == 1
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    assert signer.verify(text, NOW).campaign_id == 42
    with pytest.raises(MalformedToken):
        signer.verify(text[:-1] + alphabet[last | 1], NOW)


def test_display_token_fields_survive(signer: TokenSigner) -> None:
    token = AdToken(
        imp_id=b"\xff" * 12,
        campaign_id=2**32 - 1,
        product_id=0,
        price_micros=2**64 - 1,
        slot=255,
        placement=2**16 - 1,
        kind=KIND_DISPLAY,
        issued_s=0,
        expires_s=2**32 - 1,
    )
    assert signer.verify(signer.sign(token), NOW) == token


@pytest.mark.parametrize(
    ("field", "value"),
    [("campaign_id", 2**32), ("price_micros", -1), ("slot", 256), ("imp_id", b"short")],
)
def test_sign_refuses_out_of_range_fields(signer: TokenSigner, field: str, value: object) -> None:
    token = _token(signer)
    bad = AdToken(**{**{f: getattr(token, f) for f in token.__struct_fields__}, field: value})
    with pytest.raises(ValueError):
        signer.sign(bad)


@pytest.mark.parametrize(
    ("keys", "current", "ttl_s"),
    [
        ({"k1": OLD_SECRET}, "k2", 900),
        ({"": OLD_SECRET}, "", 900),
        ({"way-too-long": OLD_SECRET}, "way-too-long", 900),
        ({"kö": OLD_SECRET}, "kö", 900),
        ({"k1": b"short"}, "k1", 900),
        ({"k1": OLD_SECRET}, "k1", 0),
    ],
)
def test_bad_configuration(keys: dict[str, bytes], current: str, ttl_s: int) -> None:
    with pytest.raises(ValueError):
        TokenSigner(keys, current, ttl_s)


def test_str_secret_equals_its_utf8_bytes() -> None:
    as_str = TokenSigner({"k1": OLD_SECRET.decode()}, "k1", ttl_s=900)
    as_bytes = TokenSigner({"k1": OLD_SECRET}, "k1", ttl_s=900)
    assert as_bytes.verify(as_str.sign(_token(as_str)), NOW).campaign_id == 42


def test_imp_ids_are_unique() -> None:
    ids = {new_imp_id() for _ in range(100_000)}
    assert len(ids) == 100_000
    assert all(len(i) == 12 for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_imp_ids_differ_after_fork() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id and leave without running pytest's teardown
        os.write(write_end, new_imp_id())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 12)
    os.close(read_end)
    os.waitpid(pid, 0)
    parent_id = new_imp_id()
    assert child_id[:4] != parent_id[:4]


def test_retired_key_verifies_until_its_window_ends() -> None:
    from fraud.errors import RetiredKey

    old = TokenSigner({"k1": b"a" * 32}, "k1", 3600)
    token = old.sign(old.new_token(campaign_id=1, price_micros=5, now_s=1000))
    rotated = TokenSigner({"k1": b"a" * 32, "k2": b"b" * 32}, "k2", 3600,
                          retired={"k1": 2000})
    assert rotated.verify(token, 1999).campaign_id == 1
    with pytest.raises(RetiredKey) as err:
        rotated.verify(token, 2000)
    assert err.value.reason == "retired_key"
    with pytest.raises(ValueError):
        TokenSigner({"k1": b"a" * 32}, "k1", 3600, retired={"k1": 5})
