"""worker/drafts/freshness.py: when a stored draft may still be sent (pure rules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from worker.drafts.freshness import (
    find_thread,
    followup_reason,
    parse_time,
    stale_reason,
    thread_reason,
    written_on,
)
from worker.drafts.record import DraftRecord
from worker.leadterra.models import FollowUp, Thread

DUE = "2026-06-29T14:00:00.000Z"
BASE = "2026-06-28T18:00:00.000Z"
GENERATED = datetime(2026, 6, 29, 13, 0, tzinfo=UTC).timestamp()
RECORD = DraftRecord(
    draft_id="draft_1",
    followup_id="fu_1",
    due_at=DUE,
    sdr_id="sdr_1",
    thread_id="thr_1",
    subject="Re: pricing",
    body_text="Hi",
    body_html=None,
    confidence=0.8,
    generated_at=GENERATED,
    base_last_message_at=BASE,
    send_url="https://example.test/actions/send?d=draft_1",
    expires_at=2_000_000_000,
)


def thread(status: str = "needs_followup", last: str | None = BASE, **extra: Any) -> Thread:
    return Thread.model_validate({"id": "thr_1", "status": status, "lastMessageAt": last, **extra})


def followup(due: str = DUE, status: str = "pending", fid: str = "fu_1") -> FollowUp:
    return FollowUp.model_validate(
        {"id": fid, "threadId": "thr_1", "sdrId": "sdr_1", "status": status, "dueAt": due}
    )


def test_a_fresh_draft_may_be_sent() -> None:
    assert stale_reason(RECORD, thread=thread(), due=[followup()], followup_sent=False) is None


@pytest.mark.parametrize("status", ["awaiting_reply", "needs_followup"])
def test_both_waiting_statuses_take_the_draft(status: str) -> None:
    assert thread_reason(thread(status), RECORD) is None


def test_a_thread_missing_from_the_inbox_is_stale() -> None:
    assert thread_reason(None, RECORD) == "thread not found"


@pytest.mark.parametrize("status", ["replied", "meeting_booked", "won", "archived", "new"])
def test_a_thread_that_no_longer_waits_on_us_is_stale(status: str) -> None:
    assert thread_reason(thread(status), RECORD) == f"the thread is {status} now"


def test_a_thread_without_a_status_is_stale() -> None:
    assert thread_reason(thread(None), RECORD) == "the thread is without a status now"  # type: ignore[arg-type]


def test_a_newer_message_than_the_draft_was_written_on_is_stale() -> None:
    later = thread(last="2026-06-28T18:00:00.001Z")
    assert thread_reason(later, RECORD) == "the thread has a newer message than the draft"


def test_the_same_or_an_older_last_message_is_fine_in_either_precision() -> None:
    assert thread_reason(thread(last="2026-06-28T18:00:00Z"), RECORD) is None
    assert thread_reason(thread(last="2026-06-27T09:00:00Z"), RECORD) is None
    assert thread_reason(thread(last=None), RECORD) is None


def test_without_a_base_the_time_we_stored_the_draft_is_the_bound() -> None:
    record = replace(RECORD, base_last_message_at=None)
    assert written_on(record) == datetime(2026, 6, 29, 13, 0, tzinfo=UTC)
    assert thread_reason(thread(last="2026-06-29T12:59:59Z"), record) is None
    assert thread_reason(thread(last="2026-06-29T13:00:01Z"), record) is not None


def test_an_unreadable_base_falls_back_to_our_clock() -> None:
    record = replace(RECORD, base_last_message_at="yesterday")
    assert written_on(record) == datetime(2026, 6, 29, 13, 0, tzinfo=UTC)


def test_the_followup_must_be_pending_at_the_same_due_time() -> None:
    assert followup_reason([followup()], RECORD) is None
    assert followup_reason([followup(due="2026-06-29T14:00:00Z")], RECORD) is None
    assert followup_reason([followup(fid="fu_2")], RECORD) == "the follow-up is no longer pending"
    assert followup_reason([], RECORD) == "the follow-up is no longer pending"
    moved = [followup(due="2026-06-30T14:00:00.000Z")]
    assert followup_reason(moved, RECORD) == "the follow-up was rescheduled"
    done = [followup(status="completed")]
    assert followup_reason(done, RECORD) == "the follow-up is no longer pending"


def test_an_unreadable_due_time_on_the_record_is_stale() -> None:
    record = replace(RECORD, due_at="soon")
    assert followup_reason([followup()], record) == "the draft's due time is unreadable"


def test_our_own_sent_mark_wins_over_everything() -> None:
    reason = stale_reason(RECORD, thread=thread(), due=[followup()], followup_sent=True)
    assert reason == "a draft of this follow-up was sent already"


def test_the_thread_is_judged_before_the_followup() -> None:
    reason = stale_reason(RECORD, thread=thread("replied"), due=[], followup_sent=False)
    assert reason == "the thread is replied now"


def test_find_thread_matches_by_id() -> None:
    other = Thread.model_validate({"id": "thr_2"})
    assert find_thread([other, thread()], "thr_1") == thread()
    assert find_thread([other], "thr_1") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-29T14:00:00Z", datetime(2026, 6, 29, 14, tzinfo=UTC)),
        ("2026-06-29T14:00:00.000Z", datetime(2026, 6, 29, 14, tzinfo=UTC)),
        ("2026-06-29T16:00:00+02:00", datetime(2026, 6, 29, 14, tzinfo=UTC)),
        ("2026-06-29T14:00:00", datetime(2026, 6, 29, 14, tzinfo=UTC)),
        ("not a time", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_time_reads_both_precisions(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected
