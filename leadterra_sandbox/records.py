"""The sandbox's records, each with its API view (`api()`) and its full view (`state()`).

Times are unix floats in sandbox time. SDR-page objects format them with milliseconds, reply and
webhook objects with seconds, as Leadterra's pages do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leadterra_sandbox.clock import iso_ms, iso_s

HEALTH_STATES = ("active", "needs_reauth", "rate_limited", "disconnected")
THREAD_STATUSES = (
    "new",
    "awaiting_reply",
    "needs_followup",
    "replied",
    "meeting_booked",
    "won",
    "lost_not_interested",
    "lost_timing",
    "lost_competitor",
    "archived",
)
CATEGORIES = ("A", "B", "C")
FOLLOWUP_STATUSES = ("pending", "completed", "skipped")


def _opt_ms(ts: float | None) -> str | None:
    return None if ts is None else iso_ms(ts)


@dataclass(slots=True)
class Sdr:
    id: str
    name: str
    email: str
    gmail_connected: bool = True
    gmail_email: str | None = None
    health_state: str = "active"
    last_synced_at: float | None = None
    last_sync_error: str | None = None
    key_label: str = ""

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "gmailConnected": self.gmail_connected,
            "gmailEmail": self.gmail_email,
        }

    def gmail_status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "connected": self.gmail_connected,
            "email": self.gmail_email,
            "healthState": self.health_state,
            "lastSyncedAt": _opt_ms(self.last_synced_at),
        }
        if self.last_sync_error:
            body["lastSyncError"] = self.last_sync_error
        return body

    def state(self) -> dict[str, Any]:
        return {
            **self.api(),
            "healthState": self.health_state,
            "lastSyncedAt": _opt_ms(self.last_synced_at),
            "lastSyncError": self.last_sync_error,
            "keyLabel": self.key_label,
        }


@dataclass(slots=True)
class Reply:
    id: str
    email: str
    campaign_id: str
    classification: str
    received_at: float
    thread_snippet: str = ""
    forwarded: bool = False
    icp_pass: bool = True
    name: str | None = None
    subject: str | None = None

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "campaignId": self.campaign_id,
            "classification": self.classification,
            "receivedAt": iso_s(self.received_at),
            "threadSnippet": self.thread_snippet,
        }

    def state(self) -> dict[str, Any]:
        extra = {"name": self.name, "subject": self.subject}
        return {**self.api(), "forwarded": self.forwarded, "icpPass": self.icp_pass, **extra}


@dataclass(slots=True)
class Thread:
    id: str
    sdr_id: str
    contact_email: str
    subject: str
    created_at: float
    last_message_at: float
    contact_name: str | None = None
    status: str = "new"
    category: str | None = None
    priority_score: int = 50
    snoozed: bool = False
    reply_id: str | None = None

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contactEmail": self.contact_email,
            "contactName": self.contact_name,
            "subject": self.subject,
            "status": self.status,
            "category": self.category,
            "priorityScore": self.priority_score,
            "lastMessageAt": iso_ms(self.last_message_at),
            "snoozed": self.snoozed,
            "createdAt": iso_ms(self.created_at),
        }

    def state(self) -> dict[str, Any]:
        return {**self.api(), "sdrId": self.sdr_id, "replyId": self.reply_id}


@dataclass(slots=True)
class FollowUp:
    id: str
    thread_id: str
    sdr_id: str
    due_at: float
    created_at: float
    status: str = "pending"
    reason: str | None = None
    closed_at: float | None = None
    reschedules: list[dict[str, Any]] = field(default_factory=list)
    _due_text: tuple[float, str] = (0.0, "")  # dueAt formatted once per value (a hot path)

    @property
    def key(self) -> tuple[float, str]:
        """Its place in the due index: dueAt, then id."""
        return (self.due_at, self.id)

    def api(self) -> dict[str, Any]:
        if self._due_text[0] != self.due_at or not self._due_text[1]:
            self._due_text = (self.due_at, iso_ms(self.due_at))
        return {
            "id": self.id,
            "threadId": self.thread_id,
            "sdrId": self.sdr_id,
            "status": self.status,
            "dueAt": self._due_text[1],
        }

    def state(self) -> dict[str, Any]:
        return {
            **self.api(),
            "createdAt": iso_ms(self.created_at),
            "closedAt": _opt_ms(self.closed_at),
            "skipReason": self.reason,
            "reschedules": self.reschedules,
        }


@dataclass(slots=True)
class Handoff:
    handoff_id: str
    reply_id: str
    sdr_id: str
    at: float
    category: str | None
    forced: bool
    thread_id: str
    followup_id: str
    message_id: str
    gmail_thread_id: str
    to: str
    cc: list[str]
    subject: str
    note: str | None

    def result(self) -> dict[str, Any]:
        return {
            "handoffId": self.handoff_id,
            "threadId": self.thread_id,
            "messageId": self.message_id,
            "gmailThreadId": self.gmail_thread_id,
        }

    def state(self) -> dict[str, Any]:
        return {
            **self.result(),
            "replyId": self.reply_id,
            "sdrId": self.sdr_id,
            "at": iso_ms(self.at),
            "category": self.category,
            "forced": self.forced,
            "followupId": self.followup_id,
            "to": self.to,
            "cc": self.cc,
            "subject": self.subject,
            "note": self.note,
        }


@dataclass(slots=True)
class WebhookReg:
    id: str
    url: str
    events: list[str]
    created_at: float
    status: str = "active"

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "status": self.status,
            "createdAt": iso_s(self.created_at),
        }
