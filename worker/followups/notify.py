"""Where a due follow-up is announced: the log (always), a signed JSON webhook, Slack.

Slack messages carry text from prospects and from Leadterra, so every such value is escaped and
shown as plain text (`slack_text`): a contact named `<!channel>` pings nobody.

Each destination is delivered by its own task, so one failing destination is retried (or
dead-lettered) without sending the others twice. Every delivery carries `X-Leadrouter-Delivery`
(follow-up id and due time) so a receiver can drop a repeat after a lost acknowledgement.
"""

from __future__ import annotations

import json
import time
import unicodedata
from typing import Any
from urllib.parse import quote

import httpx

from config.settings import Settings
from worker import errors
from worker.leadterra.answers import FAILURES, failure
from worker.leadterra.client import USER_AGENT, raise_for_status
from worker.leadterra.transport import cap_every_wait
from worker.signature import outbound_headers

DELIVERY_HEADER = "X-Leadrouter-Delivery"
HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")
#: Slack reads these as markup in every text object; the entities are what it decodes
SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
MAX_SLACK_VALUE = 300


def header_value(text: str) -> str:
    """`text` as a header can carry it: ASCII outside 0x21-0x7E, and `%`, percent-encoded
    (UTF-8). An ASCII id without `%` is sent as it is; the body keeps the id unchanged."""
    return quote(text, safe=HEADER_SAFE)


def delivery_id(note: dict[str, Any]) -> str:
    followup = note["followup"]
    return f"{followup['id']}:{followup['dueAt']}"


def webhook_body(note: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": "followup.due",
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
    return {
        "text": text,
        "mrkdwn": False,
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Follow-up due"}},
            *(_row(label, value) for label, value in fields.items()),
        ],
    }


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

    def destinations(self) -> list[str]:
        found = []
        if self._settings.followup_webhook_url:
            found.append("webhook")
        if self._settings.slack_webhook_url:
            found.append("slack")
        return found

    def deliver(self, destination: str, note: dict[str, Any]) -> None:
        """POST `note` to `destination`; raise Retryable or Permanent errors on failure."""
        headers = {
            DELIVERY_HEADER: header_value(delivery_id(note)),
            "Content-Type": "application/json",
        }
        if destination == "webhook":
            url = str(self._settings.followup_webhook_url)
            body = json.dumps(webhook_body(note), separators=(",", ":"), default=str).encode()
            secret = self._settings.followup_webhook_secret
            if secret is not None:
                headers.update(outbound_headers(secret.get_secret_value(), body, int(time.time())))
        elif destination == "slack" and self._settings.slack_webhook_url is not None:
            url = self._settings.slack_webhook_url.get_secret_value()
            body = json.dumps(slack_body(note), default=str).encode()
        else:
            raise errors.InvalidRequest(f"unknown destination {destination!r}")
        endpoint = f"notify {destination}"
        try:
            response = self._http.post(url, content=body, headers=headers)
        except FAILURES as exc:
            raise failure(exc, endpoint) from None  # every httpx failure, mapped
        raise_for_status(response, endpoint)

    def close(self) -> None:
        self._http.close()
