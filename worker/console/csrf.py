"""CSRF tokens for the console's forms: a double-submit cookie bound by an HMAC.

The page sets a random nonce in a cookie (HttpOnly, SameSite=Strict) and puts
`<expiry>.<HMAC-SHA256(key, nonce.expiry)>` in each form. A POST is accepted only with both,
matching, before the expiry. Another site can neither read the cookie nor compute the MAC, and
SameSite=Strict keeps the cookie off its requests anyway. The key is derived from ADMIN_TOKEN
when one is set (so every `web` process accepts every other's forms), else drawn at random per
process (an open listener, loopback only, still needs the token: a page on another site can
post to 127.0.0.1). Neither the key nor a token reaches a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

COOKIE = "leadrouter_csrf"
TOKEN_SECONDS = 12 * 3600
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class Csrf:
    def __init__(self, admin_token: str | None) -> None:
        self._key = (
            hmac.new(admin_token.encode(), b"leadrouter console csrf v1", hashlib.sha256).digest()
            if admin_token
            else secrets.token_bytes(32)
        )

    @staticmethod
    def nonce_of(cookie: str | None) -> str | None:
        """The cookie's nonce when it looks like one of ours."""
        return cookie if cookie and _NONCE.fullmatch(cookie) else None

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def _mac(self, nonce: str, expiry: str) -> str:
        return hmac.new(self._key, f"{nonce}.{expiry}".encode(), hashlib.sha256).hexdigest()

    def token(self, nonce: str, now: float) -> str:
        expiry = str(int(now) + TOKEN_SECONDS)
        return f"{expiry}.{self._mac(nonce, expiry)}"

    def valid(self, cookie: str | None, token: str | None, now: float) -> bool:
        nonce = self.nonce_of(cookie)
        if nonce is None or not token:
            return False
        expiry, _, mac = token.partition(".")
        if not (expiry.isascii() and expiry.isdigit()) or len(expiry) > 12:
            return False
        good = hmac.compare_digest(
            mac.encode("utf-8", "replace"), self._mac(nonce, expiry).encode()
        )
        return good and int(expiry) > now
