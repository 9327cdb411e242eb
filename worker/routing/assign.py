"""Assign one reply: pick an SDR, call Leadterra, record the outcome. No Celery in here.

Outcomes and their log events:

    assigned          2xx                       reply.assigned (with the thread id)
    already_assigned  409                       reply.already_assigned
    icp_rejected      400 with icpFailed        reply.icp_rejected
    held              no eligible SDR           reply.no_eligible_sdr
    duplicate         the reply was done before reply.duplicate

Anything else raises (worker/errors.py) and the task's retry policy takes over. With
REDIS_MIN_REPLICAS_ACK an outcome record too few replicas confirmed in time raises NotReplicated
(retried: the retry meets the record, or after a failover that lost it, Leadterra's 409).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from worker import errors
from worker.console.counters import count_assignment
from worker.jobs.orphans import settle
from worker.jobs.queueing import source_of
from worker.leadterra.models import AssignResult
from worker.logs import get_logger
from worker.redis_conn import REPLICA_ACK_TIMEOUT_MS, confirm_replicated
from worker.routing.rotation import Pick, Policy
from worker.runtime import Runtime

log = get_logger("leadrouter.assign")


def _finish(
    rt: Runtime,
    reply: dict[str, Any],
    outcome: str,
    sdr_id: str | None,
    first: Callable[[Any], None] | None = None,
) -> float | None:
    """Record the outcome (after what `first` queues on the same pipeline, in the same round
    trip); return the milliseconds since the webhook was accepted (or the sweep or backfill
    found the reply), if known."""
    source = source_of(reply)
    now = time.time()
    record = {"outcome": outcome, "sdr": sdr_id, "at": now, "source": source}
    wanted = rt.settings.redis_min_replicas_ack
    with rt.redis.pipeline(transaction=False) as pipe:
        if first is not None:
            first(pipe)
        pipe.set(rt.keys.done(reply["id"]), json.dumps(record), ex=rt.settings.dedupe_ttl_seconds)
        pipe.hdel(rt.keys.held, reply["id"])
        settle(pipe, rt.keys, reply["id"])
        if outcome == "assigned" and sdr_id is not None:  # the console's per-day counts
            count_assignment(pipe, rt.keys, sdr_id, source, now)
        if wanted:  # on the same connection, after the writes: they, and all before, replicated
            pipe.wait(wanted, REPLICA_ACK_TIMEOUT_MS)
        answers = pipe.execute()
    if wanted:  # not confirmed: retried, and the retry finds this done record (or Leadterra's 409)
        confirm_replicated(answers[-1], wanted, "the outcome record")
    rt.metrics.assignments.labels(outcome, source).inc()
    accepted = reply.get("acceptedAt")
    if not isinstance(accepted, int | float):
        return None
    since = max(0.0, time.time() - accepted)
    if outcome in ("assigned", "already_assigned"):
        rt.metrics.assign_latency.observe(since)
    return round(since * 1000, 1)


def _watched(rt: Runtime, sdr_id: str, thread_id: str | None) -> bool:
    """Whether the SLA watch follows this handoff: it is on, and it can read the thread."""
    return rt.settings.sla_minutes > 0 and thread_id is not None and rt.sdr_key(sdr_id) is not None


def _still_eligible(rt: Runtime, sdr_id: str) -> bool:
    """Ask Leadterra again whether the SDR exists and has Gmail connected (and refresh the
    cached roster with the answer, which replaces it whole)."""
    sdrs = rt.leadterra.list_sdrs()
    rt.rotation.store_roster(sdrs)
    return any(s.id == sdr_id and s.gmail_connected for s in sdrs)


def _pick(rt: Runtime, reply: dict[str, Any]) -> tuple[Pick, Policy]:
    policy = rt.policy.policy(datetime.now(UTC), reply.get("email"))
    return rt.rotation.pick(reply["id"], policy, rt.leadterra.list_sdrs), policy


class _Run:
    """One call of `assign`: the reply, a clock, and a log bound to the reply id and attempt.

    One method per outcome records it and logs its event; each returns the outcome's name.
    """

    def __init__(self, rt: Runtime, reply: dict[str, Any], attempt: int) -> None:
        self.rt = rt
        self.reply = reply
        self.started = time.perf_counter()
        self.log = log.bind(reply_id=reply["id"], attempt=attempt, source=source_of(reply))

    def ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)

    def held(self, nobody: errors.NoEligibleSdr, retries: int) -> str:
        self.rt.holds.hold(self.reply, "no_eligible_sdr", retries)
        self.rt.metrics.assignments.labels("held", source_of(self.reply)).inc()
        self.log.warning(
            "reply.no_eligible_sdr",
            sdr_id=None,
            outcome="held",
            excluded=nobody.excluded,
            recheck_seconds=self.rt.settings.hold_recheck_seconds,
            duration_ms=self.ms(),
        )
        return "held"

    def duplicate(self, done: dict[str, Any]) -> str:
        # a twin held it while the first run assigned it: it waits for nothing now
        with self.rt.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self.rt.keys.held, self.reply["id"])
            settle(pipe, self.rt.keys, self.reply["id"])
            pipe.execute()
        self.log.info(
            "reply.duplicate",
            sdr_id=done.get("sdr"),
            outcome="duplicate",
            previous=done.get("outcome"),
            duration_ms=self.ms(),
        )
        return "duplicate"

    def decided(self, pick: Pick, policy: Policy) -> None:
        """The rotation's fresh pick (not a remembered one), with why."""
        log.info(
            "rotation.decided",
            reply_id=self.reply["id"],
            sdr_id=pick.sdr_id,
            rule=pick.rule,
            roster=policy.roster_hash or None,
            candidates=pick.candidates,
            excluded=pick.excluded,
        )

    def icp_rejected(self, sdr_id: str, rejected: errors.IcpRejected) -> str:
        _finish(self.rt, self.reply, "icp_rejected", sdr_id)
        self.log.warning(
            "reply.icp_rejected",
            sdr_id=sdr_id,
            outcome="icp_rejected",
            code=rejected.code,
            duration_ms=self.ms(),
        )
        return "icp_rejected"

    def sdr_unavailable(self, sdr_id: str, refused: errors.ServiceError) -> None:
        """The picked SDR cannot take the reply: forget the pick so the next one differs."""
        self.rt.rotation.forget(self.reply["id"])
        self.log.warning(
            "reply.sdr_unavailable",
            sdr_id=sdr_id,
            outcome="repick",
            status=refused.status,
            code=refused.code,
            duration_ms=self.ms(),
        )

    def already_assigned(self, sdr_id: str) -> str:
        since = _finish(self.rt, self.reply, "already_assigned", sdr_id)
        self.log.info(
            "reply.already_assigned",
            since_webhook_ms=since,
            sdr_id=sdr_id,
            outcome="already_assigned",
            duration_ms=self.ms(),
        )
        return "already_assigned"

    def assigned(self, sdr_id: str, pick: Pick, handoff: AssignResult | None) -> str:
        thread_id = handoff.thread_id if handoff else None
        # the ledger's record first, in the outcome's round trip
        ledger = partial(
            self.rt.ledger.record_in,
            reply_id=self.reply["id"],
            email=self.reply.get("email"),
            sdr_id=sdr_id,
            thread_id=thread_id,
            watch=_watched(self.rt, sdr_id, thread_id),
        )
        since = _finish(self.rt, self.reply, "assigned", sdr_id, first=ledger)
        self.log.info(
            "reply.assigned",
            since_webhook_ms=since,
            sdr_id=sdr_id,
            outcome="assigned",
            rule=pick.rule,
            thread_id=thread_id,
            handoff_id=handoff.handoff_id if handoff else None,
            duration_ms=self.ms(),
        )
        return "assigned"


def assign(rt: Runtime, reply: dict[str, Any], *, attempt: int, retries: int) -> str:
    """Hand `reply` to one SDR, exactly once; return the outcome's name."""
    run = _Run(rt, reply, attempt)
    for _ in range(2):  # a second pass only when the picked SDR turned out unable to take it
        try:
            pick, policy = _pick(rt, reply)
        except errors.NoEligibleSdr as nobody:
            return run.held(nobody, retries)
        if pick.kind == "done":
            return run.duplicate(pick.done or {})
        if pick.kind == "picked":
            run.decided(pick, policy)
        sdr_id = str(pick.sdr_id)
        try:
            result = rt.leadterra.assign_reply(
                reply["id"],
                sdr_id,
                category=rt.settings.assign_category,
                skip_icp_check=rt.settings.assign_skip_icp_check,
            )
        except errors.IcpRejected as rejected:
            return run.icp_rejected(sdr_id, rejected)
        except (errors.NotFound, errors.InvalidRequest) as refused:
            if _still_eligible(rt, sdr_id):
                raise
            run.sdr_unavailable(sdr_id, refused)
            continue
        if result.already_assigned:
            return run.already_assigned(sdr_id)
        return run.assigned(sdr_id, pick, result.result)
    raise errors.ServerError("the SDR picked twice could not take the reply", endpoint="assign")
