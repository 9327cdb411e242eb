"""Slack's request signing (v0) for interactive actions at `POST /slack/actions`.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with HMAC-SHA256 under the app's
signing secret and sends `X-Slack-Signature: v0=<lowercase hex>`. `verify_slack` refuses a
missing header, a timestamp that is not whole unix seconds or is more than `tolerance` seconds
from `now` either way, and a signature that matches under none of the secrets (constant time;
a list holds the previous secret during a rotation). Verify over the raw body, before parsing.

Within the tolerance a captured request still verifies, so the caller also stores
`replay_key(timestamp, signature)` with `SET NX EX REPLAY_TTL_SECONDS` and refuses the request
when the key already exists. Refusals are `SlackRefused` (401); nothing in them is secret.
"""

from __future__ import annotations

import hashlib
import hmac

from worker.errors import SlackRefused

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
VERSION = "v0"
#: Slack's recommended window: five minutes
DEFAULT_TOLERANCE = 300
#: how long a replay key must live: a request is acceptable from `ts - tolerance` to
#: `ts + tolerance`, so twice the tolerance covers every moment it could be replayed
REPLAY_TTL_SECONDS = 2 * DEFAULT_TOLERANCE
_MAX_TIMESTAMP_DIGITS = 12


def sign_slack(signing_secret: str, *, body: bytes, timestamp: str) -> str:
    """The `X-Slack-Signature` value Slack would send: for tests and the sandbox."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def _timestamp(value: str, now: int, tolerance: int) -> None:
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS):
        raise SlackRefused("Slack timestamp is not unix seconds", reason="malformed")
    skew = now - int(value)
    if skew > tolerance:
        raise SlackRefused("Slack timestamp is too old", reason="stale")
    if skew < -tolerance:
        raise SlackRefused("Slack timestamp is in the future", reason="stale")


def verify_slack(
    signing_secret: str | list[str],
    *,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> None:
    """Return when the request is Slack's and fresh; raise SlackRefused otherwise.

    Raises ValueError when no non-empty signing secret is given (a setting bug).
    """
    secrets = [signing_secret] if isinstance(signing_secret, str) else list(signing_secret)
    if not secrets or not all(secrets):
        raise ValueError("at least one non-empty Slack signing secret is required")
    if not timestamp or not signature:
        raise SlackRefused("Slack signature or timestamp header is missing", reason="missing")
    _timestamp(timestamp, now, tolerance)
    if not signature.isascii():
        raise SlackRefused("Slack signature is not v0 hex", reason="malformed")
    given = signature.encode()
    ok = False
    for secret in secrets:
        expected = sign_slack(secret, body=body, timestamp=timestamp).encode()
        ok |= hmac.compare_digest(expected, given)
    if not ok:
        raise SlackRefused("Slack signature does not match", reason="signature")


def replay_key(timestamp: str, signature: str) -> str:
    """A fixed-length name for one signed request, unprefixed: store it (under the deployment's
    key prefix) with SET NX EX REPLAY_TTL_SECONDS after `verify_slack`; a second SET that finds
    it means a replay. The signature is hashed, so Redis never holds it."""
    digest = hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
    return f"slack:replay:{digest}"
