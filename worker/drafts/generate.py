"""A ready draft for a due follow-up, generated once per (follow-up, due time), within a daily cap.

    record = draft_for(rt, note)   # a DraftRecord, or None: the follow-up is notified either way

One draft per pair: a stored record is reused without a call, so a redelivered or retried route
never spends Leadterra's credits twice (a reused draft whose link has expired is signed a fresh
one). The one task that generates holds `draft_generating` (redis-py's lock, lapsing after the
draft timeout plus the rate-limit wait plus a margin); another task that finds it held polls
Redis for the record until the holder lets go, its lock lapses or the task's time budget
(worker/budget.py, less a second to notify) ends, and notifies without a draft when none
appeared.

The daily cap (FOLLOWUP_DRAFTS_DAILY_CAP, per UTC day) is taken with INCR before the call, so
racing tasks never pass it; a slot is given back when taking it went past the cap, or when
Leadterra answered the generate with an error status (nothing was drafted). A timeout, a dropped
connection or anything else keeps its slot: the draft may have been made, and credits spent.

A thread the note shows in any status but `awaiting_reply` or `needs_followup` gets no draft: the
send link would refuse it as stale (worker/drafts/freshness.py), so generating would only spend.

Every failure from the call on (Leadterra's errors, time running out, signing, storing, anything
else) ends in `None`, a `draft.failed` warning (type name and a scrubbed message) and
`drafts{event="failed"}`, not in an exception: a draft is an extra, the notification is the job.
Redis failing before the call (the lookup, the lock, the cap) fails the route, which is retried.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import LockError

from worker import budget, errors
from worker.drafts.freshness import OPEN_STATUSES
from worker.drafts.record import DraftRecord, DraftStore
from worker.leadterra.models import Draft
from worker.logs import get_logger
from worker.oneclick.links import sign_link
from worker.runtime import Runtime

log = get_logger("leadrouter.drafts")
#: beyond the generate's own timeout and the rate-limit wait before it, for the lock's expiry
LOCK_MARGIN_SECONDS = 5.0
#: how often a task that found the lock held looks for the record
WAIT_POLL_SECONDS = 0.1
#: what a waiting task keeps of its time budget to enqueue its notifications after the wait
WAIT_RESERVE_SECONDS = 1.0
#: a day's counter outlives its day, so a late reader still sees it
DAILY_TTL_SECONDS = 2 * 24 * 3600


@dataclass(frozen=True)
class Job:
    """The one follow-up a draft is for, and what names it in every log line."""

    followup_id: str
    due_at: str
    sdr_id: str
    thread_id: str
    base_last_message_at: str | None
    started: float

    def ids(self) -> dict[str, Any]:
        return {
            "followup_id": self.followup_id,
            "sdr_id": self.sdr_id,
            "thread_id": self.thread_id,
            "due_at": self.due_at,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
        }


def draft_for(rt: Runtime, note: dict[str, Any]) -> DraftRecord | None:
    """The draft of the note's follow-up at its due time: reused, waited for or generated; None
    when drafts are off, or none can be had (logged why)."""
    if not rt.settings.followup_drafts:
        return None
    job = _job(note)
    if job is None:
        return None
    store = DraftStore(rt.redis, rt.keys)
    found = store.for_followup(job.followup_id, job.due_at)
    if found is not None:
        return _reuse(rt, store, job, found, "already drafted")
    name = rt.keys.draft_generating(job.followup_id, job.due_at)
    # redis-py's lock: a token of its own, released only while still ours (a lapsed lock may be
    # another task's by then)
    lock = rt.redis.lock(name, timeout=_lock_seconds(rt), blocking=False)
    if not lock.acquire():
        return _wait(rt, store, job, name)
    try:
        return _generate(rt, store, job)
    finally:
        with contextlib.suppress(LockError):
            lock.release()


def _job(note: dict[str, Any]) -> Job | None:
    """What the draft is for, or None (logged) when the note lacks an id the link needs."""
    started = time.perf_counter()
    followup, thread = note.get("followup") or {}, note.get("thread") or {}
    named = {
        "followup id": followup.get("id"),
        "due time": followup.get("dueAt"),
        "SDR": note.get("sdr") or followup.get("sdrId"),
        "thread": followup.get("threadId"),
    }
    missing = [name for name, value in named.items() if not value]
    status = thread.get("status")
    reason = f"the follow-up names no {' and no '.join(missing)}" if missing else None
    if not reason and status is not None and status not in OPEN_STATUSES:
        reason = f"thread status {status}: a draft could not be sent"  # spend no credits
    if reason:
        log.info(
            "draft.skipped",
            followup_id=named["followup id"],
            sdr_id=named["SDR"],
            thread_id=named["thread"],
            reason=reason,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return None
    last = thread.get("lastMessageAt")
    followup_id, due_at, sdr_id, thread_id = (str(value) for value in named.values())
    return Job(followup_id, due_at, sdr_id, thread_id, str(last) if last else None, started)


def _reuse(
    rt: Runtime, store: DraftStore, job: Job, found: DraftRecord, reason: str
) -> DraftRecord:
    """The stored draft, its link signed afresh (no call, no credit) when it has expired: a
    route replayed from the dead letters days later still offers a link that works."""
    refreshed = time.time() >= found.expires_at
    if refreshed:
        expires_at, send_url = _link(rt, found.draft_id, found.followup_id, found.sdr_id)
        found = replace(found, send_url=send_url, expires_at=expires_at)
        store.save(found)
    log.info("draft.reused", **job.ids(), draft_id=found.draft_id, reason=reason,
             link_refreshed=refreshed)  # fmt: skip
    return found


def _lock_seconds(rt: Runtime) -> int:
    """The generating lock's expiry: the longest a holder can spend on the call."""
    settings = rt.settings
    longest = settings.followup_draft_timeout_seconds + settings.rate_block_seconds
    return math.ceil(longest + LOCK_MARGIN_SECONDS)


def _wait(rt: Runtime, store: DraftStore, job: Job, lock: str) -> DraftRecord | None:
    """Another task is generating this draft: its record, or None once it let go without one,
    its lock lapsed or this task's budget ran out."""
    left = budget.remaining()
    limit = float(_lock_seconds(rt))
    if left is not None:  # what the task still needs to notify is kept back
        limit = max(0.0, min(limit, left - WAIT_RESERVE_SECONDS))
    until = time.monotonic() + limit
    while True:
        found = store.for_followup(job.followup_id, job.due_at)
        if found is not None:
            return _reuse(rt, store, job, found, "waited")
        if not rt.redis.exists(lock):
            reason = "another task's generate ended without a draft"
            break
        if time.monotonic() >= until:
            reason = f"another task is still generating it after {limit:.1f} s"
            break
        time.sleep(min(WAIT_POLL_SECONDS, max(0.0, until - time.monotonic())))
    log.info("draft.skipped", **job.ids(), reason=reason)
    return None


def _generate(rt: Runtime, store: DraftStore, job: Job) -> DraftRecord | None:
    """Take a slot of the day's cap, generate with the SDR's key, sign, store; None on a failure
    (logged, counted) or past the cap."""
    found = store.for_followup(job.followup_id, job.due_at)  # saved while we took the lock
    if found is not None:
        return _reuse(rt, store, job, found, "already drafted")
    daily = rt.keys.drafts_daily(datetime.now(UTC).strftime("%Y-%m-%d"))
    if not _take_slot(rt, daily):
        rt.metrics.drafts.labels("capped").inc()
        cap = rt.settings.followup_drafts_daily_cap
        log.info("draft.skipped", **job.ids(), reason="daily cap", daily_cap=cap)
        return None
    settings = rt.settings
    try:
        draft = rt.for_sdr(job.sdr_id).generate_draft(
            job.thread_id,
            instructions=settings.followup_draft_instructions,
            seconds=settings.followup_draft_timeout_seconds,
        )
        record = _record(rt, job, draft)
        store.save(record)
    except Exception as exc:  # a draft is an extra: every failure still notifies
        if isinstance(exc, errors.ServiceError) and exc.status is not None:
            rt.redis.decr(daily)  # Leadterra said no: nothing was drafted
        _failed(rt, job, exc)
        return None
    rt.metrics.drafts.labels("generated").inc()
    log.info("draft.generated", **job.ids(), draft_id=record.draft_id, confidence=record.confidence)
    return record


def _take_slot(rt: Runtime, daily: str) -> bool:
    """One of today's drafts, or False (and the count put back) past the cap."""
    with rt.redis.pipeline(transaction=True) as pipe:
        pipe.incr(daily)
        pipe.expire(daily, DAILY_TTL_SECONDS)
        count, _ = pipe.execute()
    if int(count) > rt.settings.followup_drafts_daily_cap:
        rt.redis.decr(daily)
        return False
    return True


def _link(rt: Runtime, draft_id: str, followup_id: str, sdr_id: str) -> tuple[int, str]:
    """A send link for the draft: its expiry (ACTION_LINK_TTL_HOURS from now) and URL."""
    settings = rt.settings
    if settings.action_secret is None or settings.public_base_url is None:
        raise errors.ConfigError("drafts need ACTION_SECRET and PUBLIC_BASE_URL")
    expires_at = int(time.time() + settings.action_link_ttl_hours * 3600)
    send_url = sign_link(
        settings.action_secret.get_secret_value(),
        draft_id=draft_id,
        followup_id=followup_id,
        sdr_id=sdr_id,
        expires_at=expires_at,
        base_url=settings.public_base_url,
    )
    return expires_at, send_url


def _record(rt: Runtime, job: Job, draft: Draft) -> DraftRecord:
    expires_at, send_url = _link(rt, draft.id, job.followup_id, job.sdr_id)
    return DraftRecord(
        draft_id=draft.id,
        followup_id=job.followup_id,
        due_at=job.due_at,
        sdr_id=job.sdr_id,
        thread_id=job.thread_id,
        subject=draft.subject,
        body_text=draft.body_text,
        body_html=draft.body_html,
        confidence=draft.confidence,
        generated_at=time.time(),
        base_last_message_at=job.base_last_message_at,
        send_url=send_url,
        expires_at=expires_at,
    )


def _failed(rt: Runtime, job: Job, exc: Exception) -> None:
    if isinstance(exc, errors.OutOfTime | errors.TransportFailure):
        reason = "generate timed out or its connection failed"
    elif isinstance(exc, errors.ServiceError):
        reason = "leadterra refused or failed the generate"
    else:
        reason = "unexpected error"
    rt.metrics.drafts.labels("failed").inc()
    log.warning(
        "draft.failed",
        **job.ids(),
        reason=reason,
        error_type=type(exc).__name__,
        error=rt.scrub(str(exc)),
        status=getattr(exc, "status", None),
    )
