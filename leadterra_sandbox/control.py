"""The control API (/_control/*, no auth) on its own port: seed, inspect, fault, reset.

Answers are plain JSON objects (no `data` wrapper); errors are `{"error":{"code","message"}}`
with 400, or 404 for an unknown id. Routes for faults, the clock and webhook jobs live in
`control_ops`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from leadterra_sandbox.errors import ApiError, invalid
from leadterra_sandbox.responses import api_error, error, json_response
from leadterra_sandbox.seeding import patch_sdr, seed_replies, seed_sdrs
from leadterra_sandbox.seeding_inbox import seed_followups, seed_threads
from worker.logs import get_logger

if TYPE_CHECKING:
    from leadterra_sandbox.server import Sandbox

log = get_logger(__name__)
SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox")
LIST_CAP = 10_000  # seed answers list the records only up to this many


def sandbox_of(request: web.Request) -> Sandbox:
    return request.app[SANDBOX]


async def body_of(request: web.Request) -> dict[str, Any]:
    """The JSON object sent (`{}` for an empty body); 400 for anything else."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return api_error(exc)
    except web.HTTPException as exc:
        return error(exc.status, None, f"{request.method} {request.path}: {exc.reason}")


def _listed(name: str, items: list[Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"count": len(items)}
    if len(items) <= LIST_CAP:
        body[name] = [item.state() for item in items]
    return body


async def health(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    return json_response(
        {
            "ok": True,
            "apiUrl": sandbox.api_url,
            "controlUrl": sandbox.control_url,
            "outage": sandbox.world.outage.snapshot(),
        }
    )


async def state(request: web.Request) -> web.Response:
    return json_response(sandbox_of(request).world.state.dump())


async def summary(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    world = sandbox.world
    return json_response(
        {
            "calls": world.calls.summary(),
            "faultsInjected": dict(world.faults.injected),
            "outage": world.outage.snapshot(),
            "state": world.state.counts(),
            "webhookJobs": {job.id: job.status for job in sandbox.sender.jobs.values()},
        }
    )


async def reset(request: web.Request) -> web.Response:
    await sandbox_of(request).reset()
    return json_response({"ok": True})


async def put_sdrs(request: web.Request) -> web.Response:
    world = sandbox_of(request).world
    sdrs = seed_sdrs(world.state, await body_of(request))
    log.info("control.sdrs_seeded", count=len(sdrs))
    return json_response(_listed("sdrs", sdrs))


async def patch_one_sdr(request: web.Request) -> web.Response:
    state = sandbox_of(request).world.state
    sdr = patch_sdr(state, request.match_info["id"], await body_of(request))
    if sdr is None:
        raise ApiError(404, "sdr_not_found", "SDR not found")
    return json_response({"sdr": sdr.state()})


async def put_key(request: web.Request) -> web.Response:
    """`{"key": "...", "sdrId": "sdr_1" | null}` adds a key; `{"key": ..., "revoke": true}`
    revokes one. Keys are never echoed back."""
    state = sandbox_of(request).world.state
    body = await body_of(request)
    key, sdr_id = body.get("key"), body.get("sdrId")
    if not isinstance(key, str) or not key:
        raise invalid("key must be a non-empty string")
    if body.get("revoke") is True:
        return json_response({"revoked": state.revoke_key(key)})
    if sdr_id is not None and sdr_id not in state.sdrs:
        raise invalid("sdrId must name a seeded SDR or be null for a workspace key")
    state.add_key(key, sdr_id)
    return json_response({"added": True, "label": sdr_id or "workspace"})


async def put_replies(request: web.Request) -> web.Response:
    replies = seed_replies(sandbox_of(request).world.state, await body_of(request))
    return json_response(_listed("replies", replies))


async def put_campaigns(request: web.Request) -> web.Response:
    state = sandbox_of(request).world.state
    ids = (await body_of(request)).get("campaignIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise invalid("campaignIds must be a list of strings")
    state.campaigns.update(ids)
    return json_response({"campaigns": sorted(state.campaigns)})


async def put_threads(request: web.Request) -> web.Response:
    threads = seed_threads(sandbox_of(request).world.state, await body_of(request))
    return json_response(_listed("threads", threads))


async def put_followups(request: web.Request) -> web.Response:
    world = sandbox_of(request).world
    followups = seed_followups(world.state, await body_of(request), world.rng)
    return json_response(_listed("followups", followups))


async def get_calls(request: web.Request) -> web.Response:
    calls = sandbox_of(request).world.calls
    query = request.query
    try:
        since = int(query.get("since", "0"))
        limit = int(query.get("limit", "0"))
    except ValueError:
        raise invalid("since and limit must be integers") from None
    found = []
    for call in calls.since(since, query.get("endpoint")):
        found.append(call.as_json())
        if limit and len(found) >= limit:
            break
    last = found[-1]["seq"] if found else max(since, 0)
    return json_response({"calls": found, "lastSeq": last, "totalSeq": calls.seq})


def build_control_app(sandbox: Sandbox) -> web.Application:
    from leadterra_sandbox.control_ops import ROUTES as OPS

    app = web.Application(middlewares=[control_errors], client_max_size=64 * 1024 * 1024)
    app[SANDBOX] = sandbox
    routes = [
        ("GET", "/_control/health", health),
        ("GET", "/_control/state", state),
        ("GET", "/_control/summary", summary),
        ("POST", "/_control/reset", reset),
        ("POST", "/_control/sdrs", put_sdrs),
        ("PATCH", "/_control/sdrs/{id}", patch_one_sdr),
        ("POST", "/_control/keys", put_key),
        ("POST", "/_control/replies", put_replies),
        ("POST", "/_control/campaigns", put_campaigns),
        ("POST", "/_control/threads", put_threads),
        ("POST", "/_control/followups", put_followups),
        ("GET", "/_control/calls", get_calls),
        *OPS,
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app
