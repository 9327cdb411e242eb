"""The control API (/_control/*, no auth) on its own port: seed, inspect, fault, reset, and steer
the running sandbox (outages, the clock, settings, webhook-sender jobs).

Answers are plain JSON objects (no `data` wrapper); errors are `{"error":{"code","message"}}`
with 400, or 404 for an unknown id or route.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from leadterra_sandbox.clock import iso_ms, parse_iso
from leadterra_sandbox.errors import ApiError, invalid
from leadterra_sandbox.faults import FaultRule, Scripted
from leadterra_sandbox.responses import api_error, error, json_response
from leadterra_sandbox.seeding import (
    patch_sdr,
    seed_followups,
    seed_replies,
    seed_sdrs,
    seed_threads,
)
from leadterra_sandbox.sender import Job
from leadterra_sandbox.sender_spec import SendSpec

if TYPE_CHECKING:
    from leadterra_sandbox.server import Sandbox

log = structlog.get_logger(__name__)
SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox")
LIST_CAP = 10_000  # seed answers list the records only up to this many
ROUTES = web.RouteTableDef()


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


@ROUTES.get("/_control/health")
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


@ROUTES.get("/_control/state")
async def state(request: web.Request) -> web.Response:
    return json_response(sandbox_of(request).world.state.dump())


@ROUTES.get("/_control/summary")
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


@ROUTES.post("/_control/reset")
async def reset(request: web.Request) -> web.Response:
    await sandbox_of(request).reset()
    return json_response({"ok": True})


@ROUTES.post("/_control/sdrs")
async def put_sdrs(request: web.Request) -> web.Response:
    world = sandbox_of(request).world
    sdrs = seed_sdrs(world.state, await body_of(request))
    log.info("control.sdrs_seeded", count=len(sdrs))
    return json_response(_listed("sdrs", sdrs))


@ROUTES.patch("/_control/sdrs/{id}")
async def patch_one_sdr(request: web.Request) -> web.Response:
    state = sandbox_of(request).world.state
    sdr = patch_sdr(state, request.match_info["id"], await body_of(request))
    if sdr is None:
        raise ApiError(404, "sdr_not_found", "SDR not found")
    return json_response({"sdr": sdr.state()})


@ROUTES.post("/_control/keys")
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


@ROUTES.post("/_control/replies")
async def put_replies(request: web.Request) -> web.Response:
    replies = seed_replies(sandbox_of(request).world.state, await body_of(request))
    return json_response(_listed("replies", replies))


@ROUTES.post("/_control/campaigns")
async def put_campaigns(request: web.Request) -> web.Response:
    state = sandbox_of(request).world.state
    ids = (await body_of(request)).get("campaignIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise invalid("campaignIds must be a list of strings")
    state.campaigns.update(ids)
    return json_response({"campaigns": sorted(state.campaigns)})


@ROUTES.post("/_control/threads")
async def put_threads(request: web.Request) -> web.Response:
    threads = seed_threads(sandbox_of(request).world.state, await body_of(request))
    return json_response(_listed("threads", threads))


@ROUTES.post("/_control/followups")
async def put_followups(request: web.Request) -> web.Response:
    world = sandbox_of(request).world
    followups = seed_followups(world.state, await body_of(request), world.rng)
    return json_response(_listed("followups", followups))


@ROUTES.get("/_control/calls")
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


def _seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or value < 0:
        raise invalid(f"{name} must be a non-negative number")
    return float(value)


@ROUTES.get("/_control/faults")
async def get_faults(request: web.Request) -> web.Response:
    world = sandbox_of(request).world
    return json_response({**world.faults.snapshot(), "outage": world.outage.snapshot()})


@ROUTES.post("/_control/faults")
async def set_faults(request: web.Request) -> web.Response:
    """One rule `{endpoint, latencyMs, ...}` or `{"rules": [...]}`; each replaces the rule
    already set for its endpoint."""
    faults = sandbox_of(request).world.faults
    body = await body_of(request)
    specs = body.get("rules", [body])
    if not isinstance(specs, list):
        raise invalid("rules must be a list")
    rules = [FaultRule.from_json(spec) for spec in specs]
    for rule in rules:
        faults.set_rule(rule)
    log.info("control.faults_set", endpoints=[r.endpoint for r in rules])
    return json_response(faults.snapshot())


@ROUTES.post("/_control/faults/next")
async def script_faults(request: web.Request) -> web.Response:
    faults = sandbox_of(request).world.faults
    scripted = Scripted.from_json(await body_of(request))
    faults.add_scripted(scripted)
    log.info("control.faults_scripted", endpoint=scripted.endpoint, count=scripted.remaining)
    return json_response(faults.snapshot())


@ROUTES.delete("/_control/faults")
async def clear_faults(request: web.Request) -> web.Response:
    faults = sandbox_of(request).world.faults
    faults.clear(request.query.get("endpoint"))
    return json_response(faults.snapshot())


@ROUTES.post("/_control/outage")
async def set_outage(request: web.Request) -> web.Response:
    """`{"mode": "refuse"|"error"|"none", "seconds"?: N, "status"?: 503}`."""
    sandbox = sandbox_of(request)
    body = await body_of(request)
    mode, status = body.get("mode"), body.get("status", 503)
    seconds = _seconds(body.get("seconds"), "seconds")
    if not isinstance(status, int) or not 500 <= status <= 599:
        raise invalid("status must be a 5xx status")
    if mode == "refuse":
        await sandbox.refuse(seconds)
    elif mode == "error":
        await sandbox.restore()
        sandbox.set_error_outage(seconds, status)
    elif mode in ("none", None):
        await sandbox.restore()
    else:
        raise invalid("mode must be 'refuse', 'error' or 'none'")
    return json_response(sandbox.world.outage.snapshot())


@ROUTES.delete("/_control/outage")
async def clear_outage(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    await sandbox.restore()
    return json_response(sandbox.world.outage.snapshot())


def _clock_body(request: web.Request) -> web.Response:
    clock = sandbox_of(request).world.clock
    return json_response({"now": iso_ms(clock.now()), "offsetSeconds": clock.offset})


@ROUTES.get("/_control/clock")
async def get_clock(request: web.Request) -> web.Response:
    return _clock_body(request)


@ROUTES.post("/_control/clock")
async def set_clock(request: web.Request) -> web.Response:
    """`{"advanceSeconds": S}`, `{"offsetSeconds": S}` or `{"now": ISO}`."""
    clock = sandbox_of(request).world.clock
    body = await body_of(request)
    advance, offset = body.get("advanceSeconds"), body.get("offsetSeconds")
    if isinstance(advance, int | float):
        clock.advance(float(advance))
    elif isinstance(offset, int | float):
        clock.offset = float(offset)
    elif (moment := parse_iso(body.get("now"))) is not None:
        clock.set_now(moment)
    else:
        raise invalid("give advanceSeconds, offsetSeconds (numbers) or now (ISO 8601)")
    log.info("control.clock_set", offset=clock.offset)
    return _clock_body(request)


@ROUTES.post("/_control/settings")
async def set_settings(request: web.Request) -> web.Response:
    """`{"followupDelaySeconds": S, "allowHttpWebhooks": bool}`, either or both."""
    state = sandbox_of(request).world.state
    body = await body_of(request)
    delay = _seconds(body.get("followupDelaySeconds"), "followupDelaySeconds")
    if delay is not None:
        state.followup_delay = delay
    allow = body.get("allowHttpWebhooks")
    if isinstance(allow, bool):
        state.allow_http_webhooks = allow
    return json_response(
        {
            "followupDelaySeconds": state.followup_delay,
            "allowHttpWebhooks": state.allow_http_webhooks,
        }
    )


@ROUTES.post("/_control/webhooks/send")
async def send_webhooks(request: web.Request) -> web.Response:
    sender = sandbox_of(request).sender
    job = sender.start(SendSpec.from_json(await body_of(request)))
    return json_response(job.report(detail=False))


def _job(request: web.Request) -> Job:
    job = sandbox_of(request).sender.jobs.get(request.match_info["id"])
    if job is None:
        raise ApiError(404, "job_not_found", "no such webhook job")
    return job


@ROUTES.get("/_control/webhooks/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    detail = request.query.get("deliveries", "true").lower() != "false"
    return json_response(_job(request).report(detail=detail))


@ROUTES.get("/_control/webhooks/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    jobs = sandbox_of(request).sender.jobs.values()
    return json_response({"jobs": [job.report(detail=False) for job in jobs]})


@ROUTES.delete("/_control/webhooks/jobs/{id}")
async def cancel_job(request: web.Request) -> web.Response:
    job = _job(request)
    await sandbox_of(request).sender.cancel(job)
    return json_response(job.report(detail=False))


def build_control_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(middlewares=[control_errors], client_max_size=64 * 1024 * 1024)
    app[SANDBOX] = sandbox
    app.add_routes(ROUTES)
    return app
