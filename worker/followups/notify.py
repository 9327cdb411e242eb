"""Where a due follow-up or an SLA step (worker/sla/notes.py) is announced: the log (always),
a signed JSON webhook, Slack; for the SDR's team (`webhook`, `slack`), the manager
(`escalation_webhook`, `escalation_slack`) or both, as `Notifier.destinations(audience)` lists.

Slack messages carry text from prospects and from Leadterra, so every such value is escaped and
shown as plain text (`slack_text`): a contact named `<!channel>` pings nobody. The one mrkdwn text
we write beside our labels is the SDR's mention in the team's channel, `<@U...>`, built only from
an id that is a Slack user id.

Each destination is delivered by its own task, so one failing destination is retried (or
dead-lettered) without sending the others twice. Every delivery carries `X-Leadrouter-Delivery`
(the note's `id`: a follow-up's id and due time, an SLA step's kind, reply and attempt) so a
receiver can drop a repeat after a lost acknowledgement. Both webhooks are signed with
FOLLOWUP_WEBHOOK_SECRET when it is set.
"""

from __future__ import annotations

import json
import time
import unicodedata
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from config.settings import Settings
from worker import errors
from worker.leadterra.answers import FAILURES, failure
from worker.leadterra.client import USER_AGENT, raise_for_status
from worker.leadterra.transport import cap_every_wait
from worker.signature import outbound_headers
from worker.sla.notes import HEADERS, MENTIONS, is_sla, is_slack_user_id

DELIVERY_HEADER = "X-Leadrouter-Delivery"
HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")
#: Slack reads these as markup in every text object; the entities are what it decodes
SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
MAX_SLACK_VALUE = 300
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
    return {
        "id": delivery_id(note),
        "type": FOLLOWUP_DUE,
        "event": FOLLOWUP_DUE,
        "deliveryId": delivery_id(note),
        "sdrId": note.get("sdr") or note["followup"].get("sdrId"),
        "followup": note["followup"],
        "thread": note.get("thread"),
    }


def slack_text(value: Any) -> str:
    """Prospect or Leadterra text made inert for Slack: one line of at most `MAX_SLACK_VALUE`
    characters, control characters dropped, and `&`, `<`, `>` escaped, the only escapes Slack
    decodes (https://api.slack.com/reference/surfaces/formatting#escaping), so `<!channel>` or
    `<https://evil.example|re-authenticate>` reads as text instead of pinging or linking."""
    line = " ".join(str(value).split())
    line = "".join(c for c in line if unicodedata.category(c) != "Cc")
    if len(line) > MAX_SLACK_VALUE:
        line = line[: MAX_SLACK_VALUE - 1] + "\u2026"
    return (line or "-").translate(SLACK_ESCAPES)


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _row(label: str, value: str) -> dict[str, Any]:
    """A two-column row: our bold label, then the value as plain text (no formatting, links,
    mentions or emoji codes; Slack has no escape for `*`, `_`, `~` or backticks in mrkdwn)."""
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"*{label}*"},
            {"type": "plain_text", "text": value, "emoji": False},
        ],
    }


def slack_body(note: dict[str, Any]) -> dict[str, Any]:
    """A readable Slack message: contact, subject, category, priority, due time, SDR.

    Every value comes from a prospect or from Leadterra, so each is `slack_text` in a plain-text
    field; the fallback `text` (notifications) is escaped too and not read as mrkdwn.
    """
    followup, thread = note["followup"], note.get("thread") or {}
    name, email = thread.get("contactName"), thread.get("contactEmail")
    contact = f"{name} <{email}>" if name and email else name or email or "unknown contact"
    sdr = note.get("sdr") or followup.get("sdrId") or "?"
    fields = {
        "Contact": slack_text(contact),
        "Subject": slack_text(thread.get("subject") or "(no subject)"),
        "Category": slack_text(thread.get("category") or "-"),
        "Priority": slack_text(_number(thread.get("priorityScore", "-"))),
        "Due": slack_text(followup.get("dueAt")),
        "SDR": slack_text(sdr),
    }
    text = (
        f"Follow-up due for {fields['Contact']}: {fields['Subject']} "
        f"(due {fields['Due']}, SDR {fields['SDR']})"
    )
    rows = [_row(label, value) for label, value in fields.items()]
    return _message(text, "Follow-up due", rows)


def _message(text: str, header: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A Slack message: plain fallback `text` (not read as mrkdwn, no unfurls), our `header`."""
    return {
        "text": text,
        "mrkdwn": False,
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": header}}, *blocks],
    }


def sla_webhook_body(note: dict[str, Any]) -> dict[str, Any]:
    """An SLA note as webhook JSON: every `SLA_FIELDS`, then `newSdrId`, `history` and `contact`
    when the note has them; never the SDR's Slack user id."""
    body = {name: note.get(name) for name in SLA_FIELDS}
    body.update({k: note[k] for k in ("newSdrId", "history", "contact") if note.get(k) is not None})
    return body


def _minutes(value: Any) -> Any:
    return _number(round(value, 1)) if isinstance(value, int | float) else value


def _history_line(history: Any) -> str:
    """`#1 sdr_1, #2 sdr_2`: each handoff's attempt and SDR, oldest first."""
    entries = history if isinstance(history, list) else []
    return ", ".join(
        f"#{entry.get('attempt', '?')} {entry.get('sdrId') or entry.get('sdr_id') or '?'}"
        for entry in entries
        if isinstance(entry, dict)
    )


def sla_slack_body(note: dict[str, Any], *, mention: bool) -> dict[str, Any]:
    """A readable Slack message for an SLA step: contact, SDR(s), time elapsed, reply, thread.

    Every value is `slack_text` in a plain-text field. With `mention` (the team's channel) and a
    note whose `slackUserId` is a Slack user id, a mrkdwn section of ours mentions the SDR.
    """
    kind = note.get("type")
    fields = {
        "Contact": slack_text(note.get("contact") or "unknown contact"),
        "SDR": slack_text(note.get("sdrId") or "?"),
    }
    if note.get("newSdrId"):
        fields["New SDR"] = slack_text(note["newSdrId"])
    elapsed = f"{_minutes(note.get('minutesElapsed'))} of {_minutes(note.get('slaMinutes'))} min"
    fields["Elapsed"] = slack_text(elapsed)
    fields["Reply"] = slack_text(note.get("replyId"))
    fields["Thread"] = slack_text(note.get("threadId") or "-")
    fields["Attempt"] = slack_text(note.get("attempt"))
    if note.get("history"):
        fields["History"] = slack_text(_history_line(note["history"]))
    header = HEADERS.get(str(kind), "SLA")
    text = f"{header}: {fields['Contact']} (SDR {fields['SDR']}, {fields['Elapsed']})"
    blocks = [_row(label, value) for label, value in fields.items()]
    user = note.get("slackUserId")
    if mention and is_slack_user_id(user):
        said = MENTIONS.get(str(kind), "")
        mrkdwn = {"type": "mrkdwn", "text": f"<@{user}> {said}".strip()}
        blocks.insert(0, {"type": "section", "text": mrkdwn})
    return _message(text, header, blocks)


def slack_message(destination: str, note: dict[str, Any]) -> dict[str, Any]:
    """The Slack message of `note`; an SLA note mentions its SDR in the team's channel only."""
    if is_sla(note):
        return sla_slack_body(note, mention=destination == "slack")
    return slack_body(note)


def log_fields(note: dict[str, Any]) -> dict[str, Any]:
    """What names `note` in a log line: a follow-up's id, or an SLA note's reply, type and id."""
    if is_sla(note):
        return {
            "reply_id": note.get("replyId"),
            "type": note.get("type"),
            "note_id": note.get("id"),
            "sdr_id": note.get("sdrId"),
        }
    return {"followup_id": note["followup"].get("id"), "sdr_id": note.get("sdr")}


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
            body = json.dumps(slack_message(destination, note), default=str).encode()
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
