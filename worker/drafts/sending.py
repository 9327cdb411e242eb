"""Sending a due follow-up's draft in one click, exactly once across processes.

`send_draft(rt, claims, actor=...)` (sync: web runs it in a thread) goes:

1. the record named by the link, which must match the link's follow-up and SDR ("unknown draft");
2. a state already recorded for this draft answers at once and sends nothing
   (worker/oneclick/send_state.py: sent, a send in progress, or an outcome unknown for good);
3. Leadterra is asked again (the SDR's inbox and due follow-ups, with the SDR's key) and the
   stale rules decide (worker/drafts/freshness.py);
4. the claim (one Lua call): only its winner calls `POST /v1/sdr/drafts/{id}/send`;
5. the answer decides, and is logged once (`draft.sent`, `draft.blocked`, `draft.send_failed`,
   `draft.unknown_outcome`; before it `draft.unknown_draft`, `draft.duplicate`, `draft.stale`,
   `draft.check_failed`), each counted in `leadrouter_drafts{event}` under the same name:

    2xx, or 409 already_sent   sent: state, `followup_sent` and the completion task, one step
    422 guardrails              blocked: claim given back, the follow-up stays pending
    429 or our rate limit       not sent (busy): claim given back, nothing reached Leadterra
    other 4xx (Gmail not        not sent: claim given back, with our words for why
      connected, 404, 401/403)
    timeout, 5xx, transport,    unknown: kept for good and never sent again; the page offers
      out of time, garbled 2xx,   the check (worker/oneclick/preview.py `check_thread`), which
      anything unexpected         only reads the thread

The completion task (`leadrouter.complete_followup`, run by `complete_sent_followup`) is retried
by the task policy until Leadterra completes the follow-up; a 409 means it was done already.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from worker import budget, errors
from worker.drafts.freshness import find_thread, stale_reason
from worker.drafts.record import DraftRecord, DraftStore
from worker.leadterra.models import Thread
from worker.logs import get_logger
from worker.oneclick.links import LinkClaims
from worker.oneclick.send_state import CLAIMED, SENT, SendState, SendStates
from worker.runtime import Runtime

log = get_logger("leadrouter.drafts")
#: the reads before a send (inbox pages, due follow-ups) end by this, with nothing claimed
CHECK_SECONDS = 30.0
#: a claim older than the send's deadline plus this is a send that never finished: unknown
CLAIM_GRACE_SECONDS = 60.0
#: what a click did (`SendOutcome.status`)
SENT_OUTCOME = "sent"
ALREADY_SENT = "already_sent"
IN_PROGRESS = "in_progress"
UNKNOWN_OUTCOME = "unknown"
STALE = "stale"
BLOCKED = "blocked"
NOT_SENT = "not_sent"
BUSY = "busy"
UNKNOWN_DRAFT = "unknown_draft"
#: our words for Leadterra's refusals of a send (`code` first, then the error class)
REFUSALS = {
    "gmail_not_connected": "the SDR's Gmail is not connected in Leadterra",
    "NotFound": "Leadterra does not know this draft",
    "AuthError": "Leadterra refused the SDR's API key",
    "RateLimited": "Leadterra is busy right now; try again in a minute",
}


@dataclass(frozen=True)
class SendOutcome:
    """What a click did. `reason` is ours, though it may quote Leadterra's statuses, and
    `issues` are Leadterra's words: escape both wherever shown."""

    status: str
    claims: LinkClaims
    record: DraftRecord | None = None
    reason: str | None = None
    message_id: str | None = None
    issues: tuple[str, ...] = ()
    state: SendState | None = None
    #: the thread as read before the send (who the draft went to), when it was read
    thread: Thread | None = None


def load_record(rt: Runtime, claims: LinkClaims) -> DraftRecord | None:
    """The draft the link names, only if it is for the link's follow-up and SDR."""
    record = DraftStore(rt.redis, rt.keys).by_id(claims.draft_id)
    if record is None or (record.followup_id, record.sdr_id) != (claims.followup_id, claims.sdr_id):
        return None
    return record


def held_status(rt: Runtime, held: SendState, now: float) -> str:
    """What a state someone already holds means for a click now."""
    if held.state == SENT:
        return ALREADY_SENT
    if held.state == CLAIMED and now - held.at < rt.settings.max_call_seconds + CLAIM_GRACE_SECONDS:
        return IN_PROGRESS
    return UNKNOWN_OUTCOME  # unknown for good, or a claim whose holder never finished


def current_reason(
    rt: Runtime, record: DraftRecord, states: SendStates, seconds: float = CHECK_SECONDS
) -> tuple[Thread | None, str | None]:
    """The thread now and the stale rules' verdict over what Leadterra says now (reads only,
    with the SDR's key, within `seconds`); ServiceError when Leadterra cannot be read."""
    client = rt.for_sdr(record.sdr_id)
    with budget.deadline_in(seconds):
        thread = find_thread(client.inbox_all(), record.thread_id)
        due = client.due_followups(limit=200, include_upcoming=True)
    sent = states.followup_sent(record.followup_id)
    return thread, stale_reason(record, thread=thread, due=due, followup_sent=sent)


@dataclass
class _Click:
    """One click being decided: who, on what, since when; logs and counts its one decision."""

    rt: Runtime
    claims: LinkClaims
    actor: str
    started: float
    record: DraftRecord | None = None
    thread: Thread | None = None

    def decide(self, status: str, event: str, level: str = "info", **fields: Any) -> SendOutcome:
        keep = {name: fields.pop(name) for name in OUTCOME_FIELDS if name in fields}
        outcome = SendOutcome(status, self.claims, self.record, thread=self.thread, **keep)
        self.rt.metrics.drafts.labels(event.removeprefix("draft.")).inc()
        getattr(log, level)(
            event,
            draft_id=self.claims.draft_id,
            followup_id=self.claims.followup_id,
            sdr_id=self.claims.sdr_id,
            actor=self.actor,
            outcome=status,
            duration_ms=round((time.perf_counter() - self.started) * 1000, 1),
            **fields,
            **{name: keep[name] for name in LOGGED_FIELDS if name in keep},
        )
        return outcome


#: how long a click that meets a send in progress waits for its outcome, and how often it looks
SETTLE_SECONDS, SETTLE_POLL_SECONDS = 10.0, 0.1
#: `_Click.decide` keywords that go into the outcome; the first two are logged too
OUTCOME_FIELDS = ("reason", "message_id", "issues", "state")
LOGGED_FIELDS = OUTCOME_FIELDS[:2]


def send_draft(rt: Runtime, claims: LinkClaims, *, actor: str) -> SendOutcome:
    """Send the draft a verified link names, at most once; see the module docstring."""
    click = _Click(rt, claims, actor, time.perf_counter(), load_record(rt, claims))
    record = click.record
    if record is None:
        return click.decide(UNKNOWN_DRAFT, "draft.unknown_draft", "warning", reason="unknown draft")
    states = SendStates(rt.redis, rt.keys)
    held = states.read(record.draft_id)
    if held is not None:
        return _duplicate(click, held)
    try:
        click.thread, reason = current_reason(rt, record, states)
    except errors.ServiceError as exc:  # nothing claimed, nothing sent
        status = BUSY if exc.retryable else NOT_SENT
        reason = "could not read the thread now"
        error = type(exc).__name__
        return click.decide(status, "draft.check_failed", "warning", reason=reason, error=error)
    if reason is None:
        claim = states.claim(record, actor, time.time())
        if claim.won is not None:
            return _send(click, record, claim.won, states)
        if claim.held is not None:
            return _duplicate(click, claim.held)
        reason = "a draft of this follow-up was sent already"
    held = states.read(record.draft_id)
    if held is not None:  # a concurrent click sent it while this one read the thread it moved
        return _duplicate(click, held)
    return click.decide(STALE, "draft.stale", reason=reason)


def _settled(click: _Click, held: SendState) -> SendState:
    """`held`, or what it became: a click that meets a send in progress (a double click) waits,
    polling, up to `SETTLE_SECONDS` for that send's outcome, so it can say "sent already"."""
    if held_status(click.rt, held, time.time()) != IN_PROGRESS:
        return held
    states = SendStates(click.rt.redis, click.rt.keys)
    until = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < until:
        time.sleep(SETTLE_POLL_SECONDS)
        now = states.read(click.claims.draft_id)
        if now is None or now.state != CLAIMED:
            return now or held
    return held


def _duplicate(click: _Click, held: SendState) -> SendOutcome:
    """A click on a draft whose send someone holds already: answered, nothing sent."""
    held = _settled(click, held)
    status = held_status(click.rt, held, time.time())
    return click.decide(
        status,
        "draft.duplicate",
        message_id=held.message_id,
        state=held,
        held=held.state,
        held_by=held.actor,
    )


def _send(click: _Click, record: DraftRecord, mine: SendState, states: SendStates) -> SendOutcome:
    """The one call to Leadterra, by the claim's winner, and what its answer means."""
    try:
        with budget.deadline_in(click.rt.settings.max_call_seconds):
            sent = click.rt.for_sdr(record.sdr_id).send_draft(record.draft_id)
    except errors.Conflict:  # 409 already_sent: it went, by an earlier call or elsewhere
        return _sent(click, record, mine, states, None, conflict=True)
    except errors.GuardrailBlocked as blocked:
        states.release(record, mine)
        return click.decide(
            BLOCKED,
            "draft.blocked",
            reason="blocked by Leadterra's quality guardrails",
            issues=tuple(blocked.issues),
            issue_count=len(blocked.issues),
        )
    except errors.UnexpectedAnswer as exc:  # a 2xx we cannot read: it most likely went
        return _unknown(click, record, mine, states, exc)
    except (errors.RateLimited, errors.PermanentError) as exc:
        states.release(record, mine)  # refused, nothing sent: a later click may try again
        reason = REFUSALS.get(exc.code or "") or REFUSALS.get(type(exc).__name__)
        return click.decide(
            BUSY if exc.retryable else NOT_SENT,
            "draft.send_failed",
            "warning",
            reason=reason or f"Leadterra refused the send (HTTP {exc.status or '?'})",
            error=type(exc).__name__,
            http_status=exc.status,
            code=exc.code,
        )
    except Exception as exc:  # timeout, 5xx, transport, out of time, the open world
        return _unknown(click, record, mine, states, exc)
    return _sent(click, record, mine, states, sent.message_id, conflict=False)


def _sent(
    click: _Click,
    record: DraftRecord,
    mine: SendState,
    states: SendStates,
    message_id: str | None,
    *,
    conflict: bool,
) -> SendOutcome:
    """Sent: recorded for good with the follow-up's mark and its completion task. A Redis
    failure here leaves the claim in place (never sent again) and is logged loudly."""
    try:
        done: SendState | None = states.sent(record, mine, message_id, time.time())
    except RedisError:
        done = None
    return click.decide(
        SENT_OUTCOME,
        "draft.sent",
        "info" if done else "error",
        message_id=message_id,
        state=done,
        conflict=conflict,
        recorded=done is not None,
    )


def _unknown(
    click: _Click, record: DraftRecord, mine: SendState, states: SendStates, exc: Exception
) -> SendOutcome:
    """No answer we can trust: kept as unknown for good, never sent again."""
    done = states.unknown(record, mine, type(exc).__name__, time.time())
    return click.decide(
        UNKNOWN_OUTCOME,
        "draft.unknown_outcome",
        "error",
        reason="no answer from Leadterra: the draft may or may not have been sent",
        state=done,
        error=type(exc).__name__,
        detail=click.rt.scrub(str(exc))[:300],
    )


def complete_sent_followup(rt: Runtime, payload: dict[str, Any]) -> str:
    """Complete the follow-up whose draft was sent (`leadrouter.complete_followup`): `completed`,
    or `already` on a 409; anything else raises for the task policy."""
    followup_id, sdr_id = payload.get("id"), payload.get("sdrId")
    if not isinstance(followup_id, str) or not followup_id:
        raise errors.PoisonMessage("complete_followup needs {id, sdrId, draftId}")
    started = time.perf_counter()
    try:
        rt.for_sdr(sdr_id if isinstance(sdr_id, str) else None).complete_followup(followup_id)
        outcome = "completed"
    except errors.Conflict:
        outcome = "already"
    log.info(
        "followup.completed",
        followup_id=followup_id,
        sdr_id=sdr_id,
        draft_id=payload.get("draftId"),
        outcome=outcome,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return outcome
