"""Assign one reply: pick an SDR, call Leadterra, record the outcome. No Celery in here.

Outcomes and their log events:

    assigned          2xx                       reply.assigned (with the thread id)
    already_assigned  409                       reply.already_assigned
    icp_rejected      400 with icpFailed        reply.icp_rejected
    held              no eligible SDR           reply.no_eligible_sdr
    duplicate         the reply was done before reply.duplicate

Anything else raises (worker/errors.py) and the task's retry policy takes over.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from worker import errors
from worker.logs import get_logger
from worker.routing.rotation import NobodyEligible, Pick, Policy
from worker.runtime import Runtime

log = get_logger("leadrouter.assign")


def _finish(rt: Runtime, reply: dict[str, Any], outcome: str, sdr_id: str | None) -> float | None:
    """Record the outcome; return the milliseconds since the webhook was accepted, if known."""
    record = {"outcome": outcome, "sdr": sdr_id, "at": time.time()}
    with rt.redis.pipeline(transaction=False) as pipe:
        pipe.set(rt.keys.done(reply["id"]), json.dumps(record), ex=rt.settings.dedupe_ttl_seconds)
        pipe.hdel(rt.keys.held, reply["id"])
        pipe.execute()
    rt.metrics.assignments.labels(outcome).inc()
    accepted = reply.get("acceptedAt")
    if not isinstance(accepted, int | float):
        return None
    since = max(0.0, time.time() - accepted)
    if outcome in ("assigned", "already_assigned"):
        rt.metrics.assign_latency.observe(since)
    return round(since * 1000, 1)


def _still_eligible(rt: Runtime, sdr_id: str) -> bool:
    """Ask Leadterra again whether the SDR exists and has Gmail connected (and refresh the
    cached roster with the answer, which replaces it whole)."""
    sdrs = rt.leadterra.list_sdrs()
    rt.rotation.store_roster(sdrs)
    return any(s.id == sdr_id and s.gmail_connected for s in sdrs)


def _pick(rt: Runtime, reply: dict[str, Any]) -> tuple[Pick, Policy]:
    policy = rt.policy.policy(datetime.now(UTC), reply.get("email"))
    return rt.rotation.pick(reply["id"], policy, rt.leadterra.list_sdrs), policy


def assign(rt: Runtime, reply: dict[str, Any], *, attempt: int, retries: int) -> str:
    """Hand `reply` to one SDR, exactly once; return the outcome's name."""
    started = time.perf_counter()
    reply_id = reply["id"]

    def ms() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    for _ in range(2):  # a second pass only when the picked SDR turned out unable to take it
        try:
            pick, policy = _pick(rt, reply)
        except NobodyEligible as nobody:
            rt.holds.hold(reply, "no_eligible_sdr", retries)
            rt.metrics.assignments.labels("held").inc()
            log.warning(
                "reply.no_eligible_sdr",
                reply_id=reply_id,
                sdr_id=None,
                attempt=attempt,
                outcome="held",
                excluded=nobody.excluded,
                recheck_seconds=rt.settings.hold_recheck_seconds,
                duration_ms=ms(),
            )
            return "held"
        if pick.kind == "done":
            previous = (pick.done or {}).get("outcome")
            log.info(
                "reply.duplicate",
                reply_id=reply_id,
                sdr_id=(pick.done or {}).get("sdr"),
                attempt=attempt,
                outcome="duplicate",
                previous=previous,
                duration_ms=ms(),
            )
            return "duplicate"
        if pick.kind == "picked":
            log.info(
                "rotation.decided",
                reply_id=reply_id,
                sdr_id=pick.sdr_id,
                rule=pick.rule,
                roster=policy.roster_hash or None,
                candidates=pick.candidates,
                excluded=pick.excluded,
            )
        sdr_id = str(pick.sdr_id)
        try:
            result = rt.leadterra.assign_reply(
                reply_id,
                sdr_id,
                category=rt.settings.assign_category,
                skip_icp_check=rt.settings.assign_skip_icp_check,
            )
        except errors.IcpRejected as rejected:
            _finish(rt, reply, "icp_rejected", sdr_id)
            log.warning(
                "reply.icp_rejected",
                reply_id=reply_id,
                sdr_id=sdr_id,
                attempt=attempt,
                outcome="icp_rejected",
                code=rejected.code,
                duration_ms=ms(),
            )
            return "icp_rejected"
        except (errors.NotFound, errors.InvalidRequest) as refused:
            if _still_eligible(rt, sdr_id):
                raise
            rt.rotation.forget(reply_id)
            log.warning(
                "reply.sdr_unavailable",
                reply_id=reply_id,
                sdr_id=sdr_id,
                attempt=attempt,
                outcome="repick",
                status=refused.status,
                code=refused.code,
                duration_ms=ms(),
            )
            continue
        if result.already_assigned:
            since = _finish(rt, reply, "already_assigned", sdr_id)
            log.info(
                "reply.already_assigned",
                since_webhook_ms=since,
                reply_id=reply_id,
                sdr_id=sdr_id,
                attempt=attempt,
                outcome="already_assigned",
                duration_ms=ms(),
            )
            return "already_assigned"
        since = _finish(rt, reply, "assigned", sdr_id)
        log.info(
            "reply.assigned",
            since_webhook_ms=since,
            reply_id=reply_id,
            sdr_id=sdr_id,
            attempt=attempt,
            outcome="assigned",
            rule=pick.rule,
            thread_id=result.result.thread_id if result.result else None,
            handoff_id=result.result.handoff_id if result.result else None,
            duration_ms=ms(),
        )
        return "assigned"
    raise errors.ServerError("the SDR picked twice could not take the reply", endpoint="assign")
