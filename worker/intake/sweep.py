"""The reconcile sweep: every RECONCILE_SECONDS, the replies no webhook brought are found.

Single-flight under a Redis lock (any number of beats and workers make one sweep at a time). A
sweep reads `GET /v1/replies` newest first down to the floor, `watermark - overlap`, and
enqueues each positive reply at or above the floor that nobody enqueued before
(worker/intake/found.py: the receiver's own Lua call). The state is two Redis keys
(docs/reconcile.md):

    watermark   the newest `receivedAt` (Leadterra's clock) of the last complete sweep; moved
                only after a sweep that read every page it needed without error. With none yet
                (first install, or the sweep newly on), the floor is now minus the overlap:
                older replies are for `leadrouter backfill`, never assigned by surprise.
    resume      when RECONCILE_MAX_PAGES stopped a sweep before it reached the watermark: the
                page to go on at, that sweep's floor and watermark, and the newest
                `receivedAt` it saw. The next sweeps close that gap first (sharing the same
                page budget), and only then move the watermark to the newest the stopped
                sweep saw; then read the top again. A sweep the budget stops after it passed
                the watermark, inside the overlap, is complete (`reconcile.overlap_cut`).

No floor is ever older than RECONCILE_LOOKBACK_HOURS: past it, `reconcile.lookback_capped`
says to run `leadrouter backfill`. An error anywhere raises, leaving both keys as they were
(replies already enqueued stay enqueued: enqueueing again is a no-op).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import LockError

from worker.intake.found import Tally, enqueue_found
from worker.intake.pages import Walk, walk
from worker.leadterra.models import RepliesPage
from worker.logs import get_logger
from worker.runtime import Runtime

log = get_logger("leadrouter.reconcile")


@dataclass
class Sweep:
    """One sweep's running totals and page budget."""

    rt: Runtime
    now: float
    pages_left: int
    tally: Tally = field(default_factory=Tally)
    pages: int = 0
    undated: int = 0

    def floor(self, base: float) -> datetime:
        """`base` as a floor, never older than the lookback allows (logged when capped)."""
        limit = self.now - self.rt.settings.reconcile_lookback_hours * 3600
        if base < limit:
            log.warning(
                "reconcile.lookback_capped",
                wanted=_iso(base),
                floor=_iso(limit),
                hint="replies older than RECONCILE_LOOKBACK_HOURS are not swept: "
                "run `leadrouter backfill --since` for them",
            )
            base = limit
        return datetime.fromtimestamp(base, UTC)

    def segment(self, start_page: int, floor: datetime, mark: float | None) -> Walk:
        """Read from `start_page` down to `floor`, enqueueing what is new, within the budget.

        A segment the budget cut short after it passed `mark` (the watermark: every reply
        above it was read) counts as complete: only the overlap below the mark went unread,
        and reading it again next time would start over from the top (a burst of more than
        RECONCILE_MAX_PAGES pages inside the overlap would never let a sweep finish)."""

        def on_page(page: RepliesPage) -> None:
            dated = [r for r in page.replies if r.received_at is not None]
            self.undated += len(page.replies) - len(dated)
            inside = [r for r in dated if r.received_at and r.received_at >= floor]
            found = enqueue_found(self.rt, inside, "reconcile")
            found.read = len(page.replies)
            self.tally.add(found)

        client = self.rt.leadterra
        done = walk(client, on_page, floor=floor, start_page=start_page, max_pages=self.pages_left)
        self.pages += done.pages
        self.pages_left -= done.pages
        passed = mark is not None and done.oldest is not None and done.oldest.timestamp() < mark
        if not done.complete and passed:
            log.info(
                "reconcile.overlap_cut",
                reached=done.oldest.isoformat() if done.oldest else None,
                watermark=_iso(mark) if mark is not None else None,
                floor=floor.isoformat(),
                pages=done.pages,
                reason="RECONCILE_MAX_PAGES reached inside the overlap, below the watermark",
            )
            done.complete = True
        return done


@dataclass(frozen=True)
class SweepResult:
    complete: bool = False
    pages: int = 0
    enqueued: int = 0
    skipped_lock: bool = False


def reconcile(rt: Runtime, now: float | None = None) -> SweepResult:
    """One sweep, unless another holds the lock."""
    # a sweep never outlives its task's deadline; a killed worker's lock is gone soon after
    timeout = rt.settings.max_task_seconds + 5
    lock = rt.redis.lock(rt.keys.reconcile_lock, timeout=timeout)
    if not lock.acquire(blocking=False):
        log.info("reconcile.skipped", reason="another sweep holds the lock")
        return SweepResult(skipped_lock=True)
    try:
        return _sweep(rt, time.time() if now is None else now)
    finally:
        with contextlib.suppress(LockError):  # it expired during a very long sweep
            lock.release()


def _sweep(rt: Runtime, now: float) -> SweepResult:
    started = time.perf_counter()
    settings = rt.settings
    watermark, resume = load_state(rt)
    sweep = Sweep(rt, now, settings.reconcile_max_pages)
    if resume is not None:
        mark = resume.get("mark")
        gap = sweep.segment(int(resume["page"]), sweep.floor(float(resume["floor"])), mark)
        if not gap.complete:
            return _truncated(sweep, gap, {**resume, "page": gap.next_page}, started)
        watermark = _newest(watermark, resume.get("newest"))
        rt.redis.delete(rt.keys.reconcile_resume)
        store_watermark(rt, watermark)
        if sweep.pages_left <= 0:  # the gap took the whole budget: the top waits a sweep
            return _complete(sweep, watermark, started)
    base = (watermark if watermark is not None else now) - settings.reconcile_overlap_seconds
    floor = sweep.floor(base)
    top = sweep.segment(1, floor, watermark)
    # the newest reply at or above the floor (below it, a reply is not the sweep's to take)
    seen = top.newest.timestamp() if top.newest and top.newest >= floor else None
    if not top.complete:
        state = {
            "page": top.next_page,
            "floor": floor.timestamp(),
            "mark": watermark,
            "newest": _newest(watermark, seen),
        }
        return _truncated(sweep, top, state, started)
    # Leadterra's clock only: with nothing seen yet, there is still no watermark, and the next
    # sweep starts at now minus the overlap again
    watermark = _newest(watermark, seen)
    store_watermark(rt, watermark)
    return _complete(sweep, watermark, started)


def _newest(*moments: Any) -> float | None:
    known = [float(m) for m in moments if m is not None]
    return max(known) if known else None


def _truncated(sweep: Sweep, done: Walk, state: dict[str, Any], started: float) -> SweepResult:
    """Store where to go on, and say so; the watermark stays where it is."""
    sweep.rt.redis.set(sweep.rt.keys.reconcile_resume, json.dumps(state))
    log.warning(
        "reconcile.truncated",
        pages=sweep.pages,
        max_pages=sweep.rt.settings.reconcile_max_pages,
        reached=done.oldest.isoformat() if done.oldest else None,
        floor=_iso(float(state["floor"])),
        resume_page=state["page"],
        **sweep.tally.as_dict(),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return SweepResult(False, sweep.pages, sweep.tally.enqueued)


def _complete(sweep: Sweep, watermark: float | None, started: float) -> SweepResult:
    sweep.rt.redis.set(sweep.rt.keys.reconcile_last_success, repr(time.time()))
    log.info(
        "reconcile.swept",
        pages=sweep.pages,
        **sweep.tally.as_dict(),
        undated=sweep.undated,
        watermark=_iso(watermark) if watermark is not None else None,
        intake=sweep.rt.settings.intake,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return SweepResult(True, sweep.pages, sweep.tally.enqueued)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def load_state(rt: Runtime) -> tuple[float | None, dict[str, Any] | None]:
    """The watermark (unix time of Leadterra's `receivedAt`) and the resume point, if any."""
    mark, resume = rt.redis.mget([rt.keys.reconcile_watermark, rt.keys.reconcile_resume])
    return (float(mark) if mark else None), (json.loads(resume) if resume else None)


def store_watermark(rt: Runtime, watermark: float | None) -> None:
    if watermark is not None:
        rt.redis.set(rt.keys.reconcile_watermark, repr(watermark))
