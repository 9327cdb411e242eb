"""worker/drafts/generate.py against fakeredis and the fake Leadterra behind httpx.MockTransport:
one draft per (follow-up, due time), the lock, the daily cap, failures that still notify."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker import budget
from worker.drafts.generate import DAILY_TTL_SECONDS, draft_for
from worker.drafts.record import DraftStore
from worker.oneclick.links import verify_link
from worker.runtime import Runtime

SDR_KEYS = {"sdr_1": "sk_sdr_one_123", "sdr_2": "sk_sdr_two_456"}
GENERATE = "/v1/sdr/drafts/generate"
ACTION_SECRET = "action-secret-0123456789-abcdefghij"
BASE_URL = "https://leadrouter.example.test"
DUE = "2026-06-29T14:00:00.000Z"
LAST_MESSAGE = "2026-06-28T18:00:00.000Z"
DRAFTS = {
    "followup_drafts": True,
    "public_base_url": BASE_URL,
    "action_secret": ACTION_SECRET,
    "followup_draft_timeout_seconds": 5,
    "followup_draft_instructions": "Short and warm.",
}


def answer(draft_id: str = "draft_1", confidence: float = 0.85) -> httpx.Response:
    drafts = [{"id": draft_id, "subject": "Re: pricing", "bodyText": "Hi Ada,\n\nStill keen?",
               "bodyHtml": "<p>Hi Ada,</p>"}]  # fmt: skip
    insights = [{"draftId": draft_id, "approach": "nudge", "confidence": confidence}]
    return httpx.Response(200, json={"data": {"drafts": drafts, "insights": insights}})


def make_note(
    fid: str = "fu_1",
    thread_id: str | None = "thr_1",
    sdr: str | None = "sdr_1",
    followup_sdr: str | None = "sdr_1",
) -> dict[str, Any]:
    followup = {"id": fid, "threadId": thread_id, "sdrId": followup_sdr, "status": "pending",
                "dueAt": DUE}  # fmt: skip
    thread = {"id": thread_id, "status": "needs_followup", "lastMessageAt": LAST_MESSAGE}
    return {"followup": followup, "thread": thread, "sdr": sdr}


@pytest.fixture
def fake() -> FakeLeadterra:
    fake = FakeLeadterra(sdr_keys=SDR_KEYS)
    fake.answers[GENERATE] = lambda request: answer()
    return fake


@pytest.fixture
def make_rt(fake_redis, fake: FakeLeadterra) -> Callable[..., Runtime]:
    def make(**overrides: Any) -> Runtime:
        values = {"leadterra_sdr_api_keys": SDR_KEYS, **DRAFTS, **overrides}
        return Runtime(make_settings(**values), client=fake_redis, leadterra=fake.client())

    return make


@pytest.fixture
def rt(make_rt: Callable[..., Runtime]) -> Runtime:
    return make_rt()


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def drafts(rt: Runtime, event: str) -> float:
    value = rt.metrics.registry.get_sample_value("leadrouter_drafts_total", {"event": event})
    return value or 0.0


def daily(rt: Runtime) -> int:
    raw = rt.redis.get(rt.keys.drafts_daily(datetime.now(UTC).strftime("%Y-%m-%d")))
    return int(raw or 0)


# -- generated --------------------------------------------------------------------------------


def test_a_draft_is_generated_with_the_sdrs_key_and_stored(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    record = draft_for(rt, make_note())
    assert record is not None
    [call] = fake.to(GENERATE)
    assert call.authorization == "Bearer sk_sdr_one_123"
    assert call.body == {"threadId": "thr_1", "variantCount": 1, "instructions": "Short and warm."}
    assert (record.draft_id, record.followup_id, record.due_at) == ("draft_1", "fu_1", DUE)
    assert (record.sdr_id, record.thread_id, record.confidence) == ("sdr_1", "thr_1", 0.85)
    assert (record.subject, record.body_text) == ("Re: pricing", "Hi Ada,\n\nStill keen?")
    assert record.base_last_message_at == LAST_MESSAGE
    assert abs(record.generated_at - time.time()) < 60
    assert DraftStore(rt.redis, rt.keys).for_followup("fu_1", DUE) == record
    assert not rt.redis.exists(rt.keys.draft_generating("fu_1", DUE))


def test_the_send_link_is_signed_for_the_draft_followup_and_sdr(rt: Runtime) -> None:
    record = draft_for(rt, make_note())
    assert record is not None
    url = urlsplit(record.send_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{BASE_URL}/actions/send"
    claims = verify_link(ACTION_SECRET, dict(parse_qsl(url.query)), int(time.time()))
    assert (claims.draft_id, claims.followup_id, claims.sdr_id) == ("draft_1", "fu_1", "sdr_1")
    assert claims.expires_at == record.expires_at
    assert abs(record.expires_at - (time.time() + 24 * 3600)) < 60
    assert record.summary()["sendUrl"] == record.send_url


def test_the_link_ttl_comes_from_settings(make_rt: Callable[..., Runtime]) -> None:
    record = draft_for(make_rt(action_link_ttl_hours=2), make_note())
    assert record is not None
    assert abs(record.expires_at - (time.time() + 2 * 3600)) < 60


def test_a_generated_draft_is_logged_and_counted(rt: Runtime) -> None:
    with capture_logs() as logs:
        draft_for(rt, make_note())
    [generated] = events(logs, "draft.generated")
    assert generated["log_level"] == "info"
    assert (generated["draft_id"], generated["followup_id"]) == ("draft_1", "fu_1")
    assert (generated["sdr_id"], generated["thread_id"]) == ("sdr_1", "thr_1")
    assert generated["confidence"] == 0.85
    assert generated["duration_ms"] >= 0
    assert drafts(rt, "generated") == 1
    assert daily(rt) == 1


def test_without_a_scoped_key_the_followups_sdr_names_the_link(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(leadterra_sdr_api_keys={})
    record = draft_for(rt, make_note(sdr=None, followup_sdr="sdr_2"))
    assert record is not None and record.sdr_id == "sdr_2"
    assert "s=sdr_2" in record.send_url
    assert fake.to(GENERATE)[0].authorization.startswith("Bearer sk_test_")


def test_drafts_off_means_no_draft_and_no_call(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(followup_drafts=False)
    assert draft_for(rt, make_note()) is None
    assert fake.calls == []


@pytest.mark.parametrize(
    ("note", "missing"),
    [
        (make_note(thread_id=None), "thread"),
        (make_note(sdr=None, followup_sdr=None), "SDR"),
    ],
)
def test_a_followup_without_thread_or_sdr_gets_no_draft(
    rt: Runtime, fake: FakeLeadterra, note: dict[str, Any], missing: str
) -> None:
    with capture_logs() as logs:
        assert draft_for(rt, note) is None
    assert fake.calls == []
    [skipped] = events(logs, "draft.skipped")
    assert skipped["reason"] == f"the follow-up names no {missing}"
    assert skipped["followup_id"] == "fu_1"


@pytest.mark.parametrize("status", ["new", "replied", "meeting_booked"])
def test_a_thread_not_waiting_on_us_gets_no_draft(
    rt: Runtime, fake: FakeLeadterra, status: str
) -> None:
    note = make_note()
    note["thread"]["status"] = status
    with capture_logs() as logs:
        assert draft_for(rt, note) is None
    assert fake.calls == []
    [skipped] = events(logs, "draft.skipped")
    assert skipped["reason"] == f"thread status {status}: a draft could not be sent"


@pytest.mark.parametrize("status", ["awaiting_reply", "needs_followup"])
def test_a_thread_waiting_on_us_gets_a_draft(rt: Runtime, status: str) -> None:
    note = make_note()
    note["thread"]["status"] = status
    assert draft_for(rt, note) is not None


# -- once per (follow-up, due time) -----------------------------------------------------------


def test_a_second_call_reuses_the_draft_without_generating(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    first = draft_for(rt, make_note())
    with capture_logs() as logs:
        second = draft_for(rt, make_note())
    assert second == first
    assert len(fake.to(GENERATE)) == 1
    assert events(logs, "draft.reused")[0]["draft_id"] == "draft_1"
    assert drafts(rt, "generated") == 1
    assert daily(rt) == 1


def test_another_due_time_gets_its_own_draft(rt: Runtime, fake: FakeLeadterra) -> None:
    draft_for(rt, make_note())
    note = make_note()
    note["followup"]["dueAt"] = "2026-07-01T09:00:00.000Z"
    fake.answers[GENERATE] = lambda request: answer("draft_2")
    record = draft_for(rt, note)
    assert record is not None and record.draft_id == "draft_2"
    assert len(fake.to(GENERATE)) == 2


def test_two_concurrent_calls_generate_once(rt: Runtime, fake: FakeLeadterra) -> None:
    """The first holds the lock while Leadterra is slow; the second waits and gets its record."""
    entered, release = threading.Event(), threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        release.wait(5)
        return answer()

    fake.answers[GENERATE] = slow
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(draft_for(rt, make_note())))
    first.start()
    assert entered.wait(5)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    with capture_logs() as logs:
        second = draft_for(rt, make_note())
    first.join(5)
    timer.join()
    assert second is not None and results == [second]
    assert len(fake.to(GENERATE)) == 1
    assert events(logs, "draft.reused")[0]["reason"] == "waited"


def test_a_held_lock_without_a_record_ends_at_the_task_budget(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    rt.redis.set(rt.keys.draft_generating("fu_1", DUE), "someone-else", ex=60)
    started = time.monotonic()
    with capture_logs() as logs, budget.deadline_in(1.5):
        assert draft_for(rt, make_note()) is None
    waited = time.monotonic() - started
    assert 0.3 < waited < 1.2  # a second of the budget is kept back to notify
    assert fake.calls == []
    [skipped] = events(logs, "draft.skipped")
    assert "still generating" in skipped["reason"]
    assert rt.redis.get(rt.keys.draft_generating("fu_1", DUE)) == b"someone-else"


def test_a_lock_let_go_without_a_record_stops_the_wait(rt: Runtime, fake: FakeLeadterra) -> None:
    lock = rt.keys.draft_generating("fu_1", DUE)
    rt.redis.set(lock, "someone-else", ex=60)
    threading.Timer(0.2, rt.redis.delete, args=(lock,)).start()
    started = time.monotonic()
    with capture_logs() as logs:
        assert draft_for(rt, make_note()) is None
    assert time.monotonic() - started < 2
    assert events(logs, "draft.skipped")[0]["reason"] == (
        "another task's generate ended without a draft"
    )
    assert fake.calls == []


def test_the_lock_expires_after_the_timeout_and_the_rate_wait(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    seen: list[int] = []

    def look(request: httpx.Request) -> httpx.Response:
        seen.append(int(rt.redis.ttl(rt.keys.draft_generating("fu_1", DUE))))
        return answer()

    fake.answers[GENERATE] = look
    draft_for(rt, make_note())
    # 5 s draft timeout + 15 s rate wait (VISIBILITY_TIMEOUT 60 / 4) + 5 s margin
    assert 20 < seen[0] <= 25


# -- the daily cap ----------------------------------------------------------------------------


def test_past_the_daily_cap_no_draft_is_generated(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(followup_drafts_daily_cap=1)
    assert draft_for(rt, make_note("fu_1")) is not None
    with capture_logs() as logs:
        assert draft_for(rt, make_note("fu_2")) is None
    assert len(fake.to(GENERATE)) == 1
    [skipped] = events(logs, "draft.skipped")
    assert (skipped["reason"], skipped["followup_id"]) == ("daily cap", "fu_2")
    assert drafts(rt, "capped") == 1
    assert daily(rt) == 1
    assert not rt.redis.exists(rt.keys.draft_generating("fu_2", DUE))


def test_a_cap_of_zero_means_no_drafts(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(followup_drafts_daily_cap=0)
    assert draft_for(rt, make_note()) is None
    assert fake.calls == []
    assert drafts(rt, "capped") == 1
    assert daily(rt) == 0


def test_the_days_counter_expires_after_two_days(rt: Runtime) -> None:
    draft_for(rt, make_note())
    key = rt.keys.drafts_daily(datetime.now(UTC).strftime("%Y-%m-%d"))
    assert DAILY_TTL_SECONDS - 60 < rt.redis.ttl(key) <= DAILY_TTL_SECONDS == 2 * 24 * 3600


def test_racing_calls_never_pass_the_cap(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(followup_drafts_daily_cap=3)
    notes = [make_note(f"fu_{n}") for n in range(8)]
    threads = [threading.Thread(target=draft_for, args=(rt, note)) for note in notes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(fake.to(GENERATE)) == 3
    assert daily(rt) == 3
    assert drafts(rt, "capped") == 5


# -- failures ---------------------------------------------------------------------------------


def test_an_error_answer_means_no_draft_and_gives_the_slot_back(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    fake.answers[GENERATE] = httpx.Response(503)
    with capture_logs() as logs:
        assert draft_for(rt, make_note()) is None
    [failed] = events(logs, "draft.failed")
    assert failed["log_level"] == "warning"
    assert (failed["error_type"], failed["status"]) == ("ServerError", 503)
    assert (failed["followup_id"], failed["sdr_id"]) == ("fu_1", "sdr_1")
    assert failed["duration_ms"] >= 0
    assert drafts(rt, "failed") == 1
    assert daily(rt) == 0
    assert not rt.redis.exists(rt.keys.draft_generating("fu_1", DUE))
    assert DraftStore(rt.redis, rt.keys).for_followup("fu_1", DUE) is None


def test_after_a_failure_the_next_try_generates(rt: Runtime, fake: FakeLeadterra) -> None:
    fake.answers[GENERATE] = httpx.Response(500)
    assert draft_for(rt, make_note()) is None
    fake.answers[GENERATE] = lambda request: answer()
    assert draft_for(rt, make_note()) is not None
    assert len(fake.to(GENERATE)) == 2


def test_a_timeout_means_no_draft_and_keeps_the_slot(rt: Runtime, fake: FakeLeadterra) -> None:
    """The generate may have run: its credits count against the cap."""
    fake.answers[GENERATE] = httpx.ReadTimeout("read timed out")
    with capture_logs() as logs:
        assert draft_for(rt, make_note()) is None
    [failed] = events(logs, "draft.failed")
    assert failed["error_type"] == "TransportFailure"
    assert failed["reason"] == "generate timed out or its connection failed"
    assert daily(rt) == 1
    assert not rt.redis.exists(rt.keys.draft_generating("fu_1", DUE))


def test_a_spent_task_budget_means_no_draft(rt: Runtime, fake: FakeLeadterra) -> None:
    with capture_logs() as logs, budget.deadline_in(0):
        assert draft_for(rt, make_note()) is None
    assert fake.calls == []
    assert events(logs, "draft.failed")[0]["error_type"] == "OutOfTime"


def test_an_unexpected_error_means_no_draft_and_its_message_is_scrubbed(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("boom with sk_sdr_one_123 inside")

    fake.answers[GENERATE] = broken
    with capture_logs() as logs:
        assert draft_for(rt, make_note()) is None
    [failed] = events(logs, "draft.failed")
    assert (failed["error_type"], failed["reason"]) == ("RuntimeError", "unexpected error")
    assert "sk_sdr_one_123" not in failed["error"]
    assert drafts(rt, "failed") == 1


def test_an_answer_without_drafts_means_no_draft(rt: Runtime, fake: FakeLeadterra) -> None:
    fake.answers[GENERATE] = httpx.Response(200, json={"data": {"drafts": []}})
    with capture_logs() as logs:
        assert draft_for(rt, make_note()) is None
    assert events(logs, "draft.failed")[0]["error_type"] == "UnexpectedAnswer"


def test_a_reused_draft_whose_link_expired_gets_a_fresh_link_not_a_new_draft(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    first = draft_for(rt, make_note())
    assert first is not None
    store = DraftStore(rt.redis, rt.keys)
    store.save(replace(first, expires_at=int(time.time()) - 1))
    with capture_logs() as logs:
        again = draft_for(rt, make_note())
    assert again is not None and again.draft_id == "draft_1"
    assert again.expires_at > time.time() + 3600
    claims = verify_link(
        ACTION_SECRET, dict(parse_qsl(urlsplit(again.send_url).query)), int(time.time())
    )
    assert (claims.draft_id, claims.expires_at) == ("draft_1", again.expires_at)
    assert store.for_followup("fu_1", DUE) == again
    assert events(logs, "draft.reused")[0]["link_refreshed"] is True
    assert len(fake.to(GENERATE)) == 1
