"""HMAC-SHA256 signatures: Leadterra's inbound one, and ours on outbound notifications.

Leadterra does not document the encoding, so an inbound signature is accepted as lowercase
(or uppercase) hex or base64, with or without a `sha256=` prefix, under the current secret or
the previous one during a rotation. Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="
#: the header our own outbound notifications carry
OUTBOUND_HEADER = "X-Leadrouter-Signature"


def sign_hex(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `body`, the form Leadterra sends."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _decode(signature: str) -> bytes | None:
    """The raw 32-byte digest a header value encodes, or None if it encodes none."""
    value = signature.strip()
    if value[: len(PREFIX)].lower() == PREFIX:
        value = value[len(PREFIX) :]
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            return None
    if len(value) in (43, 44):
        try:
            raw = base64.b64decode(
                value + "=" * (-len(value) % 4),
                altchars=b"-_" if ("-" in value or "_" in value) else None,
                validate=True,
            )
        except (binascii.Error, ValueError):
            return None
        return raw if len(raw) == 32 else None
    return None


def verify(signature: str | None, body: bytes, secrets: Iterable[str]) -> bool:
    """True when `signature` is the HMAC-SHA256 of `body` under any of `secrets`."""
    if not signature or len(signature) > 200:
        return False
    digest = _decode(signature)
    if digest is None:
        return False
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        ok |= hmac.compare_digest(expected, digest)
    return ok


def outbound_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Headers for a signed outbound notification.

    The signature covers `"{timestamp}.{body}"`, so the receiver can reject stale replays.
    """
    signed = f"{timestamp}.".encode() + body
    return {
        OUTBOUND_HEADER: f"t={timestamp},v1={sign_hex(secret, signed)}",
        "Content-Type": "application/json",
    }
