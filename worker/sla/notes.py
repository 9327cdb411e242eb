"""What the SLA watch tells people: one note per step, and who hears it.

A note is a JSON-safe dict (it travels as the `deliver_notification` task's argument), rendered
per destination by worker/followups/notify.py, the same machinery as a due follow-up:

    {"id": "sla.breached:rpl_1:1", "type": "sla.breached", "replyId": "rpl_1",
     "sdrId": "sdr_1", "threadId": "thr_1", "attempt": 1, "minutesElapsed": 31.5,
     "slaMinutes": 30, "contact": "Ada <ada@acme.io>", "slackUserId": "U024BE7LH"}

`id` is the same for every delivery of one step (kind, reply, attempt), so a receiver drops a
repeat; it is also the `X-Leadrouter-Delivery` header. `sla.rerouted` adds `newSdrId`,
`sla.escalated` adds `history` (the reply's handoffs, oldest first, each with at least `attempt`
and `sdrId`). `contact` and `history` come from prospects and Leadterra: data, escaped wherever
shown. `slackUserId` is kept only when it is a Slack user id (`is_slack_user_id`), and is used
only to mention the SDR in the team's Slack channel, never sent in a webhook.

Who hears it (`audience`): `sdr` (the follow-up destinations: the team's webhook and Slack),
`manager` (SLA_ESCALATION_WEBHOOK_URL, SLA_ESCALATION_SLACK_WEBHOOK_URL) or `both`.
"""

from __future__ import annotations

import re
from typing import Any

PREFIX = "sla."
REMINDER = "sla.reminder"
BREACHED = "sla.breached"
REROUTED = "sla.rerouted"
ESCALATED = "sla.escalated"
KINDS = (REMINDER, BREACHED, REROUTED, ESCALATED)

SDR, MANAGER, BOTH = "sdr", "manager", "both"
AUDIENCES = {REMINDER: SDR, BREACHED: BOTH, REROUTED: SDR, ESCALATED: MANAGER}

#: the Slack header of each kind (our own text)
HEADERS = {
    REMINDER: "Reply waiting for its SDR",
    BREACHED: "SLA breached",
    REROUTED: "Reply re-routed",
    ESCALATED: "SLA escalation",
}
#: what the mention of the SDR says in the team's channel (our own text)
MENTIONS = {
    REMINDER: "this reply is waiting for you.",
    BREACHED: "this reply has passed its SLA.",
    REROUTED: "this reply is yours now.",
    ESCALATED: "this reply was escalated.",
}

#: a Slack member id (U...) or Enterprise Grid user id (W...); nothing else is ever mentioned
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def is_slack_user_id(value: object) -> bool:
    """Whether `value` is a Slack user id: `U` or `W`, then 2 to 20 capitals or digits, whole."""
    return isinstance(value, str) and SLACK_USER_ID.fullmatch(value) is not None


def is_sla(note: dict[str, Any]) -> bool:
    """Whether `note` is an SLA note (else it is a due follow-up's)."""
    return str(note.get("type", "")).startswith(PREFIX)


def note_id(kind: str, reply_id: str, attempt: int) -> str:
    """The idempotency id of one step: the same for every delivery of (kind, reply, attempt)."""
    return f"{kind}:{reply_id}:{attempt}"


def audience(kind: str) -> str:
    """`sdr`, `manager` or `both`: the destinations `Notifier.destinations` sends `kind` to."""
    try:
        return AUDIENCES[kind]
    except KeyError:
        raise ValueError(f"not an SLA note kind: {kind!r}") from None


def sla_note(
    kind: str,
    *,
    reply_id: str,
    sdr_id: str,
    thread_id: str | None,
    attempt: int,
    minutes_elapsed: float,
    sla_minutes: float,
    slack_user_id: str | None = None,
    history: list[dict[str, Any]] | None = None,
    contact: str | None = None,
    new_sdr_id: str | None = None,
) -> dict[str, Any]:
    """The note of one SLA step, for `Notifier.deliver` to each of `audience(kind)`'s
    destinations. `slack_user_id` is the SDR to mention in the team's channel (for
    `sla.rerouted`, the new SDR's); one that is not a Slack user id is dropped."""
    audience(kind)  # an unknown kind raises here, not in a worker
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    note: dict[str, Any] = {
        "id": note_id(kind, reply_id, attempt),
        "type": kind,
        "replyId": reply_id,
        "sdrId": sdr_id,
        "threadId": thread_id,
        "attempt": attempt,
        "minutesElapsed": round(float(minutes_elapsed), 2),
        "slaMinutes": round(float(sla_minutes), 2),
    }
    if new_sdr_id is not None:
        note["newSdrId"] = new_sdr_id
    if history is not None:
        note["history"] = history
    if contact is not None:
        note["contact"] = contact
    if is_slack_user_id(slack_user_id):
        note["slackUserId"] = slack_user_id
    return note
