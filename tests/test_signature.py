import base64
import hashlib
import hmac

import pytest

from worker import signature

SECRET = "whsec_test_0123456789"
BODY = b'{"event":"reply.received","data":{"reply":{"id":"rpl_1"}}}'
DIGEST = hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()


@pytest.mark.parametrize(
    "header",
    [
        DIGEST.hex(),
        DIGEST.hex().upper(),
        "sha256=" + DIGEST.hex(),
        "SHA256=" + DIGEST.hex(),
        base64.b64encode(DIGEST).decode(),
        base64.b64encode(DIGEST).decode().rstrip("="),
        "sha256=" + base64.b64encode(DIGEST).decode(),
        base64.urlsafe_b64encode(DIGEST).decode(),
        "  " + DIGEST.hex() + " ",
    ],
)
def test_every_encoding_of_the_right_digest_verifies(header: str) -> None:
    assert signature.verify(header, BODY, [SECRET])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "not-a-signature",
        DIGEST.hex()[:-2],
        "0" * 64,
        "x" * 500,
        base64.b64encode(DIGEST[:16]).decode(),
        DIGEST.hex() + "00",
    ],
)
def test_anything_else_is_rejected(header: str | None) -> None:
    assert not signature.verify(header, BODY, [SECRET])


def test_a_signature_over_another_body_is_rejected() -> None:
    assert not signature.verify(DIGEST.hex(), BODY + b" ", [SECRET])


def test_the_previous_secret_verifies_during_a_rotation() -> None:
    old = hmac.new(b"old-secret-value", BODY, hashlib.sha256).hexdigest()
    assert signature.verify(old, BODY, [SECRET, "old-secret-value"])
    assert not signature.verify(old, BODY, [SECRET])


def test_sign_hex_is_what_leadterra_sends() -> None:
    assert signature.sign_hex(SECRET, BODY) == DIGEST.hex()


def test_outbound_headers_sign_the_timestamp_and_the_body() -> None:
    headers = signature.outbound_headers(SECRET, BODY, 1_700_000_000)
    value = headers[signature.OUTBOUND_HEADER]
    assert value.startswith("t=1700000000,v1=")
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert value.endswith(expected)
