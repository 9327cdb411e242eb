"""Slack's side of the buttons, as data: the interaction payload read, the answers written.

A button press arrives form-encoded as `payload=<JSON>` (Slack's `block_actions`); we read the
user's id, the first action's `action_id` and `value` (the send link's query string) and the
`response_url`, which must be Slack's own hooks host (it is where we POST the answer). A final
outcome replaces the original message, rebuilt from the draft's record and thread by
`draft_outcome_message` (worker/followups/slack_blocks.py) with the outcome where the buttons
were; anything a later press could change is an ephemeral note to the presser, and the original
stays. Every value is made inert by `slack_text`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from worker.drafts import sending as outcomes
from worker.drafts.record import DraftRecord
from worker.drafts.sending import SendOutcome
from worker.errors import Malformed
from worker.followups.slack_blocks import draft_outcome_message, slack_text
from worker.leadterra.models import Thread
from worker.sla.notes import is_slack_user_id

SEND_ACTION = "leadrouter_send"
SKIP_ACTION = "leadrouter_skip"
SNOOZE_ACTION = "leadrouter_snooze"
ACTIONS = (SEND_ACTION, SKIP_ACTION, SNOOZE_ACTION)
RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
MAX_VALUE = 2000  # Slack's own cap on a button's value
#: outcomes of a send after which the message's buttons are done with
FINAL = frozenset(
    {outcomes.SENT_OUTCOME, outcomes.ALREADY_SENT, outcomes.UNKNOWN_OUTCOME, outcomes.STALE}
)


@dataclass(frozen=True)
class SlackAction:
    user_id: str
    action_id: str
    #: the send link's query string: a capability, never logged
    value: str
    #: where the answer goes: never logged
    response_url: str

    def link_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.value, keep_blank_values=True))


def _text(value: Any, limit: int) -> str:
    """`value` when it is a string of 1 to `limit` characters, else empty."""
    return value if isinstance(value, str) and 0 < len(value) <= limit else ""


def parse_action(body: bytes) -> SlackAction:
    """The one action of a `block_actions` payload; Malformed (400) for anything else."""
    try:
        form = parse_qs(body.decode(), max_num_fields=10, strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise Malformed("not a Slack interaction payload", 400) from None
    payload = payload if isinstance(payload, dict) else {}
    user = payload.get("user")
    actions = payload.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    first = first if isinstance(first, dict) else {}
    user_id = user.get("id") if isinstance(user, dict) else None
    found = SlackAction(
        user_id=str(user_id) if is_slack_user_id(user_id) else "",
        action_id=_text(first.get("action_id"), 255),
        value=_text(first.get("value"), MAX_VALUE),
        response_url=_text(payload.get("response_url"), 2000),
    )
    if not (found.user_id and found.action_id and found.value):
        raise Malformed("a Slack action without a user, an action or a value", 400)
    parts = urlsplit(found.response_url)
    if parts.scheme != "https" or parts.hostname not in RESPONSE_HOSTS:
        raise Malformed("a Slack action whose response_url is not Slack's", 400)
    return found


def ephemeral(said: str) -> dict[str, Any]:
    """A note to the presser only (`said` escaped here); the original message stays."""
    text = slack_text(said)
    return {"response_type": "ephemeral", "replace_original": False, "text": text, "mrkdwn": False}


def replacement(record: DraftRecord, thread: Thread | None, said: str) -> dict[str, Any]:
    """The original message rebuilt from the draft's record and its thread (when read), its
    buttons replaced by `said` (escaped by `draft_outcome_message`)."""
    followup = {
        "id": record.followup_id,
        "threadId": record.thread_id,
        "sdrId": record.sdr_id,
        "dueAt": record.due_at,
    }
    shown = thread.model_dump(mode="json", by_alias=True) if thread else {"id": record.thread_id}
    draft = {k: v for k, v in record.summary().items() if k != "sendUrl"}  # no link in Slack
    note = {"followup": followup, "thread": shown, "sdr": record.sdr_id, "draft": draft}
    return {"replace_original": True, **draft_outcome_message(note, said)}


def send_said(outcome: SendOutcome, user_id: str) -> tuple[str, bool]:
    """What a press of Send did, in words (not escaped yet), and whether that is final."""
    status = outcome.status
    if status == outcomes.SENT_OUTCOME:
        said = f"Sent by {user_id}."
    elif status in (outcomes.ALREADY_SENT, outcomes.IN_PROGRESS) and outcome.state:
        said = f"Not sent again: {outcome.state.state} by {outcome.state.actor}."
    elif status == outcomes.UNKNOWN_OUTCOME:
        said = (
            "No answer from Leadterra: the draft may or may not have gone, and it is not sent "
            "again. Check the thread in Leadterra or Gmail."
        )
    elif status == outcomes.BLOCKED:
        issues = "; ".join(outcome.issues) or "no issue named"
        said = f"Not sent, blocked by Leadterra's guardrails: {issues}."
    else:
        said = f"Not sent: {outcome.reason or status}."
    return said, status in FINAL


NOT_ALLOWED = "Only this follow-up's SDR (or a leadrouter admin in Slack) may do that."


def link_refused(reason: str) -> str:
    return "This draft's link has expired." if reason == "expired" else "This link is not valid."
