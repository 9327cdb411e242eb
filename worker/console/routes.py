"""The console's routes on the admin listener (worker/receiver/admin.py mounts them, guarded).

    GET  /                      the page (worker/console/page.py); `?sdr=` filters Decisions
    GET  /api/<panel>           a panel's JSON: rotation, decisions, stuck, followups, health,
                                sla, intake (`?sdr=`, `?limit=`; worker/console/panels.py)
    GET  /static/console.css, /static/console.js
    POST /dlq/replay, /dlq/drop  worker/console/actions.py

The panels are plain synchronous functions over a sync Redis client (the CLI calls the same
ones), so each request runs them, and the rendering, in Starlette's thread pool: the admin
listener shares its event loop with Leadterra's webhook port, which must never wait on a page.
Redis down is 503, naming only the kind of failure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

import structlog
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from worker.console.actions import Actions
from worker.console.csrf import COOKIE, Csrf
from worker.console.page import SECURITY_HEADERS, console_page, message_page
from worker.console.panels import PANELS, Query, query_of, read_all, read_panel
from worker.console.reader import Reader

log = structlog.get_logger("leadrouter.console")
Handler = Callable[[Request], Awaitable[Response]]
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}


def _assets() -> dict[str, bytes]:
    folder = files("worker.console").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in ASSETS}


def _unavailable(exc: BaseException, *, as_json: bool) -> Response:
    kind = type(exc).__name__
    log.warning("console.redis_unavailable", error_type=kind)
    if as_json:
        return JSONResponse({"status": "unavailable", "error": f"redis: {kind}"}, status_code=503)
    page = message_page("Redis unreachable", f"The console could not read Redis ({kind}).")
    return HTMLResponse(page, status_code=503, headers=SECURITY_HEADERS)


class Console:
    def __init__(self, reader: Reader, csrf: Csrf, *, signed_in: bool) -> None:
        self.reader = reader
        self.csrf = csrf
        self.signed_in = signed_in
        self.assets = _assets()

    def _render(self, query: Query, token: str, notice: str | None) -> str:
        data = read_all(self.reader, query)
        return console_page(
            data, csrf=token, now=time.time(), notice=notice, signed_in=self.signed_in
        )

    async def page(self, request: Request) -> Response:
        query = query_of(request.query_params)
        nonce = Csrf.nonce_of(request.cookies.get(COOKIE))
        fresh = nonce is None
        nonce = nonce or Csrf.new_nonce()
        token = self.csrf.token(nonce, time.time())
        notice = request.query_params.get("notice")
        try:
            text = await run_in_threadpool(self._render, query, token, notice)
        except (RedisError, OSError) as exc:
            return _unavailable(exc, as_json=False)
        response = HTMLResponse(text, headers=SECURITY_HEADERS)
        if fresh:
            response.set_cookie(
                COOKIE,
                nonce,
                path="/",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    def _json(self, name: str, query: Query) -> bytes:
        body: dict[str, Any] = read_panel(self.reader, name, query)
        return json.dumps(body, separators=(",", ":"), default=str).encode()

    async def api(self, request: Request) -> Response:
        name = request.path_params["panel"]
        if name not in PANELS:
            return JSONResponse({"status": "not_found", "panels": sorted(PANELS)}, status_code=404)
        try:
            body = await run_in_threadpool(self._json, name, query_of(request.query_params))
        except (RedisError, OSError) as exc:
            return _unavailable(exc, as_json=True)
        return Response(body, media_type="application/json", headers={"cache-control": "no-store"})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.assets:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
        return Response(self.assets[name], media_type=ASSETS[name], headers=headers)


def console_routes(
    reader: Reader, admin_token: str | None, guard: Callable[[Handler], Handler]
) -> list[Route]:
    """The console's routes, each behind `guard` (the admin listener's auth)."""
    console = Console(reader, Csrf(admin_token), signed_in=admin_token is not None)
    actions = Actions(reader, console.csrf)

    async def act(request: Request, handler: Handler) -> Response:
        try:
            return await handler(request)
        except (RedisError, OSError) as exc:
            return _unavailable(exc, as_json=False)

    async def replay(request: Request) -> Response:
        return await act(request, actions.replay)

    async def drop(request: Request) -> Response:
        return await act(request, actions.drop)

    return [
        Route("/", guard(console.page), methods=["GET"]),
        Route("/api/{panel}", guard(console.api), methods=["GET"]),
        Route("/static/{name}", guard(console.asset), methods=["GET"]),
        Route("/dlq/replay", guard(replay), methods=["POST"]),
        Route("/dlq/drop", guard(drop), methods=["POST"]),
    ]
