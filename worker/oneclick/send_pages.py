"""The one-click pages: small whole HTML documents, rendered on the server, no external assets.

Everything shown from a draft, a thread or Leadterra's answer is data and goes through `esc`
(worker/console/markup.py). The pages hold no link's query string except the check link on an
unknown outcome (the page's own capability); the Send form has no `action`, so it posts to the
URL the browser already holds. The only style is one inline block, allowed by its hash in the
Content-Security-Policy; no script runs.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from worker.console.markup import Markup, esc, join, tag, when
from worker.drafts import sending as outcomes
from worker.drafts.sending import SendOutcome
from worker.leadterra.models import Thread, iso_ms
from worker.oneclick.preview import Preview, ThreadCheck
from worker.oneclick.send_state import CLAIMED, SENT, SendState

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}"
    "main{max-width:44rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}"
    "dt{font-weight:600}dd{margin:0 0 .5rem}"
    "pre{white-space:pre-wrap;background:#f6f7f9;padding:1rem;border-radius:6px}"
    ".note{padding:.75rem;border-radius:6px;background:#fff4d6}"
    "button{font-size:1rem;padding:.6rem 1.6rem;border:0;border-radius:6px;"
    "background:#1f6feb;color:#fff;cursor:pointer}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
SECURITY_HEADERS = {
    "content-security-policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-robots-tag": "noindex, nofollow",
}
SEND_FORM = Markup('<form method="post"><button type="submit">Send</button></form>')
REFUSED = {
    "expired": "This link has expired. The next due follow-up comes with a new draft.",
}
STATE_NOTES = {
    SENT: "This draft was sent already.",
    CLAIMED: "A send of this draft is in progress, or never finished: it is not sent again.",
}
UNKNOWN_NOTE = (
    "An earlier send of this draft got no answer: it may or may not have gone, so it is never "
    "sent again from here."
)


def document(title: str, *parts: Any) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{tag('h1', title)}{join(parts)}</main></body></html>"
    )


def _note(text: Any) -> Markup:
    return tag("p", text, class_="note")


def _fields(pairs: dict[str, Any]) -> Markup:
    rows = [Markup(f"{tag('dt', k)}{tag('dd', '–' if v is None else v)}") for k, v in pairs.items()]
    return Markup(f"<dl>{join(rows)}</dl>")


def _recipient(thread: Thread | None) -> str:
    if thread is None:
        return "(the thread could not be read now)"
    name, email = thread.contact_name, thread.contact_email
    return f"{name} <{email}>" if name and email else name or email or "(no contact on the thread)"


def _check_link(href: str) -> Markup:
    """The link to the read-only check of the thread (the link's own capability)."""
    return Markup(f'<p><a href="{esc(href)}">Check the thread</a></p>')


def _state_note(state: SendState) -> str:
    return STATE_NOTES.get(state.state, UNKNOWN_NOTE)


def confirm_page(preview: Preview, check_href: str) -> str:
    """The draft, who it goes to, and the Send button when nothing stands in the way (or, after
    a send of unknown outcome, the link to the check)."""
    record = preview.record
    confidence = None if record.confidence is None else f"{record.confidence:.0%}"
    details = _fields(
        {
            "To": _recipient(preview.thread),
            "Subject": record.subject or "(no subject)",
            "Follow-up due": record.due_at,
            "SDR": record.sdr_id,
            "Confidence": confidence,
        }
    )
    body = tag("pre", record.body_text or "(the draft has no text)")
    if preview.state is not None and preview.state.state != SENT:
        action: Markup = join([_note(_state_note(preview.state)), _check_link(check_href)])
    elif preview.state is not None:
        action = _note(_state_note(preview.state))
    elif preview.stale is not None:
        action = _note(f"This draft can no longer be sent: {preview.stale}.")
    else:
        unread = "Leadterra could not be read just now. " if preview.unread else ""
        note = f"{unread}Sending checks the thread again first, and sends at most once."
        action = join([tag("p", note), SEND_FORM])
    return document("Send this follow-up?", details, body, action)


def outcome_page(outcome: SendOutcome, check_href: str) -> str:
    """What a press of Send did."""
    status, reason = outcome.status, outcome.reason or ""
    if status == outcomes.SENT_OUTCOME:
        sent = "Sent through the SDR's Gmail."
        return document("Sent", tag("p", sent), _fields({"Message": outcome.message_id}))
    if status in (outcomes.ALREADY_SENT, outcomes.IN_PROGRESS) and outcome.state is not None:
        held = outcome.state
        facts = _fields({"By": held.actor, "At": when(held.at), "Message": held.message_id})
        return document("Not sent again", _note(_state_note(held)), facts)
    if status == outcomes.UNKNOWN_OUTCOME:
        return document("Outcome unknown", _note(UNKNOWN_NOTE), _check_link(check_href))
    if status == outcomes.BLOCKED:
        issues = tag("ul", join(tag("li", issue) for issue in outcome.issues))
        note = "Leadterra's quality guardrails blocked this draft; the follow-up stays pending."
        return document("Not sent", _note(note), issues, SEND_FORM)
    if status == outcomes.STALE:
        return document("Not sent", _note(f"This draft can no longer be sent: {reason}."))
    if status == outcomes.BUSY:
        return document("Not sent yet", _note(f"Not sent: {reason}. Try again shortly."), SEND_FORM)
    if status == outcomes.UNKNOWN_DRAFT:
        return unknown_draft_page()
    return document("Not sent", _note(f"Not sent: {reason}."))


def check_page(check: ThreadCheck) -> str:
    """The thread now, after an unknown outcome (or any time): reads only."""
    thread, state = check.thread, check.state
    last = thread.last_message_at if thread else None
    facts = {
        "Thread status": thread.status if thread else "(not in the SDR's inbox)",
        "Last message": iso_ms(last) if last else None,
        "Our send": f"{state.state} by {state.actor} at {when(state.at)}" if state else "none",
    }
    if check.looks_sent is True:
        verdict = "The thread moved after the send started: the draft most likely went."
    elif check.looks_sent is False:
        verdict = (
            "The thread has not moved since the send started: the draft most likely did not go."
        )
    else:
        verdict = "Nothing to compare: look at the thread in Leadterra or Gmail."
    return document("The thread now", _fields(facts), _note(verdict))


def refused_page(reason: str) -> str:
    return document("Link not valid", _note(REFUSED.get(reason, "This link is not valid.")))


def unknown_draft_page() -> str:
    return document("Unknown draft", _note("This draft is not known here (or no longer kept)."))


def unavailable_page() -> str:
    return document("Try again shortly", _note("The service could not be reached just now."))
