"""What a webhook delivery means: parse the envelope, find the reply, decide; and how old it is.

Pure functions, no I/O: the receiver (`worker/receiver/web.py`) reads, verifies and enqueues; this
module only turns raw bytes into a decision, so the rules can be tested alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from worker.errors import Malformed

REPLY_EVENT = "reply.received"
MAX_ID_LENGTH = 200
REPLY_FIELDS = ("email", "campaignId", "classification", "receivedAt")
#: how far ahead of our clock a `timestamp` may be before it is logged as clock skew
CLOCK_SKEW_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    """`enqueue` with the task payload, or `ignore` with the reason."""

    action: str
    reason: str
    event: str
    reply_id: str | None = None
    classification: str | None = None
    payload: dict[str, Any] | None = None


def _text(value: Any, limit: int = 320) -> str | None:
    if isinstance(value, str) and value and len(value) <= limit:
        return value
    return None


def _valid_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        return None
    if not value.isprintable() or value != value.strip():
        return None
    return value


def parse(body: bytes) -> dict[str, Any]:
    """The envelope `{event, timestamp, data}` as a dict, or Malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body is not UTF-8", 400) from None
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: JSONDecodeError, or an int over 4300 digits
        raise Malformed("body is not JSON", 400) from None
    if not isinstance(envelope, dict):
        raise Malformed("body is not a JSON object", 422)
    event = envelope.get("event")
    if not isinstance(event, str) or not event or len(event) > 100:
        raise Malformed("`event` must be a non-empty string", 422)
    data = envelope.get("data", {})
    if not isinstance(data, dict):
        raise Malformed("`data` must be an object", 422)
    return envelope


def decide(envelope: dict[str, Any], positive: frozenset[str], accepted_at: float) -> Decision:
    """Enqueue a positive `reply.received`; ignore any other event or classification."""
    event = envelope["event"]
    if event != REPLY_EVENT:
        return Decision("ignore", "other_event", event)
    data: dict[str, Any] = envelope.get("data") or {}
    reply = data.get("reply")
    if reply is not None and not isinstance(reply, dict):
        raise Malformed("`data.reply` must be an object", 422)
    reply = reply or {}
    reply_id = _valid_id(reply.get("id")) or _valid_id(data.get("replyId"))
    if reply_id is None and "reply" not in data:
        reply_id = _valid_id(data.get("id"))
    if reply_id is None:
        raise Malformed("`data.reply.id` is missing or not a valid id", 422)
    fields = {name: reply.get(name, data.get(name)) for name in REPLY_FIELDS}
    classification = fields["classification"]
    if classification is not None and not isinstance(classification, str):
        raise Malformed("`classification` must be a string", 422)
    label = (classification or "").strip().lower()[:60]
    if label not in positive:
        return Decision("ignore", "not_positive", event, reply_id, label or None)
    payload = {
        "id": reply_id,
        "email": _text(fields["email"]),
        "campaignId": _text(fields["campaignId"], MAX_ID_LENGTH),
        "classification": label,
        "receivedAt": _text(fields["receivedAt"], 64),
        "acceptedAt": accepted_at,
    }
    return Decision("enqueue", "positive", event, reply_id, label, payload)


@dataclass(frozen=True)
class Freshness:
    """How old a delivery is by its signed `timestamp`: `age_s` is negative when it is ahead."""

    verdict: Literal["fresh", "stale", "ahead", "missing", "unreadable"]
    age_s: float | None = None


def sent_at(value: Any) -> float | None:
    """An ISO 8601 timestamp (seconds or milliseconds, `Z` or an offset; none means UTC) as unix
    time, or None when it is not one."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        return None


def freshness(envelope: dict[str, Any], now: float, tolerance: float) -> Freshness:
    """Stale past `tolerance` seconds; ahead past CLOCK_SKEW_SECONDS (still accepted: a slow
    clock here must never drop replies); missing or unreadable is accepted too (the docs do not
    promise a timestamp). Only the HTTP handler asks: replays and reconciliations do not."""
    value = envelope.get("timestamp")
    if value is None:
        return Freshness("missing")
    moment = sent_at(value)
    if moment is None:
        return Freshness("unreadable")
    age = round(now - moment, 3)
    if age > tolerance:
        return Freshness("stale", age)
    if -age > CLOCK_SKEW_SECONDS:
        return Freshness("ahead", age)
    return Freshness("fresh", age)
