"""What `POST /v1/sdr/drafts/generate` and `POST /v1/sdr/drafts/{id}/send` do to the state.

Generate checks, in order: the body (422 `invalid_request` with `errors`), then the thread
(404 `thread_not_found` when unknown or another SDR's). Send checks the body (422), the draft
(404 `draft_not_found` when unknown or another SDR's), a second send (409 `already_sent`), the
SDR's Gmail (422 `gmail_not_connected`), then the injected guardrails (422 `guardrail_blocked`
with `guardrails` beside `error`). Only a send past all of them is performed and recorded.
"""

from __future__ import annotations

import html
from typing import Any

from leadterra_sandbox.clock import iso_ms
from leadterra_sandbox.drafts import PASSING_SCORES, Draft, DraftSend
from leadterra_sandbox.errors import ApiError, invalid, not_found
from leadterra_sandbox.records import Sdr, Thread
from leadterra_sandbox.state import State

VARIANTS = (1, 3)  # variantCount: minimum, maximum (default 1)
APPROACHES = ("gentle nudge", "value reminder", "direct question")
SENT_STATUS = "awaiting_reply"


def _field_error(field: str, message: str) -> ApiError:
    return invalid(f"{field}: {message}", 422, errors=[{"field": field, "message": message}])


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object", 422)
    return body


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise _field_error(name, f"must be a {kind.__name__}")
    return value


def generate(state: State, sdr_id: str, body: Any) -> dict[str, Any]:
    """Draft `variantCount` replies on the SDR's thread; each draft is recorded on its own."""
    body = _object(body)
    thread_id = body.get("threadId")
    if not isinstance(thread_id, str) or not thread_id:
        raise _field_error("threadId", "is required")
    count = body.get("variantCount", 1)
    low, high = VARIANTS
    if isinstance(count, bool) or not isinstance(count, int) or not low <= count <= high:
        raise _field_error("variantCount", "must be an integer from 1 to 3")
    instructions = _optional(body, "instructions", str)
    thread = state.threads.get(thread_id)
    if thread is None or thread.sdr_id != sdr_id:
        raise not_found("thread_not_found", "thread")
    drafts = [_draft(state, thread, n, instructions) for n in range(count)]
    return {
        "drafts": [d.api() for d in drafts],
        "insights": [d.insight() for d in drafts],
        "appliedRules": [],
    }


def _draft(state: State, thread: Thread, variant: int, instructions: str | None) -> Draft:
    sdr = state.sdrs.get(thread.sdr_id)
    text = _body(thread, sdr, variant, instructions)
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
    subject = thread.subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    draft = Draft(
        id=state.new_id("drf_", state.drafts.drafts),
        thread_id=thread.id,
        sdr_id=thread.sdr_id,
        created_at=state.clock.now(),
        subject=subject,
        body_text=text,
        body_html=paragraphs,
        confidence=round(0.85 - 0.1 * variant, 2),
        approach=APPROACHES[variant],
        instructions=instructions,
    )
    state.drafts.drafts[draft.id] = draft
    return draft


def _body(thread: Thread, sdr: Sdr | None, variant: int, instructions: str | None) -> str:
    greeting = f"Hi {(thread.contact_name or 'there').split()[0]},"
    lines = [greeting, f"Following up on my last note ({APPROACHES[variant]})."]
    if instructions:
        lines.append(f"[{instructions}]")
    lines.append(f"Best,\n{sdr.name if sdr else 'your SDR'}")
    return "\n\n".join(lines)


def send(state: State, sdr_id: str, draft_id: str, body: Any) -> dict[str, Any]:
    """Send the draft once: record it, and move its thread as a sent follow-up would."""
    body = _object(body)
    final_html = _optional(body, "finalBodyHtml", str)
    final_text = _optional(body, "finalBodyText", str)
    cc = body.get("additionalCc") or []
    if not isinstance(cc, list) or not all(isinstance(c, str) for c in cc):
        raise _field_error("additionalCc", "must be a list of strings")
    draft = state.drafts.drafts.get(draft_id)
    if draft is None or draft.sdr_id != sdr_id:
        raise not_found("draft_not_found", "draft")
    if draft.sent_at is not None:
        raise ApiError(
            409,
            "already_sent",
            "the draft was already sent",
            messageId=draft.message_id,
            sentAt=iso_ms(draft.sent_at),
        )
    sdr = state.sdrs.get(sdr_id)
    if sdr is None or not sdr.gmail_connected:
        raise ApiError(422, "gmail_not_connected", "the SDR has not connected Gmail")
    guardrails = state.drafts.guardrails
    if guardrails.blocks(draft.id):
        draft.blocked += 1
        raise ApiError(
            422,
            "guardrail_blocked",
            "the draft failed the quality guardrails",
            guardrails=guardrails.report(),
        )
    now = state.clock.now()
    number = state.new_id("")
    record = DraftSend(
        id=f"snd_{number}",
        draft_id=draft.id,
        thread_id=draft.thread_id,
        sdr_id=sdr_id,
        at=now,
        message_id=f"gmsg_{number}",
        body_text=final_text or draft.body_text,
        body_html=final_html or draft.body_html,
        additional_cc=list(cc),
    )
    state.drafts.sends.append(record)
    draft.sent_at, draft.message_id = now, record.message_id
    thread = state.threads.get(draft.thread_id)
    if thread is not None:
        thread.last_message_at, thread.status = now, SENT_STATUS
    guardrails_ok = {"blocked": False, "issues": [], "scores": dict(PASSING_SCORES)}
    return {"messageId": record.message_id, "guardrails": guardrails_ok}
