"""Replies found in `GET /v1/replies`, enqueued the way the webhook enqueues them.

The same payload, the same assign task, the same Lua call that sets the `seen:{reply}` marker
with the message (worker/jobs/queueing.py): a reply that comes both by webhook and by a sweep or
backfill, in any order or at the same moment, is enqueued once (and a message a killed worker
lost is sent again by worker/jobs/orphans.py, whichever path enqueued it). The payload says where
it came from (`source`), and that rides along to the outcome record, `reply.assigned` and the
metric.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from worker.jobs.queueing import enqueue_once
from worker.leadterra.models import Reply
from worker.logs import get_logger
from worker.runtime import Runtime

log = get_logger("leadrouter.intake")


@dataclass
class Tally:
    """Replies looked at, the positive ones, those already handled, those enqueued now."""

    read: int = 0
    positive: int = 0
    already_handled: int = 0
    enqueued: int = 0

    def add(self, other: Tally) -> None:
        self.read += other.read
        self.positive += other.positive
        self.already_handled += other.already_handled
        self.enqueued += other.enqueued

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "positive": self.positive,
            "already_handled": self.already_handled,
            "enqueued": self.enqueued,
        }


def label(reply: Reply) -> str:
    """The classification as the receiver compares it: trimmed, lower case, at most 60."""
    return (reply.classification or "").strip().lower()[:60]


def payload_of(reply: Reply, source: str, found_at: float) -> dict[str, Any]:
    """The assign task's payload, shaped like the receiver's (worker/receiver/webhook.py)."""
    received = reply.received_at
    return {
        "id": reply.id,
        "email": reply.email,
        "campaignId": reply.campaign_id,
        "classification": label(reply),
        "receivedAt": received.strftime("%Y-%m-%dT%H:%M:%SZ") if received else None,
        "acceptedAt": found_at,
        "source": source,
    }


def enqueue_found(
    rt: Runtime, replies: list[Reply], source: str, *, dry_run: bool = False
) -> Tally:
    """Enqueue the positive replies not seen before; with `dry_run`, only count them."""
    positive = frozenset(c.lower() for c in rt.settings.positive_classifications)
    chosen = [r for r in replies if label(r) in positive]
    tally = Tally(read=len(replies), positive=len(chosen))
    if dry_run:
        with rt.redis.pipeline(transaction=False) as pipe:
            for reply in chosen:
                pipe.exists(rt.keys.seen(reply.id))
            seen = pipe.execute() if chosen else []
        tally.already_handled = sum(1 for hit in seen if hit)
        return tally
    now = time.time()
    payloads = [payload_of(r, source, now) for r in chosen]
    fresh = enqueue_once(rt.redis, rt.keys, payloads, rt.settings.dedupe_ttl_seconds)
    for reply, new in zip(chosen, fresh, strict=True):
        if new:
            _log_found(rt, reply, source)
    tally.enqueued = sum(fresh)
    tally.already_handled = tally.positive - tally.enqueued
    return tally


def _log_found(rt: Runtime, reply: Reply, source: str) -> None:
    """`reply.recovered` (warning: webhooks are failing) when a sweep finds a reply the webhook
    should have brought; `reply.found` when finding it is the plan (polling mode, backfill)."""
    recovered = source == "reconcile" and rt.settings.intake == "webhooks"
    getattr(log, "warning" if recovered else "info")(
        "reply.recovered" if recovered else "reply.found",
        reply_id=reply.id,
        source=source,
        classification=label(reply),
        campaign_id=reply.campaign_id,
        received_at=reply.received_at.isoformat() if reply.received_at else None,
        outcome="enqueued",
    )
