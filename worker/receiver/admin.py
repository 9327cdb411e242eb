"""The operators' app: the console at / (worker/console/), /metrics, /readyz and /openapi.json,
served apart from Leadterra's port.

It runs on the admin listener (`ADMIN_HOST:ADMIN_PORT`, loopback by default) of the same `web`
process (worker/receiver/server.py). Without `ADMIN_TOKEN` it is open, and may only bind a
loopback address. With one, every route but /login wants either

* `Authorization: Bearer <ADMIN_TOKEN>` (Prometheus, scripts), compared in constant time; or
* the session cookie that the login form (`GET/POST /login`) sets for browsers: HttpOnly,
  SameSite=Strict, valued `<expiry>.<HMAC-SHA256 of the expiry under a key derived from the
  token>`. It is not the token, it is worthless after its expiry, and changing the token voids it.

A request without either gets 401 (with `WWW-Authenticate: Bearer`), or a redirect to /login
when it comes from a browser. Neither the token nor a cookie reaches a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import parse_qs, quote

import redis
import redis.asyncio as aioredis
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from config.settings import Settings
from worker.console.reader import Reader, console_redis
from worker.console.routes import console_routes
from worker.errors import TooLarge
from worker.health import readiness
from worker.keys import Keys
from worker.metrics import Metrics
from worker.receiver.openapi import OPENAPI
from worker.receiver.web import RequestContext, deadline_of, read_body

log = structlog.get_logger("leadrouter.admin")
COOKIE = "leadrouter_admin"
SESSION_SECONDS = 12 * 3600
LOGIN_BODY_LIMIT = 4096
Handler = Callable[[Request], Awaitable[Response]]


class AdminAuth:
    """The bearer check and the session cookie; `token=None` lets everyone in (loopback only)."""

    def __init__(self, token: str | None) -> None:
        self.token = token.encode() if token else None
        self.key = (
            hmac.new(self.token, b"leadrouter admin session v1", hashlib.sha256).digest()
            if self.token
            else b""
        )

    @property
    def open(self) -> bool:
        return self.token is None

    def bearer_ok(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if self.token is None or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode("latin-1", "replace"), self.token)

    def token_ok(self, value: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            value.encode("utf-8", "replace"), self.token
        )

    def _mac(self, expiry: str) -> str:
        return hmac.new(self.key, expiry.encode(), hashlib.sha256).hexdigest()

    def session(self, now: float) -> str:
        expiry = str(int(now) + SESSION_SECONDS)
        return f"{expiry}.{self._mac(expiry)}"

    def session_ok(self, value: str | None, now: float) -> bool:
        if self.token is None or not value:
            return False
        expiry, _, mac = value.partition(".")
        if not (expiry.isascii() and expiry.isdigit()) or len(expiry) > 12:
            return False
        good = hmac.compare_digest(mac.encode("utf-8", "replace"), self._mac(expiry).encode())
        return good and int(expiry) > now

    def allows(self, request: Request) -> bool:
        return (
            self.open
            or self.bearer_ok(request.headers.get("authorization"))
            or self.session_ok(request.cookies.get(COOKIE), time.time())
        )


def _safe_next(value: str | None) -> str:
    """Only a path on this listener: never `//host` or `http://...` (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _login_page(next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    message = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(
        "<!doctype html><title>leadrouter: sign in</title>"
        "<h1>leadrouter</h1>" + message + '<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
        '<label>Admin token <input type="password" name="token" autocomplete="current-password"'
        " required autofocus></label> <button>Sign in</button></form>",
        status_code=status,
        headers={"cache-control": "no-store"},
    )


def _guard(auth: AdminAuth, handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        if auth.allows(request):
            return await handler(request)
        log.info("admin.unauthorized", path=request.url.path)
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return JSONResponse(
            {"status": "unauthorized", "error": "a bearer token or a session is required"},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="leadrouter admin"'},
        )

    return guarded


def _login_routes(settings: Settings, auth: AdminAuth) -> list[Route]:
    async def login_form(request: Request) -> Response:
        return _login_page(_safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        deadline = deadline_of(request, settings.request_timeout_seconds)
        try:
            raw = await read_body(request, LOGIN_BODY_LIMIT, deadline)
        except (TooLarge, TimeoutError, ClientDisconnect):
            return JSONResponse({"status": "bad_request"}, status_code=400)
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=8)
        next_path = _safe_next(form.get("next", [""])[0])
        if not auth.token_ok(form.get("token", [""])[0]):
            log.warning("admin.login_failed")
            return _login_page(next_path, "That is not the admin token.", 401)
        log.info("admin.login")
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            auth.session(time.time()),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(_: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


async def _no_icon(_: Request) -> Response:
    """No icon, and no 404 in every browser console that opens the page."""
    return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})


def create_admin_app(
    settings: Settings,
    *,
    client: aioredis.Redis,
    metrics: Metrics,
    sync_client: redis.Redis | None = None,
) -> Starlette:
    """The admin app over the public app's Redis client and metrics (the caller closes both).
    The console (worker/console/) reads through `sync_client`, by default a small pool of its
    own on REDIS_URL."""
    token = settings.admin_token.get_secret_value() if settings.admin_token is not None else None
    auth = AdminAuth(token)
    keys = Keys(settings.key_prefix)
    reader = Reader.of(settings, sync_client or console_redis(settings))

    async def readyz(_: Request) -> Response:
        ready, reason = await readiness(client, keys, settings)
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "reason": reason},
            status_code=200 if ready else 503,
        )

    async def metrics_page(_: Request) -> Response:
        text, content_type = await metrics.render(client, keys)
        return Response(text, media_type=content_type)

    async def openapi(_: Request) -> Response:
        return JSONResponse(OPENAPI)

    pages: list[tuple[str, Handler]] = [
        ("/readyz", readyz),
        ("/metrics", metrics_page),
        ("/openapi.json", openapi),
    ]
    routes = [Route(path, _guard(auth, handler), methods=["GET"]) for path, handler in pages]
    routes += console_routes(reader, token, partial(_guard, auth))
    routes.append(Route("/favicon.ico", _no_icon, methods=["GET"]))  # browsers ask, unsigned
    if not auth.open:
        routes += _login_routes(settings, auth)
    return Starlette(routes=routes, middleware=[Middleware(RequestContext)])
