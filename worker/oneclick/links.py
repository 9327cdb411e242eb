"""Signed one-click links: `sendUrl` on a notified draft, a capability anyone holding it can use.

    {base_url}/actions/send?d=<draft>&f=<follow-up>&s=<sdr>&e=<expiry>&sig=<hmac>

`sig` is the base64url HMAC-SHA256, under `ACTION_SECRET`, of a length-prefixed encoding of
(version, purpose, draft, follow-up, SDR, expiry), so no field can bleed into its neighbour. Ids
are opaque and percent-encoded whole. A link is good while `now < expires_at`. `verify_link`
takes the current secret and, during a rotation, the previous one; it checks the signature
(constant time) before the expiry, so "expired" only ever names a genuine link.

Every refusal is one `LinkRefused` (403); its `reason` says which check failed. Neither the
error nor `LinkClaims` ever carries a secret or a signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from worker.errors import LinkRefused

#: ACTION_LINK_TTL_HOURS' default, in seconds
DEFAULT_TTL_SECONDS = 24 * 60 * 60
PURPOSE = "send"
PATH = "/actions/send"
#: bumped if the canonical encoding ever changes, so old links fail closed
VERSION = "leadrouter-action-v1"
#: query parameter for each claim, in URL order
PARAMS = ("d", "f", "s", "e")
SIG_PARAM = "sig"
_MAX_EXPIRY_DIGITS = 12


@dataclass(frozen=True)
class LinkClaims:
    """What a verified link grants: sending this draft, for this follow-up, as this SDR."""

    draft_id: str
    followup_id: str
    sdr_id: str
    expires_at: int


def _canonical(draft_id: str, followup_id: str, sdr_id: str, expires_at: int) -> bytes:
    """Each field as `<utf-8 byte length>:<bytes>`, in a fixed order."""
    fields = (VERSION, PURPOSE, draft_id, followup_id, sdr_id, str(expires_at))
    out = bytearray()
    for field in fields:
        raw = field.encode()
        out += b"%d:" % len(raw) + raw
    return bytes(out)


def _mac(secret: str, message: bytes) -> bytes:
    """The URL-safe, unpadded base64 HMAC-SHA256 of `message` (43 ASCII bytes)."""
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


def _secrets(secret: str | Sequence[str]) -> list[str]:
    found = [secret] if isinstance(secret, str) else list(secret)
    if not found or not all(found):
        raise ValueError("at least one non-empty action secret is required")
    return found


def sign_link(
    secret: str,
    *,
    draft_id: str,
    followup_id: str,
    sdr_id: str,
    expires_at: int,
    base_url: str,
) -> str:
    """The absolute send link for a draft under `base_url` (e.g. PUBLIC_BASE_URL).

    Raises ValueError for an empty secret or id, or a `base_url` that is not an absolute
    http(s) URL without query or fragment: those are bugs or bad settings, not bad clicks.
    """
    (key,) = _secrets(secret)
    if not (draft_id and followup_id and sdr_id):
        raise ValueError("draft, follow-up and SDR ids must be non-empty")
    if expires_at < 0:
        raise ValueError("expires_at must be a unix time")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("base_url must be an absolute http(s) URL without query or fragment")
    sig = _mac(key, _canonical(draft_id, followup_id, sdr_id, expires_at)).decode()
    values = (draft_id, followup_id, sdr_id, str(expires_at), sig)
    query = urlencode(list(zip((*PARAMS, SIG_PARAM), values, strict=True)), quote_via=quote)
    return f"{base_url.rstrip('/')}{PATH}?{query}"


def _expiry(value: str) -> int:
    """The expiry as written by `sign_link`: ASCII digits, no sign, no leading zero."""
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_EXPIRY_DIGITS):
        raise LinkRefused("link expiry is not a unix time", reason="malformed")
    number = int(value)
    if str(number) != value:
        raise LinkRefused("link expiry is not in canonical form", reason="malformed")
    return number


def verify_link(
    secret: str | Sequence[str], query_params: Mapping[str, str], now: int
) -> LinkClaims:
    """The claims of a genuine, unexpired link, or LinkRefused.

    `secret` is the current ACTION_SECRET, or a list of it and the previous one during a
    rotation. Unknown query parameters are ignored.
    """
    keys = _secrets(secret)
    missing = [name for name in (*PARAMS, SIG_PARAM) if not query_params.get(name)]
    if missing:
        raise LinkRefused(f"link is missing {', '.join(missing)}", reason="missing")
    draft_id, followup_id, sdr_id = (query_params[name] for name in PARAMS[:3])
    claims = LinkClaims(draft_id, followup_id, sdr_id, _expiry(query_params["e"]))
    try:
        message = _canonical(draft_id, followup_id, sdr_id, claims.expires_at)
        given = query_params[SIG_PARAM].encode()
    except UnicodeEncodeError:
        raise LinkRefused("link holds text that is not UTF-8", reason="malformed") from None
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(_mac(key, message), given)
    if not ok:
        raise LinkRefused("link signature does not match", reason="signature")
    if now >= claims.expires_at:
        raise LinkRefused("link has expired", reason="expired")
    return claims
