"""What the /v1 write endpoints do to the state, with Leadterra's errors.

The ICP rule (used unless `skipIcpCheck` is true): a contact fails when the seeded reply says
`icpPass: false`, when `seniority` is one of `REJECTED_SENIORITIES` (case-insensitive), or when
the first whole number in `employeeCount` is below `MIN_EMPLOYEES` or there is none. So "1-10"
and "5" fail; "11-50", "200" and "1000+" pass.
"""

from __future__ import annotations

import re
from typing import Any

from leadterra_sandbox.clock import iso_ms, parse_iso
from leadterra_sandbox.errors import ApiError, invalid, not_found
from leadterra_sandbox.records import CATEGORIES, FollowUp, Handoff, Reply, Sdr, Thread, WebhookReg
from leadterra_sandbox.state import State

MIN_EMPLOYEES = 10
REJECTED_SENIORITIES = frozenset({"intern", "student", "junior", "entry", "entry-level", "trainee"})
PRIORITY_BY_CATEGORY = {"A": 90, "B": 70, "C": 50, None: 60}
WEBHOOK_EVENTS = frozenset(
    {"campaign.started", "message.sent", "message.bounced", "reply.received"}
)
_FIRST_NUMBER = re.compile(r"\d+")


def _field_error(field: str, message: str) -> ApiError:
    return invalid(f"{field}: {message}", 422, errors=[{"field": field, "message": message}])


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise _field_error(field, "must be a string")
    return value


def assign(state: State, reply_id: str, body: Any) -> Handoff:
    """POST /v1/replies/{id}/assign: validate, gate, then forward and open a thread."""
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object", 422)
    sdr_id = body.get("sdrId")
    if not isinstance(sdr_id, str) or not sdr_id:
        raise _field_error("sdrId", "is required")
    category = body.get("category")
    if category is not None and category not in CATEGORIES:
        raise _field_error("category", "must be A, B or C")
    cc = body.get("cc") or []
    if not isinstance(cc, list) or not all(isinstance(c, str) for c in cc):
        raise _field_error("cc", "must be a list of strings")
    to, subject, note = (_optional_str(body, f) for f in ("to", "subject", "note"))
    reply = state.replies.get(reply_id)
    if reply is None:
        raise not_found("reply_not_found", "reply")
    sdr = state.sdrs.get(sdr_id)
    if sdr is None:
        raise not_found("sdr_not_found", "SDR")
    if not sdr.gmail_connected:
        raise ApiError(422, "gmail_not_connected", "the SDR has not connected Gmail")
    forced = body.get("forceForward") is True
    if reply.forwarded and not forced:
        raise ApiError(409, "already_forwarded", "the reply was already forwarded")
    if body.get("skipIcpCheck") is not True:
        _check_icp(reply, body)
    return _hand_off(state, reply, sdr, category, forced, to=to, cc=cc, subject=subject, note=note)


def _check_icp(reply: Reply, body: dict[str, Any]) -> None:
    seniority, employees = body.get("seniority"), body.get("employeeCount")
    if not isinstance(seniority, str) or not isinstance(employees, str):
        raise invalid("seniority and employeeCount (strings) are required without skipIcpCheck")
    number = _FIRST_NUMBER.search(employees)
    if (
        not reply.icp_pass
        or seniority.strip().lower() in REJECTED_SENIORITIES
        or number is None
        or int(number.group()) < MIN_EMPLOYEES
    ):
        raise ApiError(400, "icp_failed", "the contact does not match the ICP", icpFailed=True)


def _hand_off(
    state: State,
    reply: Reply,
    sdr: Sdr,
    category: str | None,
    forced: bool,
    *,
    to: str | None,
    cc: list[str],
    subject: str | None,
    note: str | None,
) -> Handoff:
    now = state.clock.now()
    thread = Thread(
        id=state.new_id("thr_", state.threads),
        sdr_id=sdr.id,
        contact_email=reply.email,
        contact_name=reply.name or _name_from(reply.email),
        subject=subject or f"Re: {reply.subject or 'your message'}",
        created_at=now,
        last_message_at=now,
        category=category,
        priority_score=PRIORITY_BY_CATEGORY[category],
        reply_id=reply.id,
    )
    state.put_thread(thread)
    followup = FollowUp(
        id=state.new_id("fu_", state.followups),
        thread_id=thread.id,
        sdr_id=sdr.id,
        due_at=now + state.followup_delay,
        created_at=now,
    )
    state.put_followup(followup)
    reply.forwarded = True
    number = state.new_id("")
    handoff = Handoff(
        handoff_id=f"ho_{number}",
        reply_id=reply.id,
        sdr_id=sdr.id,
        at=now,
        category=category,
        forced=forced,
        thread_id=thread.id,
        followup_id=followup.id,
        message_id=f"msg_{number}",
        gmail_thread_id=f"gth_{number}",
        to=to or sdr.email,
        cc=cc,
        subject=thread.subject,
        note=note,
    )
    state.add_handoff(handoff)
    return handoff


def _name_from(email: str) -> str | None:
    """ "jane.doe@acme.com" -> "Jane Doe": the name a mail client would guess."""
    local = email.partition("@")[0]
    words = [w for w in re.split(r"[._\-+]+", local) if w.isalpha()]
    return " ".join(w.title() for w in words) or None


def _own_followup(state: State, sdr_id: str, followup_id: str) -> FollowUp:
    followup = state.followups.get(followup_id)
    if followup is None or followup.sdr_id != sdr_id:
        raise not_found("followup_not_found", "follow-up")
    return followup


def _require_pending(followup: FollowUp) -> None:
    if followup.status != "pending":
        raise ApiError(409, "followup_not_pending", f"the follow-up is {followup.status}")


def _body_dict(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


def complete(state: State, sdr_id: str, followup_id: str) -> FollowUp:
    followup = _own_followup(state, sdr_id, followup_id)
    _require_pending(followup)
    state.close_followup(followup, "completed")
    return followup


def skip(state: State, sdr_id: str, followup_id: str, body: Any) -> FollowUp:
    followup = _own_followup(state, sdr_id, followup_id)
    reason = _body_dict(body).get("reason")
    if reason is not None and not isinstance(reason, str):
        raise invalid("reason must be a string")
    _require_pending(followup)
    state.close_followup(followup, "skipped", reason)
    return followup


def reschedule(state: State, sdr_id: str, followup_id: str, body: Any) -> FollowUp:
    followup = _own_followup(state, sdr_id, followup_id)
    due_at = parse_iso(_body_dict(body).get("dueAt"))
    if due_at is None:
        raise invalid("dueAt must be an ISO 8601 time")
    _require_pending(followup)
    entry = {
        "at": iso_ms(state.clock.now()),
        "fromDueAt": iso_ms(followup.due_at),
        "toDueAt": iso_ms(due_at),
    }
    followup.reschedules.append(entry)
    state.set_due(followup, due_at)
    return followup


def schedule(state: State, sdr_id: str, thread_id: str, body: Any) -> FollowUp:
    """POST /v1/sdr/threads/{id}/followup/schedule: at `dueAt`, or now + the rule delay."""
    thread = state.threads.get(thread_id)
    if thread is None or thread.sdr_id != sdr_id:
        raise not_found("thread_not_found", "thread")
    raw = _body_dict(body).get("dueAt")
    now = state.clock.now()
    due_at = now + state.followup_delay if raw is None else parse_iso(raw)
    if due_at is None:
        raise invalid("dueAt must be an ISO 8601 time")
    followup = FollowUp(
        id=state.new_id("fu_", state.followups),
        thread_id=thread.id,
        sdr_id=sdr_id,
        due_at=due_at,
        created_at=now,
    )
    state.put_followup(followup)
    return followup


def register_webhook(state: State, body: Any) -> WebhookReg:
    """POST /v1/webhooks: https only (unless the sandbox allows http), known events only."""
    body = _body_dict(body)
    url, events = body.get("url"), body.get("events")
    schemes = ("https://", "http://") if state.allow_http_webhooks else ("https://",)
    if not isinstance(url, str) or not url.startswith(schemes):
        raise invalid("url must be an https:// URL")
    if (
        not isinstance(events, list)
        or not events
        or not all(isinstance(e, str) and e in WEBHOOK_EVENTS for e in events)
    ):
        raise invalid(f"events must be a non-empty subset of {sorted(WEBHOOK_EVENTS)}")
    webhook = WebhookReg(
        id=state.new_id("wh_"), url=url, events=list(events), created_at=state.clock.now()
    )
    state.webhooks.append(webhook)
    return webhook
