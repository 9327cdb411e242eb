"""Skip and Snooze, the two other buttons on a draft's Slack message (sync: run in a thread).

Both act on the follow-up the verified link names, with the SDR's key, and only while no send of
its draft is recorded: a draft sent, in progress or of unknown outcome leaves the follow-up to
the send (its completion task) and the buttons say so. Skip sends Leadterra a reason naming the
Slack user; Snooze reschedules the follow-up a day on, which makes this draft stale (the next due
time gets its own). Each click is logged once: `followup.skipped`, `followup.snoozed` or
`followup.action_failed`, with ids, the Slack user and the duration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from worker import budget, errors
from worker.drafts.sending import CHECK_SECONDS, load_record
from worker.logs import get_logger
from worker.oneclick.links import LinkClaims
from worker.oneclick.send_state import SendStates
from worker.runtime import Runtime

log = get_logger("leadrouter.followups")
SKIP, SNOOZE = "skip", "snooze"
SNOOZE_FOR = timedelta(days=1)


@dataclass(frozen=True)
class ButtonResult:
    #: `skipped`, `snoozed`, or `not_done`
    status: str
    #: our words for the Slack message (ids in them are data: escape)
    text: str
    #: whether the message's buttons are done with (replace it) or may be pressed again
    final: bool


def _blocked_by_send(rt: Runtime, claims: LinkClaims) -> str | None:
    states = SendStates(rt.redis, rt.keys)
    held = states.read(claims.draft_id)
    if held is not None:
        return f"the draft's send is recorded as {held.state}"
    if states.followup_sent(claims.followup_id):
        return "a draft of this follow-up was sent already"
    return None


def _failure_text(exc: errors.ServiceError) -> tuple[str, bool]:
    """Our words for a failed skip or snooze, and whether that is final."""
    if isinstance(exc, errors.Conflict):
        return "the follow-up is no longer pending", True
    if isinstance(exc, errors.NotFound):
        return "Leadterra does not know this follow-up", True
    if exc.retryable:
        return "Leadterra could not be reached; try again shortly", False
    return f"Leadterra refused it (HTTP {exc.status or '?'})", False


def press(rt: Runtime, claims: LinkClaims, button: str, slack_user: str) -> ButtonResult:
    """Skip or snooze the link's follow-up as `slack_user`; see the module docstring."""
    started = time.perf_counter()
    ids = {
        "followup_id": claims.followup_id,
        "draft_id": claims.draft_id,
        "sdr_id": claims.sdr_id,
        "slack_user_id": slack_user,
        "action": button,
    }
    text = _blocked_by_send(rt, claims) if load_record(rt, claims) else "unknown draft"
    final, error = True, None
    if text is None:
        try:
            _call(rt, claims, button, slack_user)
        except errors.ServiceError as exc:
            (text, final), error = _failure_text(exc), type(exc).__name__
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    if text is not None:
        log.warning(
            "followup.action_failed", **ids, reason=text, error=error, duration_ms=duration_ms
        )
        return ButtonResult("not_done", f"Not done: {text}.", final)
    done = "skipped" if button == SKIP else "snoozed"
    rt.metrics.drafts.labels(done).inc()
    log.info(f"followup.{done}", **ids, duration_ms=duration_ms)
    said = f"Follow-up {done} by {slack_user}" + ("." if button == SKIP else " for a day.")
    return ButtonResult(done, said, True)


def _call(rt: Runtime, claims: LinkClaims, button: str, slack_user: str) -> None:
    client = rt.for_sdr(claims.sdr_id)
    with budget.deadline_in(CHECK_SECONDS):
        if button == SKIP:
            client.skip_followup(claims.followup_id, f"skipped from Slack by {slack_user}")
        else:
            client.reschedule_followup(claims.followup_id, datetime.now(UTC) + SNOOZE_FOR)
