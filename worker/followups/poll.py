"""Due follow-ups: poll once per interval (single-flight), claim each once per due time, route.

`poll` runs under a Redis lock with a TTL, so any number of beats and workers make one poll at a
time. Per SDR key it reads the due list (limit up to 200) and claims each follow-up once per
`(id, dueAt)`: a rescheduled follow-up is routed again at its new time, never twice at the same
time. The inbox is read once per poll per SDR, and only when something new was claimed; each
claimed follow-up is fanned out with its thread's details. SDR keys are polled a few at a time,
each thread in a copy of the task's context, so the task's deadline (worker/budget.py) and log
context hold there too.

`route` decides: complete when its draft was already sent in one click (`followup_sent`; never
notified again), skip when the thread is over (meeting booked, won, lost, archived), reschedule
to the SDR's next working slot when it falls outside working hours, otherwise notify, with the
follow-up's draft as `note["draft"]` when FOLLOWUP_DRAFTS is on and one was had
(worker/drafts/generate.py; without one the follow-up is notified all the same).

A claim is never given back once the route task is enqueued: a route or notification that fails
for good is dead-lettered under `followup:{id}:{dueAt}` (or `notification:{dest}:{id}:{dueAt}`)
with its whole note, and `leadrouter dlq replay` runs it again past the claim (`route` does not
look at claims). Giving the claim back instead would route the follow-up again at the next poll
and notify the destinations that had already succeeded a second time.
"""

from __future__ import annotations

import contextlib
import fnmatch
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import LockError

from worker import errors
from worker.console.counters import count_followup
from worker.drafts.generate import draft_for
from worker.leadterra.client import LeadterraClient
from worker.leadterra.models import FollowUp, Thread, iso_ms
from worker.logs import get_logger
from worker.routing.workhours import WorkingHours
from worker.runtime import Runtime

log = get_logger("leadrouter.followups")
CLAIM_TTL_SECONDS = 30 * 24 * 3600
POLL_PARALLEL = 8  # SDR keys polled at once


@dataclass(frozen=True)
class PollResult:
    polled: int
    due: int
    claimed: int
    skipped_lock: bool = False


def sdr_scopes(rt: Runtime) -> list[str | None]:
    """The SDRs to poll, each with its own key; `None` polls with the main key."""
    mapped = sorted(rt.settings.leadterra_sdr_api_keys)
    return list(mapped) if mapped else [None]


def claim(rt: Runtime, due: Iterable[FollowUp]) -> list[FollowUp]:
    """The follow-ups not yet routed at their current due time (claims them atomically)."""
    items = list(due)
    if not items:
        return []
    with rt.redis.pipeline(transaction=False) as pipe:
        for item in items:
            pipe.set(
                rt.keys.followup_claim(item.id, iso_ms(item.due_at)),
                "1",
                nx=True,
                ex=CLAIM_TTL_SECONDS,
            )
        fresh = pipe.execute()
    return [item for item, ok in zip(items, fresh, strict=True) if ok]


def unclaim(rt: Runtime, items: Iterable[FollowUp]) -> None:
    """Give claims back, so a follow-up that was never fanned out is routed next poll."""
    keys = [rt.keys.followup_claim(item.id, iso_ms(item.due_at)) for item in items]
    if keys:
        rt.redis.delete(*keys)


def note_for(item: FollowUp, thread: Thread | None, sdr: str | None) -> dict[str, Any]:
    followup = item.model_dump(by_alias=True, mode="json")
    followup["dueAt"] = iso_ms(item.due_at)
    return {
        "followup": followup,
        "thread": thread.model_dump(by_alias=True, mode="json", exclude_none=True)
        if thread
        else None,
        "sdr": sdr,
    }


def poll_sdr(
    rt: Runtime, sdr: str | None, fan_out: Callable[[dict[str, Any]], None]
) -> tuple[int, int] | None:
    """Poll one SDR key: (due, claimed and fanned out), or None when its due list failed."""
    client = rt.for_sdr(sdr)
    limit = rt.settings.followup_limit
    try:
        due = client.due_followups(limit=limit)
    except errors.ServiceError as exc:
        log.error(
            "followups.poll_failed", sdr_id=sdr, error=str(exc), error_type=type(exc).__name__
        )
        return None
    fresh = claim(rt, due)
    if len(due) >= limit and not fresh:
        log.warning(
            "followups.backlog_saturated",
            sdr_id=sdr,
            due=len(due),
            limit=limit,
            claimed=0,
            hint="a full page of follow-ups already routed and still pending; "
            "nobody completes them, so the next page is out of reach",
        )
    if not fresh:
        return len(due), 0
    sent = 0
    try:
        threads = {t.id: t for t in client.inbox_all()}
        for item in fresh:
            fan_out(note_for(item, threads.get(item.thread_id or ""), sdr))
            sent += 1
    except Exception as exc:
        unclaim(rt, fresh[sent:])  # the next poll claims them again
        log.error(
            "followups.fan_out_failed",
            sdr_id=sdr,
            error=str(exc),
            error_type=type(exc).__name__,
            released=len(fresh) - sent,
        )
        if not isinstance(exc, errors.ServiceError):
            raise
    return len(due), sent


def poll(rt: Runtime, fan_out: Callable[[dict[str, Any]], None]) -> PollResult:
    """One poll of every SDR key, a few at a time (the global rate limit still applies);
    `fan_out` enqueues one route task per claimed follow-up."""
    started = time.perf_counter()
    lock = rt.redis.lock(rt.keys.poll_lock, timeout=max(120.0, rt.settings.followup_poll_seconds))
    if not lock.acquire(blocking=False):
        log.info("followups.poll_skipped", reason="another poll holds the lock")
        return PollResult(0, 0, 0, skipped_lock=True)
    scopes = sdr_scopes(rt)
    try:
        with ThreadPoolExecutor(min(POLL_PARALLEL, len(scopes))) as pool:
            # each in its own copy of this thread's context (copied here, not in the pool's
            # threads): the task's deadline and log context come along
            runs = [(copy_context(), sdr) for sdr in scopes]
            results = list(pool.map(lambda run: run[0].run(poll_sdr, rt, run[1], fan_out), runs))
    finally:
        with contextlib.suppress(LockError):  # it expired during a very long poll
            lock.release()
    done = [r for r in results if r is not None]
    result = PollResult(len(done), sum(d for d, _ in done), sum(c for _, c in done))
    log.info(
        "followups.polled",
        sdrs=result.polled,
        due=result.due,
        claimed=result.claimed,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return result


def terminal_reason(status: str | None, patterns: Iterable[str]) -> str | None:
    if not status:
        return None
    for pattern in patterns:
        if fnmatch.fnmatchcase(status, pattern):
            return f"thread status {status}"
    return None


def route(
    rt: Runtime,
    note: dict[str, Any],
    hours: Callable[[str | None], WorkingHours | None],
    notify: Callable[[str, dict[str, Any]], None],
    destinations: list[str],
) -> str:
    """Skip, reschedule or notify one claimed follow-up; return the decision's name (and count
    it for the console, per SDR and day)."""
    decision = _route(rt, note, hours, notify, destinations)
    followup = note["followup"]
    count_followup(rt.redis, rt.keys, note.get("sdr") or followup.get("sdrId"), decision)
    return decision


def _route(
    rt: Runtime,
    note: dict[str, Any],
    hours: Callable[[str | None], WorkingHours | None],
    notify: Callable[[str, dict[str, Any]], None],
    destinations: list[str],
) -> str:
    followup, thread, sdr = note["followup"], note.get("thread") or {}, note.get("sdr")
    followup_id, sdr_id = followup["id"], sdr or followup.get("sdrId")
    due_at = datetime.fromisoformat(followup["dueAt"].replace("Z", "+00:00"))
    client = rt.for_sdr(sdr)
    ids = {
        "followup_id": followup_id,
        "sdr_id": sdr_id,
        "thread_id": followup.get("threadId"),
        "due_at": followup["dueAt"],
    }
    if rt.redis.exists(rt.keys.followup_sent(followup_id)):
        return _complete_after_send(rt, client, ids)
    reason = terminal_reason(thread.get("status"), rt.settings.followup_terminal_statuses)
    if reason:
        try:
            client.skip_followup(followup_id, reason)
        except errors.Conflict:
            log.info("followup.already_closed", **ids, outcome="not_pending")
            return "already_closed"
        rt.metrics.followups.labels("skipped").inc()
        log.info("followup.skipped", **ids, reason=reason, outcome="skipped")
        return "skipped"
    window = hours(sdr_id)
    moment = max(due_at, datetime.now(UTC))  # a late follow-up is judged by when it runs
    if window is not None and not window.contains(moment):
        return _reschedule(rt, client, ids, window, window.next_start(moment))
    return _notify(rt, note, ids, notify, destinations)


def _complete_after_send(rt: Runtime, client: LeadterraClient, ids: dict[str, Any]) -> str:
    """Its draft was sent in one click: complete the follow-up (again), never notify it."""
    try:
        client.complete_followup(ids["followup_id"])
        outcome = "completed"
    except errors.Conflict:
        outcome = "not_pending"
    rt.metrics.followups.labels("completed").inc()
    reason = "its draft was sent in one click"
    log.info("followup.completed_after_send", **ids, reason=reason, outcome=outcome)
    return "completed"


def _reschedule(
    rt: Runtime,
    client: LeadterraClient,
    ids: dict[str, Any],
    window: WorkingHours,
    slot: datetime,
) -> str:
    try:
        client.reschedule_followup(ids["followup_id"], slot)
    except errors.Conflict:
        log.info("followup.already_closed", **ids, outcome="not_pending")
        return "already_closed"
    rt.metrics.followups.labels("rescheduled").inc()
    log.info(
        "followup.rescheduled",
        **ids,
        reason="outside working hours",
        new_due_at=iso_ms(slot),
        timezone=str(window.timezone),
        outcome="rescheduled",
    )
    return "rescheduled"


def _notify(
    rt: Runtime,
    note: dict[str, Any],
    ids: dict[str, Any],
    notify: Callable[[str, dict[str, Any]], None],
    destinations: list[str],
) -> str:
    """Notify every destination, with the follow-up's draft when drafts are on, someone is told
    (no credits spent for the log alone) and one is had (worker/drafts/generate.py)."""
    started = time.perf_counter()
    record = draft_for(rt, note) if destinations and rt.settings.followup_drafts else None
    if record is not None:
        note = {**note, "draft": record.summary()}
    for destination in destinations:
        notify(destination, note)
    rt.metrics.followups.labels("routed").inc()
    log.info(
        "followup.routed",
        **ids,
        reason="due on a live thread",
        thread_status=(note.get("thread") or {}).get("status"),
        destinations=["log", *destinations],
        draft_id=record.draft_id if record else None,
        outcome="routed",
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return "routed"
