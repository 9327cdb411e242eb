"""Control routes that steer the running sandbox: faults, outages, the clock, settings, and
webhook-sender jobs."""

from __future__ import annotations

from aiohttp import web

from leadterra_sandbox.clock import iso_ms, parse_iso
from leadterra_sandbox.control import body_of, sandbox_of
from leadterra_sandbox.errors import ApiError, invalid
from leadterra_sandbox.faults import FaultRule, Scripted
from leadterra_sandbox.responses import json_response
from leadterra_sandbox.sender import Job
from leadterra_sandbox.sender_spec import SendSpec
from worker.logs import get_logger

log = get_logger(__name__)


def _seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or value < 0:
        raise invalid(f"{name} must be a non-negative number")
    return float(value)


async def get_faults(request: web.Request) -> web.Response:
    world = sandbox_of(request).world
    return json_response({**world.faults.snapshot(), "outage": world.outage.snapshot()})


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


async def script_faults(request: web.Request) -> web.Response:
    faults = sandbox_of(request).world.faults
    scripted = Scripted.from_json(await body_of(request))
    faults.add_scripted(scripted)
    log.info("control.faults_scripted", endpoint=scripted.endpoint, count=scripted.remaining)
    return json_response(faults.snapshot())


async def clear_faults(request: web.Request) -> web.Response:
    faults = sandbox_of(request).world.faults
    faults.clear(request.query.get("endpoint"))
    return json_response(faults.snapshot())


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


async def clear_outage(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    await sandbox.restore()
    return json_response(sandbox.world.outage.snapshot())


def _clock_body(request: web.Request) -> web.Response:
    clock = sandbox_of(request).world.clock
    return json_response({"now": iso_ms(clock.now()), "offsetSeconds": clock.offset})


async def get_clock(request: web.Request) -> web.Response:
    return _clock_body(request)


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


async def send_webhooks(request: web.Request) -> web.Response:
    sender = sandbox_of(request).sender
    job = sender.start(SendSpec.from_json(await body_of(request)))
    return json_response(job.report(detail=False))


def _job(request: web.Request) -> Job:
    job = sandbox_of(request).sender.jobs.get(request.match_info["id"])
    if job is None:
        raise ApiError(404, "job_not_found", "no such webhook job")
    return job


async def get_job(request: web.Request) -> web.Response:
    detail = request.query.get("deliveries", "true").lower() != "false"
    return json_response(_job(request).report(detail=detail))


async def list_jobs(request: web.Request) -> web.Response:
    jobs = sandbox_of(request).sender.jobs.values()
    return json_response({"jobs": [job.report(detail=False) for job in jobs]})


async def cancel_job(request: web.Request) -> web.Response:
    job = _job(request)
    await sandbox_of(request).sender.cancel(job)
    return json_response(job.report(detail=False))


ROUTES = [
    ("GET", "/_control/faults", get_faults),
    ("POST", "/_control/faults", set_faults),
    ("POST", "/_control/faults/next", script_faults),
    ("DELETE", "/_control/faults", clear_faults),
    ("POST", "/_control/outage", set_outage),
    ("DELETE", "/_control/outage", clear_outage),
    ("GET", "/_control/clock", get_clock),
    ("POST", "/_control/clock", set_clock),
    ("POST", "/_control/settings", set_settings),
    ("POST", "/_control/webhooks/send", send_webhooks),
    ("GET", "/_control/webhooks/jobs", list_jobs),
    ("GET", "/_control/webhooks/jobs/{id}", get_job),
    ("DELETE", "/_control/webhooks/jobs/{id}", cancel_job),
]
