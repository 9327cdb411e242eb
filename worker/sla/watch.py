"""The SLA watch: every SLA_CHECK_SECONDS, is each handoff acted on, due a reminder, breached?

Single-flight under a Redis lock, so any number of beats and workers make one check at a time.
A check reads each watched SDR's inbox once (`status=new`, paged, with the SDR's own key), not
once per handoff, and then, for each handoff it watches (worker/sla/ledger.py):

    listed as new   still waiting: the clock (worker/sla/clock.py) says how long, counting only
                    the SDR's working hours when SLA_WORKING_HOURS_ONLY and hours are set;
                    at SLA_REMIND_AT of the SLA a reminder, once; at the SLA `sla.breached`,
                    once; then with SLA_ACTION=reroute a re-route (worker/sla/reroute.py), or
                    after SLA_MAX_REROUTES (or with nobody else eligible) `sla.escalated`, once
    not listed      missed once: nothing is decided; missed by two complete reads in a row:
                    acted on (the first miss is its time to action), and no longer watched
    read failed     nothing is decided for that SDR's handoffs this time

Notifications are enqueued before the record that says they were sent is saved, so a check cut
short sends them again at the next (at least once), with the same `id` for receivers to drop.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import LockError

from worker import errors
from worker.logs import get_logger
from worker.runtime import Runtime
from worker.sla import reroute as rr
from worker.sla.clock import elapsed
from worker.sla.ledger import ACTED, ESCALATED, Attempt, Handoff
from worker.sla.notes import audience, sla_note

log = get_logger("leadrouter.sla")
#: (destination, note): enqueue one notification's delivery
Notify = Callable[[str, dict[str, Any]], None]


def _ids(handoff: Handoff, attempt: Attempt) -> dict[str, Any]:
    """The ids every step's log event carries."""
    return {
        "reply_id": handoff.reply_id,
        "sdr_id": attempt.sdr_id,
        "thread_id": attempt.thread_id,
        "attempt": attempt.attempt,
    }


@dataclass
class WatchResult:
    watched: int = 0
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unread_sdrs: list[str] = field(default_factory=list)
    skipped_lock: bool = False


def watch(rt: Runtime, notify: Notify, now: float | None = None) -> WatchResult:
    """One check, unless another holds the lock."""
    lock = rt.redis.lock(rt.keys.sla_lock, timeout=rt.settings.max_task_seconds + 5)
    if not lock.acquire(blocking=False):
        log.info("sla.skipped", reason="another check holds the lock")
        return WatchResult(skipped_lock=True)
    try:
        return _Check(rt, notify, time.time() if now is None else now).run()
    finally:
        with contextlib.suppress(LockError):
            lock.release()


class _Check:
    def __init__(self, rt: Runtime, notify: Notify, now: float) -> None:
        self.rt, self.notify, self.now = rt, notify, now
        self.settings = rt.settings
        self.result = WatchResult()

    def run(self) -> WatchResult:
        started = time.perf_counter()
        by_sdr: dict[str, list[Handoff]] = defaultdict(list)
        for handoff in self.rt.ledger.watched():
            by_sdr[handoff.current.sdr_id].append(handoff)
        for sdr_id, handoffs in sorted(by_sdr.items()):
            new = self.inbox_new(sdr_id)
            if new is None:
                self.result.unread_sdrs.append(sdr_id)
                continue
            for handoff in handoffs:
                self.check(handoff, new)
                self.result.watched += 1
        log.info(
            "sla.checked",
            watched=self.result.watched,
            sdrs=len(by_sdr),
            unread_sdrs=self.result.unread_sdrs,
            **dict(self.result.counts),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return self.result

    def inbox_new(self, sdr_id: str) -> set[str] | None:
        """The ids of the SDR's threads listed as `new`, or None when the read failed."""
        if self.rt.sdr_key(sdr_id) is None:
            return None
        try:
            threads = self.rt.for_sdr(sdr_id).inbox_all(status=["new"])
        except errors.ServiceError as failed:
            log.warning(
                "sla.inbox_unread",
                sdr_id=sdr_id,
                error=self.rt.scrub(str(failed)),
                error_type=type(failed).__name__,
            )
            return None
        return {t.id for t in threads}

    def minutes(self, attempt: Attempt) -> float:
        hours = self.rt.working_hours(attempt.sdr_id)
        if not self.settings.sla_working_hours_only:
            hours = None
        start, now = (datetime.fromtimestamp(t, UTC) for t in (attempt.at, self.now))
        return elapsed(start, now, hours).total_seconds() / 60

    def check(self, handoff: Handoff, new: set[str]) -> None:
        current = handoff.current
        if current.thread_id in new:
            current.misses, current.missing_since = 0, None
        else:
            current.misses += 1
            current.missing_since = current.missing_since or self.now
            if current.misses >= 2:
                self.acted(handoff)
            self.rt.ledger.save(handoff)
            return
        minutes, sla = self.minutes(current), self.settings.sla_minutes
        remind_at = self.settings.sla_remind_at * sla
        fresh = current.reminded_at is None and current.breached_at is None
        # a check that finds the SLA already run out sends the breach, not a late reminder
        if self.settings.sla_remind_at > 0 and fresh and remind_at <= minutes < sla:
            self.send("sla.reminder", handoff, minutes)
            current.reminded_at = self.now
            log.info(
                "sla.reminded",
                **_ids(handoff, current),
                minutes=round(minutes, 2),
            )
            self.count("reminded")
        if current.breached_at is None and minutes >= sla:
            self.breach(handoff, minutes)
        if current.breached_at is not None and self.settings.sla_action == "reroute":
            self.reroute_or_escalate(handoff, minutes)
        self.rt.ledger.save(handoff)

    def count(self, what: str) -> None:
        self.result.counts[what] += 1

    def acted(self, handoff: Handoff) -> None:
        current = handoff.current
        current.acted_at = current.missing_since
        handoff.state = ACTED
        took = max(0.0, (current.acted_at or self.now) - current.at)
        self.rt.metrics.time_to_action.observe(took)
        handoff.note("acted", current.acted_at or self.now, sdr_id=current.sdr_id)
        log.info(
            "sla.acted",
            **_ids(handoff, current),
            time_to_action_s=round(took, 1),
            breached=current.breached_at is not None,
        )
        self.count("acted")

    def breach(self, handoff: Handoff, minutes: float) -> None:
        current = handoff.current
        self.send("sla.breached", handoff, minutes)
        current.breached_at = self.now
        handoff.note("breached", self.now, sdr_id=current.sdr_id, minutes=round(minutes, 2))
        self.rt.metrics.sla_breaches.labels(self.settings.sla_action).inc()
        log.warning(
            "sla.breached",
            **_ids(handoff, current),
            minutes=round(minutes, 2),
            sla_minutes=self.settings.sla_minutes,
            action=self.settings.sla_action,
        )
        self.count("breached")

    def reroute_or_escalate(self, handoff: Handoff, minutes: float) -> None:
        if len(handoff.attempts) - 1 >= self.settings.sla_max_reroutes:
            return self.escalate(handoff, minutes, "max_reroutes")
        current = handoff.current

        def still_new() -> bool | None:
            new = self.inbox_new(current.sdr_id)
            return None if new is None else current.thread_id in new

        done = rr.reroute(self.rt, handoff, still_new)
        if done.outcome == rr.ACTED:
            current.misses, current.missing_since = 1, self.now
            return None
        if done.outcome == rr.UNREAD:
            return None
        self.rt.metrics.reroutes.labels(done.outcome).inc()
        if done.attempt is None:
            return self.escalate(handoff, minutes, done.outcome, done.error)
        return self.rerouted(handoff, done.attempt, minutes)

    def rerouted(self, handoff: Handoff, attempt: Attempt, minutes: float) -> None:
        before = handoff.current
        handoff.attempts.append(attempt)
        handoff.note("rerouted", attempt.at, sdr_id=attempt.sdr_id, thread_id=attempt.thread_id)
        self.rt.ledger.save(handoff)  # at once: the claim alone must not outlive the outcome
        log.warning(
            "sla.rerouted",
            reply_id=handoff.reply_id,
            sdr_id=attempt.sdr_id,
            previous_sdr_id=before.sdr_id,
            thread_id=attempt.thread_id,
            attempt=attempt.attempt,
        )
        self.send("sla.rerouted", handoff, minutes, previous=before)
        self.count("rerouted")

    def escalate(
        self, handoff: Handoff, minutes: float, reason: str, error: str | None = None
    ) -> None:
        if handoff.state == ESCALATED:
            return
        handoff.note("escalated", self.now, reason=reason, **({"error": error} if error else {}))
        self.send("sla.escalated", handoff, minutes)
        handoff.state, handoff.escalated_at, handoff.reason = ESCALATED, self.now, reason
        log.error(
            "sla.escalated",
            reply_id=handoff.reply_id,
            sdr_id=handoff.current.sdr_id,
            attempt=handoff.current.attempt,
            reason=reason,
            error=error,
            sdrs=[a.sdr_id for a in handoff.attempts],
        )
        self.count("escalated")

    def send(
        self, kind: str, handoff: Handoff, minutes: float, previous: Attempt | None = None
    ) -> None:
        """Enqueue `kind` to every destination of its audience (none configured: the log line
        of the step is the whole notification)."""
        current = previous or handoff.current
        note = sla_note(
            kind,
            **_ids(handoff, current),
            minutes_elapsed=round(minutes, 2),
            sla_minutes=self.settings.sla_minutes,
            slack_user_id=self.rt.slack_user_id(handoff.current.sdr_id),
            history=handoff.history if kind == "sla.escalated" else None,
            contact=handoff.email,
            new_sdr_id=handoff.current.sdr_id if previous is not None else None,
        )
        for destination in self.rt.notifier.destinations(audience(kind)):
            self.notify(destination, note)
