"""The /v1 API app. Each route's handler is a plain function of a `Ctx`, wrapped once at
start-up with everything around it: the outage switch, faults, auth, the body, the call record.

Route templates read like the client's endpoint names (`POST /v1/replies/{id}/assign`); they key
the fault rules and the call log.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from leadterra_sandbox import garble
from leadterra_sandbox.errors import ApiError
from leadterra_sandbox.faults import Decision
from leadterra_sandbox.responses import api_error, error, ok
from leadterra_sandbox.routes import ROUTES, Ctx, Endpoint
from leadterra_sandbox.state import WORKSPACE
from leadterra_sandbox.world import World

UNMATCHED = "unmatched"
INVALID_KEY = "invalid"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip()


async def _faulted(
    decision: Decision, request: web.Request, answered: web.StreamResponse | None = None
) -> web.StreamResponse:
    """The answer a fault makes of the call; `answered` is the handler's own (phase after)."""
    if decision.kind == "garble" and decision.garble:
        body = answered.body if isinstance(answered, web.Response) else None
        real = body if isinstance(body, bytes) and body else garble.STAND_IN
        return await garble.answer(decision.garble, request, real, decision.drip_ms / 1000.0)
    return _fault_response(decision, request)


def _fault_response(decision: Decision, request: web.Request) -> web.Response:
    if decision.kind == "drop":
        request.protocol.force_close()  # the client sees the connection close, no answer
        return web.Response(status=499)
    response = error(decision.status, message="injected fault")
    if decision.retry_after:
        response.headers["Retry-After"] = decision.retry_after
    return response


async def _read_body(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", "the body is not valid JSON") from None


def _authorize(label: str | None, sdr_only: bool) -> None:
    if label is None or label == INVALID_KEY:
        raise ApiError(401, "authentication_failed", "missing, invalid or revoked API key")
    if sdr_only and label == WORKSPACE:
        raise ApiError(403, "sdr_key_required", "this endpoint needs an SDR-linked API key")


def wrap(world: World, method: str, path: str, fn: Endpoint) -> Handler:
    """The aiohttp handler for `fn` at `method path`."""
    template = f"{method} {path}"
    sdr_only = path.startswith("/v1/sdr/")
    faults, outage, state, calls = world.faults, world.outage, world.state, world.calls

    async def handle(request: web.Request) -> web.StreamResponse:
        at = time.time()
        key = _bearer(request)
        label = None if key is None else state.key_owner(key) or INVALID_KEY
        body: Any = None
        fault: str | None = None
        response: web.StreamResponse
        if outage.erroring():
            response, fault = error(outage.status, message="sandbox outage"), "outage"
        else:
            decision = faults.decide(template)
            if decision is not None and decision.delay_before:
                await asyncio.sleep(decision.delay_before)
            if decision is not None and decision.kind and decision.phase == "before":
                response, fault = await _faulted(decision, request), decision.kind
            else:
                try:
                    _authorize(label, sdr_only)
                    body = await _read_body(request)
                    response = ok(fn(Ctx(state, request, body, label or "")))
                except ApiError as exc:
                    response = api_error(exc)
                if decision is not None and decision.delay_after:
                    await asyncio.sleep(decision.delay_after)
                if decision is not None and decision.kind:
                    response, fault = await _faulted(decision, request, response), decision.kind
        status = 0 if fault == "drop" else response.status
        calls.record(
            at, method, request.path, request.query_string, template, label, status, fault, body
        )
        return response

    return handle


def not_found_handler(world: World) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        key = _bearer(request)
        label = None if key is None else world.state.key_owner(key) or INVALID_KEY
        world.calls.record(
            time.time(),
            request.method,
            request.path,
            request.query_string,
            UNMATCHED,
            label,
            404,
            None,
            None,
        )
        return error(404, "not_found", f"no route {request.method} {request.path}")

    return handle


def build_api_app(world: World) -> web.Application:
    """The /v1 app over `world`; unknown routes (and methods) answer 404 JSON."""
    app = web.Application(client_max_size=1024 * 1024)
    for method, path, fn in ROUTES:
        app.router.add_route(method, path, wrap(world, method, path, fn))
    app.router.add_route("*", "/{tail:.*}", not_found_handler(world))
    return app
