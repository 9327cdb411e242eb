"""A generated draft as we keep it: what was drafted, for which follow-up at which due time, on
which state of the thread, and the signed link that sends it.

`DraftStore` keeps each record under its draft id and points the (follow-up, due time) pair at
it, both for `RECORD_TTL_SECONDS`: long past the link's expiry, so a late click or a check after
an unknown outcome still finds what was sent. Records hold a prospect's thread subject and our
draft text: data, escaped wherever shown.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis

from worker.keys import Keys, text

RECORD_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class DraftRecord:
    draft_id: str
    followup_id: str
    #: the follow-up's due time as the note carries it (`iso_ms`)
    due_at: str
    sdr_id: str
    thread_id: str
    subject: str | None
    body_text: str | None
    body_html: str | None
    confidence: float | None
    #: when we stored it (unix seconds, our clock)
    generated_at: float
    #: the thread's `lastMessageAt` the draft was written on (Leadterra's clock), when known:
    #: a later one means the prospect (or the SDR) wrote since, and the draft is stale
    base_last_message_at: str | None
    send_url: str
    #: the link's expiry (unix seconds)
    expires_at: int

    def summary(self) -> dict[str, Any]:
        """What a notification carries as `draft`."""
        return {
            "id": self.draft_id,
            "subject": self.subject,
            "bodyText": self.body_text,
            "confidence": self.confidence,
            "sendUrl": self.send_url,
        }

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, raw: bytes | str) -> DraftRecord:
        fields = json.loads(text(raw))
        return cls(**{name: fields.get(name) for name in cls.__dataclass_fields__})


class DraftStore:
    """Draft records in Redis: by draft id, and which draft a (follow-up, due time) has."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl: int = RECORD_TTL_SECONDS) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl

    def save(self, record: DraftRecord) -> None:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.draft(record.draft_id), record.dumps(), ex=self._ttl)
            pipe.set(
                self._keys.draft_of(record.followup_id, record.due_at),
                record.draft_id,
                ex=self._ttl,
            )
            pipe.execute()

    def by_id(self, draft_id: str) -> DraftRecord | None:
        raw = self._redis.get(self._keys.draft(draft_id))
        return DraftRecord.loads(raw) if raw else None

    def for_followup(self, followup_id: str, due_at: str) -> DraftRecord | None:
        draft_id = self._redis.get(self._keys.draft_of(followup_id, due_at))
        return self.by_id(text(draft_id)) if draft_id else None
