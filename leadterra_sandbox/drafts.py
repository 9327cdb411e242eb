"""AI reply drafts and their sends: the records, and the store `State` keeps them in.

A draft belongs to one thread and one SDR and is sent at most once. Every performed send is
kept as a `DraftSend`, so a test counts sends per draft to prove exactly-once. `Guardrails` is
the injected quality block: the next N sends, or any send of named drafts, answer 422.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leadterra_sandbox.clock import iso_ms

#: what a blocked send reports when the fault names no issues (the docs leave entries open)
DEFAULT_ISSUES: tuple[dict[str, Any], ...] = (
    {
        "type": "low_personalization",
        "severity": "high",
        "message": "the draft reads as generic",
    },
)
DEFAULT_BLOCKED_SCORES = {
    "overall": 0.41,
    "readability": 0.72,
    "personalization": 0.18,
    "linkQuality": 0.9,
}
PASSING_SCORES = {"overall": 0.92, "readability": 0.88, "personalization": 0.95, "linkQuality": 0.9}


@dataclass(slots=True)
class Draft:
    id: str
    thread_id: str
    sdr_id: str
    created_at: float
    subject: str
    body_text: str
    body_html: str
    confidence: float
    approach: str
    instructions: str | None = None
    sent_at: float | None = None
    message_id: str | None = None
    blocked: int = 0  # sends answered 422 by the guardrails

    def api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bodyText": self.body_text,
            "bodyHtml": self.body_html,
            "subject": self.subject,
        }

    def insight(self) -> dict[str, Any]:
        return {
            "draftId": self.id,
            "approach": self.approach,
            "confidence": self.confidence,
            "rationale": "sandbox draft",
        }

    def state(self) -> dict[str, Any]:
        return {
            **self.api(),
            "threadId": self.thread_id,
            "sdrId": self.sdr_id,
            "createdAt": iso_ms(self.created_at),
            "confidence": self.confidence,
            "instructions": self.instructions,
            "sentAt": None if self.sent_at is None else iso_ms(self.sent_at),
            "messageId": self.message_id,
            "blockedCount": self.blocked,
        }


@dataclass(slots=True)
class DraftSend:
    id: str
    draft_id: str
    thread_id: str
    sdr_id: str
    at: float
    message_id: str
    body_text: str
    body_html: str
    additional_cc: list[str]

    def state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "draftId": self.draft_id,
            "threadId": self.thread_id,
            "sdrId": self.sdr_id,
            "at": iso_ms(self.at),
            "messageId": self.message_id,
            "bodyText": self.body_text,
            "bodyHtml": self.body_html,
            "additionalCc": self.additional_cc,
        }


@dataclass(slots=True)
class Guardrails:
    """The injected block: the next `next_count` sends, and every send of `draft_ids`."""

    next_count: int = 0
    draft_ids: set[str] = field(default_factory=set)
    issues: list[Any] = field(default_factory=lambda: list(DEFAULT_ISSUES))
    scores: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_BLOCKED_SCORES))

    def blocks(self, draft_id: str) -> bool:
        """Whether this send is blocked; a block of the next N is used up by it."""
        if draft_id in self.draft_ids:
            return True
        if self.next_count > 0:
            self.next_count -= 1
            return True
        return False

    def report(self) -> dict[str, Any]:
        return {"blocked": True, "issues": self.issues, "scores": self.scores}

    def settings(self) -> dict[str, Any]:
        return {
            "next": self.next_count,
            "draftIds": sorted(self.draft_ids),
            "issues": self.issues,
            "scores": self.scores,
        }


@dataclass
class Drafts:
    """Every draft by id, every performed send in order, and the guardrail fault."""

    drafts: dict[str, Draft] = field(default_factory=dict)
    sends: list[DraftSend] = field(default_factory=list)
    guardrails: Guardrails = field(default_factory=Guardrails)

    def listed(self, sdr_id: str | None = None, thread_id: str | None = None) -> list[Draft]:
        return [
            d
            for d in self.drafts.values()
            if (sdr_id is None or d.sdr_id == sdr_id)
            and (thread_id is None or d.thread_id == thread_id)
        ]

    def sends_of(
        self, draft_id: str | None = None, thread_id: str | None = None, sdr_id: str | None = None
    ) -> list[DraftSend]:
        return [
            s
            for s in self.sends
            if (draft_id is None or s.draft_id == draft_id)
            and (thread_id is None or s.thread_id == thread_id)
            and (sdr_id is None or s.sdr_id == sdr_id)
        ]
