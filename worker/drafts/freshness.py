"""Whether a stored draft may still be sent: pure rules over what Leadterra says now.

A draft answers one follow-up, at one due time, on one state of its thread. It goes stale when
any of that moved on:

* the thread is gone from the SDR's inbox ("thread not found"), or its status is no longer one
  that waits on us (`awaiting_reply`, `needs_followup`): the prospect replied, a meeting was
  booked, the thread was closed;
* the thread's `lastMessageAt` is later than the one the draft was written on
  (`base_last_message_at`, Leadterra's clock), or, when that was not known, later than when we
  stored the draft (`generated_at`, our clock): someone wrote since;
* the follow-up is not `pending` at the same due time in `GET /v1/sdr/followups/due` with
  `includeUpcoming=true` (matched by id and `dueAt`): it was completed, skipped or rescheduled;
* our own record says a draft of this follow-up was sent already (`followup_sent`).

Each rule returns a short reason (our words; ids and statuses in it are Leadterra's data, to be
escaped where shown) or None when the draft may go.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from worker.drafts.record import DraftRecord
from worker.leadterra.models import FollowUp, Thread

#: thread statuses in which a follow-up message is still what the thread waits for
OPEN_STATUSES = frozenset({"awaiting_reply", "needs_followup"})
PENDING = "pending"


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time (with or without milliseconds, `Z` or an offset) in UTC, or None when
    absent or unreadable."""
    if not value or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def written_on(record: DraftRecord) -> datetime:
    """The thread state the draft was written on: its `lastMessageAt` then, else our clock's
    time of storing the draft."""
    return parse_time(record.base_last_message_at) or datetime.fromtimestamp(
        record.generated_at, UTC
    )


def thread_reason(thread: Thread | None, record: DraftRecord) -> str | None:
    """Why the thread no longer takes this draft, or None."""
    if thread is None:
        return "thread not found"
    if thread.status not in OPEN_STATUSES:
        return f"the thread is {thread.status or 'without a status'} now"
    if thread.last_message_at is not None and thread.last_message_at > written_on(record):
        return "the thread has a newer message than the draft"
    return None


def followup_reason(due: Iterable[FollowUp], record: DraftRecord) -> str | None:
    """Why the follow-up is no longer the one the draft answers, or None: it must be listed,
    `pending`, at the draft's due time."""
    wanted = parse_time(record.due_at)
    if wanted is None:
        return "the draft's due time is unreadable"
    same = [item for item in due if item.id == record.followup_id]
    if not same:
        return "the follow-up is no longer pending"
    if not any(item.due_at == wanted for item in same):
        return "the follow-up was rescheduled"
    if not any(item.due_at == wanted and item.status == PENDING for item in same):
        return "the follow-up is no longer pending"
    return None


def sent_reason(followup_sent: bool) -> str | None:
    return "a draft of this follow-up was sent already" if followup_sent else None


def stale_reason(
    record: DraftRecord,
    *,
    thread: Thread | None,
    due: Iterable[FollowUp],
    followup_sent: bool,
) -> str | None:
    """The first reason the draft may not be sent, or None when it may."""
    return (
        sent_reason(followup_sent) or thread_reason(thread, record) or followup_reason(due, record)
    )


def find_thread(threads: Iterable[Thread], thread_id: str) -> Thread | None:
    return next((thread for thread in threads if thread.id == thread_id), None)
