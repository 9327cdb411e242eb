"""The read-only views of a draft: what the confirmation page shows before anyone presses Send
(`preview_draft`), and the check of its thread after a send of unknown outcome (`check_thread`).
Neither changes anything; neither ever sends.

The draft's record and its send state come from Redis; the thread (who the draft goes to, its
status and `lastMessageAt`) and the stale rules' verdict from Leadterra, read with the SDR's key
under a deadline. When Leadterra cannot be read the page still shows the draft: the send checks
again anyway. The check says the draft "looks sent" when the thread's `lastMessageAt` is later
than the claim (our clock against Leadterra's: a hint for the SDR, not a proof).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from worker import budget, errors
from worker.drafts.freshness import find_thread
from worker.drafts.record import DraftRecord
from worker.drafts.sending import CHECK_SECONDS, current_reason, load_record
from worker.leadterra.models import Thread
from worker.logs import get_logger
from worker.oneclick.links import LinkClaims
from worker.oneclick.send_state import SendState, SendStates
from worker.runtime import Runtime

log = get_logger("leadrouter.drafts")
#: the confirmation page's reads end by this; the send checks again with a longer one
PREVIEW_SECONDS = 10.0


@dataclass(frozen=True)
class Preview:
    record: DraftRecord
    #: a send someone holds already (sent, in progress, unknown), or None
    state: SendState | None
    thread: Thread | None = None
    #: why the draft can no longer be sent, when Leadterra says so now
    stale: str | None = None
    #: Leadterra could not be read now (nothing is known of the thread)
    unread: bool = False


def preview_draft(rt: Runtime, claims: LinkClaims) -> Preview | None:
    """The draft a verified link names as the page shows it; None for an unknown draft."""
    started = time.perf_counter()
    record = load_record(rt, claims)
    if record is None:
        return None
    states = SendStates(rt.redis, rt.keys)
    preview = Preview(record, states.read(record.draft_id))
    if preview.state is None:
        try:
            thread, stale = current_reason(rt, record, states, PREVIEW_SECONDS)
            preview = Preview(record, None, thread, stale)
        except errors.ServiceError:
            preview = Preview(record, None, unread=True)
    log.info(
        "draft.previewed",
        draft_id=record.draft_id,
        followup_id=record.followup_id,
        sdr_id=record.sdr_id,
        state=preview.state.state if preview.state else None,
        stale=preview.stale,
        unread=preview.unread,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return preview


@dataclass(frozen=True)
class ThreadCheck:
    """The thread as Leadterra shows it now, read after an unknown outcome (or any time)."""

    record: DraftRecord
    state: SendState | None
    thread: Thread | None
    #: True when the thread moved after the claim (our send, most likely); None without a
    #: claim, a thread or its `lastMessageAt`
    looks_sent: bool | None = None


def check_thread(rt: Runtime, claims: LinkClaims) -> ThreadCheck | None:
    """The draft's thread now (status, lastMessageAt) and whether it moved after the claim:
    reads only, never sends. None for an unknown draft."""
    started = time.perf_counter()
    record = load_record(rt, claims)
    if record is None:
        return None
    state = SendStates(rt.redis, rt.keys).read(record.draft_id)
    with budget.deadline_in(CHECK_SECONDS):
        thread = find_thread(rt.for_sdr(record.sdr_id).inbox_all(), record.thread_id)
    looks_sent = None
    if state is not None and thread is not None and thread.last_message_at is not None:
        looks_sent = thread.last_message_at > datetime.fromtimestamp(state.at, UTC)
    log.info(
        "draft.thread_checked",
        draft_id=record.draft_id,
        followup_id=record.followup_id,
        sdr_id=record.sdr_id,
        state=state.state if state else None,
        thread_status=thread.status if thread else None,
        looks_sent=looks_sent,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return ThreadCheck(record, state, thread, looks_sent)
