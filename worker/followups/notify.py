"""Where a due follow-up or an SLA step (worker/sla/notes.py) is announced: the log (always),
a signed JSON webhook, Slack; for the SDR's team (`webhook`, `slack`), the manager
(`escalation_webhook`, `escalation_slack`) or both, as `Notifier.destinations(audience)` lists.
What Slack shows is rendered by worker/followups/slack_blocks.py; a follow-up's webhook JSON
carries its ready draft as `draft` (`DraftRecord.summary()`), absent when it has none.

Each destination is delivered by its own task, so one failing destination is retried (or
dead-lettered) without sending the others twice. Every delivery carries `X-Leadrouter-Delivery`
(the note's `id`: a follow-up's id and due time, an SLA step's kind, reply and attempt) so a
receiver can drop a repeat after a lost acknowledgement. Both webhooks are signed with
FOLLOWUP_WEBHOOK_SECRET when it is set.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from config.settings import Settings
from worker import errors
from worker.followups.slack_blocks import slack_message
from worker.leadterra.answers import FAILURES, failure
from worker.leadterra.client import USER_AGENT, raise_for_status
from worker.leadterra.transport import cap_every_wait
from worker.signature import outbound_headers
from worker.sla.notes import is_sla

DELIVERY_HEADER = "X-Leadrouter-Delivery"
HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")
FOLLOWUP_DUE = "followup.due"
#: destination name -> its setting; a destination is on when its setting is set
WEBHOOKS = {"webhook": "followup_webhook_url", "escalation_webhook": "sla_escalation_webhook_url"}
SLACKS = {"slack": "slack_webhook_url", "escalation_slack": "sla_escalation_slack_webhook_url"}
TEAM = ("webhook", "slack")
AUDIENCE_DESTINATIONS = {
    "sdr": TEAM,
    "manager": ("escalation_webhook", "escalation_slack"),
    "both": (*TEAM, "escalation_webhook", "escalation_slack"),
}
#: what every SLA webhook carries, null or not; `newSdrId`, `history`, `contact` when set
SLA_FIELDS = ("id", "type", "replyId", "sdrId", "threadId", "attempt", "minutesElapsed",
              "slaMinutes")  # fmt: skip


def header_value(text: str) -> str:
    """`text` as a header can carry it: ASCII outside 0x21-0x7E, and `%`, percent-encoded
    (UTF-8). An ASCII id without `%` is sent as it is; the body keeps the id unchanged."""
    return quote(text, safe=HEADER_SAFE)


def delivery_id(note: dict[str, Any]) -> str:
    """The note's idempotency id: an SLA note's `id`, a follow-up's `id:dueAt`."""
    if is_sla(note):
        return str(note["id"])
    followup = note["followup"]
    return f"{followup['id']}:{followup['dueAt']}"


def webhook_body(note: dict[str, Any]) -> dict[str, Any]:
    """A follow-up as webhook JSON. `draft` ({id, subject, bodyText, confidence, sendUrl}) is
    there only when the follow-up has a draft: absent, never null, otherwise."""
    body = {
        "id": delivery_id(note),
        "type": FOLLOWUP_DUE,
        "event": FOLLOWUP_DUE,
        "deliveryId": delivery_id(note),
        "sdrId": note.get("sdr") or note["followup"].get("sdrId"),
        "followup": note["followup"],
        "thread": note.get("thread"),
    }
    if note.get("draft"):
        body["draft"] = note["draft"]
    return body


def sla_webhook_body(note: dict[str, Any]) -> dict[str, Any]:
    """An SLA note as webhook JSON: every `SLA_FIELDS`, then `newSdrId`, `history` and `contact`
    when the note has them; never the SDR's Slack user id."""
    body = {name: note.get(name) for name in SLA_FIELDS}
    body.update({k: note[k] for k in ("newSdrId", "history", "contact") if note.get(k) is not None})
    return body


def log_fields(note: dict[str, Any]) -> dict[str, Any]:
    """What names `note` in a log line: a follow-up's id, or an SLA note's reply, type and id."""
    if is_sla(note):
        return {
            "reply_id": note.get("replyId"),
            "type": note.get("type"),
            "note_id": note.get("id"),
            "sdr_id": note.get("sdrId"),
        }
    fields = {"followup_id": note["followup"].get("id"), "sdr_id": note.get("sdr")}
    draft = note.get("draft")
    return fields | {"draft_id": draft.get("id")} if isinstance(draft, dict) else fields


class Notifier:
    """Delivers notifications over one pooled `httpx.Client`."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self._settings = settings
        self._http = httpx.Client(
            timeout=httpx.Timeout(10.0, connect=3.0),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )
        cap_every_wait(self._http)  # every wait ends by the task's deadline (worker/budget.py)

    def _url(self, destination: str) -> str | None:
        """The destination's URL, or None when it is unknown or not configured."""
        name = WEBHOOKS.get(destination) or SLACKS.get(destination)
        value = getattr(self._settings, name) if name else None
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return str(value) if value else None

    def destinations(self, audience: str = "sdr") -> list[str]:
        """The configured destinations of `audience`: `sdr` (the team's webhook and Slack, those
        of follow-ups), `manager` (the escalation webhook and Slack) or `both`."""
        try:
            names = AUDIENCE_DESTINATIONS[audience]
        except KeyError:
            raise ValueError(f"unknown audience {audience!r}") from None
        return [name for name in names if self._url(name)]

    def deliver(self, destination: str, note: dict[str, Any]) -> None:
        """POST `note` to `destination`; raise Retryable or Permanent errors on failure."""
        url = self._url(destination)
        if url is None:
            raise errors.InvalidRequest(f"unknown or unconfigured destination {destination!r}")
        headers = {
            DELIVERY_HEADER: header_value(delivery_id(note)),
            "Content-Type": "application/json",
        }
        if destination in SLACKS:
            interactive = self._settings.slack_signing_secret is not None
            message = slack_message(destination, note, interactive=interactive)
            body = json.dumps(message, default=str).encode()
        else:
            payload = sla_webhook_body(note) if is_sla(note) else webhook_body(note)
            body = json.dumps(payload, separators=(",", ":"), default=str).encode()
            secret = self._settings.followup_webhook_secret
            if secret is not None:
                headers.update(outbound_headers(secret.get_secret_value(), body, int(time.time())))
        endpoint = f"notify {destination}"
        try:
            response = self._http.post(url, content=body, headers=headers)
        except FAILURES as exc:
            raise failure(exc, endpoint) from None  # every httpx failure, mapped
        raise_for_status(response, endpoint)

    def close(self) -> None:
        self._http.close()
