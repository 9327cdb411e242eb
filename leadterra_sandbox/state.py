"""The sandbox's in-memory world: keys, SDRs, replies, handoffs, threads, follow-ups.

Everything is a dict keyed by id, so lookups are O(1). Pending follow-ups are also kept in a
sorted list per SDR, keyed by (dueAt, id), so "what is due" reads the head of one list. Nothing
on a hot path copies the world; `dump()` is the only full walk and is for the control API.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, insort
from collections.abc import Container
from typing import Any

from leadterra_sandbox.clock import Clock, iso_ms
from leadterra_sandbox.drafts import Drafts
from leadterra_sandbox.listing import Listing
from leadterra_sandbox.records import FollowUp, Handoff, Reply, Sdr, Thread, WebhookReg

WORKSPACE = "workspace"

ORDERINGS = {
    "priority": lambda t: (-t.priority_score, -t.last_message_at, t.id),
    "lastMessage": lambda t: (-t.last_message_at, t.id),
    "created": lambda t: (-t.created_at, t.id),
}


class State:
    """The world one sandbox process serves. Not thread-safe: one event loop owns it."""

    def __init__(
        self,
        clock: Clock,
        *,
        workspace_key: str = "sk_test_workspace",
        followup_delay: float = 172800.0,
        allow_http_webhooks: bool = False,
    ) -> None:
        self.clock = clock
        self.workspace_key = workspace_key
        self.followup_delay = followup_delay
        self.allow_http_webhooks = allow_http_webhooks
        self.clear()

    def clear(self) -> None:
        """Forget everything but the workspace key."""
        self.keys: dict[str, str | None] = {self.workspace_key: None}
        self.sdr_keys: dict[str, str] = {}
        self.sdrs: dict[str, Sdr] = {}
        self.replies: dict[str, Reply] = {}
        self.campaigns: set[str] = set()
        self.handoffs: list[Handoff] = []
        self.handoffs_by_reply: dict[str, int] = {}
        self.threads: dict[str, Thread] = {}
        self.threads_by_sdr: dict[str, list[Thread]] = {}
        self.followups: dict[str, FollowUp] = {}
        self.due_index: dict[str, list[tuple[float, str]]] = {}
        self.webhooks: list[WebhookReg] = []
        self.drafts = Drafts()  # AI drafts, their sends and the guardrail fault
        self.listing = Listing()  # how GET /v1/replies answers (envelope, paging, timestamps)
        self._replies_newest: list[Reply] | None = None
        self._ids = itertools.count(1)

    def new_id(self, prefix: str, taken: Container[str] = ()) -> str:
        """A fresh id such as `thr_000042`, never one already in `taken`."""
        while True:
            candidate = f"{prefix}{next(self._ids):06d}"
            if candidate not in taken:
                return candidate

    # -- keys and SDRs ------------------------------------------------------------------------

    def key_owner(self, key: str) -> str | None:
        """The label of a known key ("workspace" or an SDR id), or None for an unknown key."""
        if key not in self.keys:
            return None
        sdr_id = self.keys[key]
        return WORKSPACE if sdr_id is None else sdr_id

    def add_key(self, key: str, sdr_id: str | None) -> None:
        self.keys[key] = sdr_id

    def revoke_key(self, key: str) -> bool:
        if key not in self.keys:
            return False
        sdr_id = self.keys.pop(key)
        if sdr_id is not None and self.sdr_keys.get(sdr_id) == key:
            del self.sdr_keys[sdr_id]
        return True

    def put_sdr(self, sdr: Sdr, api_key: str | None = None) -> None:
        """Add or replace an SDR and (re)link its key, `{workspace_key}_{id}` by default."""
        key = api_key or self.sdr_keys.get(sdr.id) or f"{self.workspace_key}_{sdr.id}"
        old = self.sdr_keys.get(sdr.id)
        if old is not None and old != key:
            self.keys.pop(old, None)
        self.keys[key] = sdr.id
        self.sdr_keys[sdr.id] = key
        sdr.key_label = sdr.id
        self.sdrs[sdr.id] = sdr

    def remove_sdr(self, sdr_id: str) -> None:
        self.sdrs.pop(sdr_id, None)
        key = self.sdr_keys.pop(sdr_id, None)
        if key is not None:
            self.keys.pop(key, None)

    # -- replies ------------------------------------------------------------------------------

    def put_reply(self, reply: Reply) -> None:
        self.replies[reply.id] = reply
        self.campaigns.add(reply.campaign_id)
        self._replies_newest = None

    def replies_newest(self, campaign_id: str | None = None) -> list[Reply]:
        """Replies by receivedAt, newest first (cached until the next change)."""
        if self._replies_newest is None:
            self._replies_newest = sorted(
                self.replies.values(), key=lambda r: (r.received_at, r.id), reverse=True
            )
        if campaign_id is None:
            return self._replies_newest
        return [r for r in self._replies_newest if r.campaign_id == campaign_id]

    def add_handoff(self, handoff: Handoff) -> None:
        self.handoffs.append(handoff)
        count = self.handoffs_by_reply.get(handoff.reply_id, 0)
        self.handoffs_by_reply[handoff.reply_id] = count + 1

    # -- threads ------------------------------------------------------------------------------

    def put_thread(self, thread: Thread) -> None:
        old = self.threads.get(thread.id)
        if old is not None:
            self.threads_by_sdr[old.sdr_id].remove(old)
        self.threads[thread.id] = thread
        self.threads_by_sdr.setdefault(thread.sdr_id, []).append(thread)

    def inbox(
        self,
        sdr_id: str,
        *,
        statuses: frozenset[str] = frozenset(),
        category: str | None = None,
        search: str | None = None,
        snoozed: bool | None = None,
        order_by: str = "priority",
    ) -> list[Thread]:
        """The SDR's threads that pass every filter, in `order_by` order."""
        needle = search.lower() if search else None
        found = [
            t
            for t in self.threads_by_sdr.get(sdr_id, ())
            if (not statuses or t.status in statuses)
            and (category is None or t.category == category)
            and (snoozed is None or t.snoozed == snoozed)
            and (needle is None or _matches(t, needle))
        ]
        found.sort(key=ORDERINGS[order_by])
        return found

    # -- follow-ups ---------------------------------------------------------------------------

    def put_followup(self, followup: FollowUp) -> None:
        old = self.followups.get(followup.id)
        if old is not None:
            self.unindex(old)
        self.followups[followup.id] = followup
        if followup.status == "pending":
            insort(self.due_index.setdefault(followup.sdr_id, []), followup.key)

    def unindex(self, followup: FollowUp) -> None:
        """Take a pending follow-up out of its SDR's due index (before a change)."""
        if followup.status != "pending":
            return
        index = self.due_index.get(followup.sdr_id, [])
        at = bisect_left(index, followup.key)
        if at < len(index) and index[at] == followup.key:
            del index[at]

    def set_due(self, followup: FollowUp, due_at: float) -> None:
        self.unindex(followup)
        followup.due_at = due_at
        insort(self.due_index.setdefault(followup.sdr_id, []), followup.key)

    def close_followup(self, followup: FollowUp, status: str, reason: str | None = None) -> None:
        self.unindex(followup)
        followup.status = status
        followup.reason = reason
        followup.closed_at = self.clock.now()

    def due(self, sdr_id: str, limit: int, include_upcoming: bool = False) -> list[FollowUp]:
        """Pending follow-ups due by sandbox now (or all), by dueAt then id, at most `limit`."""
        index = self.due_index.get(sdr_id, ())
        now = self.clock.now()
        found: list[FollowUp] = []
        for due_at, followup_id in index:
            if len(found) >= limit or (not include_upcoming and due_at > now):
                break
            found.append(self.followups[followup_id])
        return found

    # -- reading it all back ------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for followup in self.followups.values():
            statuses[followup.status] = statuses.get(followup.status, 0) + 1
        return {
            "sdrs": len(self.sdrs),
            "replies": len(self.replies),
            "forwardedReplies": sum(1 for r in self.replies.values() if r.forwarded),
            "handoffs": len(self.handoffs),
            "repliesHandedOffMoreThanOnce": sum(
                1 for n in self.handoffs_by_reply.values() if n > 1
            ),
            "threads": len(self.threads),
            "followups": statuses,
            "webhooks": len(self.webhooks),
        }

    def dump(self) -> dict[str, Any]:
        return {
            "now": iso_ms(self.clock.now()),
            "clockOffsetSeconds": self.clock.offset,
            "followupDelaySeconds": self.followup_delay,
            "sdrs": [s.state() for s in self.sdrs.values()],
            "replies": [r.state() for r in self.replies.values()],
            "handoffs": [h.state() for h in self.handoffs],
            "handoffsByReply": dict(self.handoffs_by_reply),
            "threads": [t.state() for t in self.threads.values()],
            "followups": [f.state() for f in self.followups.values()],
            "webhooks": [w.api() for w in self.webhooks],
            "counts": self.counts(),
        }


def _matches(thread: Thread, needle: str) -> bool:
    return (
        needle in thread.contact_email.lower()
        or needle in (thread.contact_name or "").lower()
        or needle in thread.subject.lower()
    )
