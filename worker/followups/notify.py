"""Where a due follow-up is announced: the log (always), a signed JSON webhook, Slack.

Each destination is delivered by its own task, so one failing destination is retried (or
dead-lettered) without sending the others twice. Every delivery carries `X-Leadrouter-Delivery`
(follow-up id and due time) so a receiver can drop a repeat after a lost acknowledgement.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from config.settings import Settings
from worker import errors
from worker.leadterra.client import USER_AGENT, raise_for_status
from worker.signature import outbound_headers

DELIVERY_HEADER = "X-Leadrouter-Delivery"


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


def slack_body(note: dict[str, Any]) -> dict[str, Any]:
    """A readable Slack message: contact, subject, category, priority, due time, SDR."""
    followup, thread = note["followup"], note.get("thread") or {}
    contact = thread.get("contactName") or thread.get("contactEmail") or "unknown contact"
    if thread.get("contactName") and thread.get("contactEmail"):
        contact = f"{thread['contactName']} <{thread['contactEmail']}>"
    sdr = note.get("sdr") or followup.get("sdrId") or "?"
    fields = [
        ("Contact", contact),
        ("Subject", thread.get("subject") or "(no subject)"),
        ("Category", thread.get("category") or "-"),
        ("Priority", str(thread.get("priorityScore", "-"))),
        ("Due", str(followup.get("dueAt"))),
        ("SDR", str(sdr)),
    ]
    text = f"Follow-up due for {contact}: {fields[1][1]} (due {followup.get('dueAt')}, SDR {sdr})"
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Follow-up due"}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields],
            },
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

    def destinations(self) -> list[str]:
        found = []
        if self._settings.followup_webhook_url:
            found.append("webhook")
        if self._settings.slack_webhook_url:
            found.append("slack")
        return found

    def deliver(self, destination: str, note: dict[str, Any]) -> None:
        """POST `note` to `destination`; raise Retryable or Permanent errors on failure."""
        headers = {DELIVERY_HEADER: delivery_id(note), "Content-Type": "application/json"}
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
        except httpx.TimeoutException:
            raise errors.TransportFailure(f"{endpoint}: timed out", endpoint=endpoint) from None
        except httpx.TransportError as exc:
            raise errors.TransportFailure(
                f"{endpoint}: {type(exc).__name__}", endpoint=endpoint
            ) from None
        raise_for_status(response, endpoint)

    def close(self) -> None:
        self._http.close()
