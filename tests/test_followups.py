"""worker/followups/poll.py against fakeredis and a per-SDR fake Leadterra behind
httpx.MockTransport."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.conftest import API_KEY, make_settings
from tests.support.fake_leadterra import DUE_PATH, INBOX_PATH, FakeLeadterra
from worker import errors
from worker.followups.poll import (
    PollResult,
    claim,
    note_for,
    poll,
    route,
    sdr_scopes,
    terminal_reason,
)
from worker.leadterra.models import FollowUp, Thread
from worker.runtime import Runtime

SDR_KEYS = {"sdr_1": "sk_sdr_one_123", "sdr_2": "sk_sdr_two_456"}
PARIS = {"timezone": "Europe/Paris", "days": "mon-fri", "start": "09:00", "end": "17:00"}
DUE = "2026-06-29T14:00:00Z"
SATURDAY = "2030-06-01T10:00:00.000Z"  # 12:00 in Paris
MONDAY_NINE_PARIS = "2030-06-03T07:00:00.000Z"
MONDAY_TEN_PARIS = "2030-06-03T08:00:00.000Z"


def followup(fid: str, thread_id: str | None, sdr: str, due: str = DUE) -> dict[str, Any]:
    return {"id": fid, "threadId": thread_id, "sdrId": sdr, "status": "pending", "dueAt": due}


def thread(tid: str, status: str = "needs_followup") -> dict[str, Any]:
    return {
        "id": tid,
        "contactEmail": f"{tid}@acme.io",
        "contactName": f"Contact {tid}",
        "subject": f"Re: {tid}",
        "status": status,
        "category": "A",
        "priorityScore": 85,
    }


@pytest.fixture
def fake() -> FakeLeadterra:
    return FakeLeadterra(
        sdr_keys=SDR_KEYS,
        due={
            "sdr_1": [followup("fu_1", "thr_1", "sdr_1"), followup("fu_2", "thr_2", "sdr_1")],
            "sdr_2": [followup("fu_3", "thr_3", "sdr_2")],
        },
        inbox={
            "sdr_1": [thread("thr_1"), thread("thr_2", "new"), thread("thr_9")],
            "sdr_2": [thread("thr_3", "awaiting_reply")],
        },
    )


@pytest.fixture
def make_rt(fake_redis, fake: FakeLeadterra) -> Callable[..., Runtime]:
    def make(**overrides: Any) -> Runtime:
        settings = make_settings(**{"leadterra_sdr_api_keys": SDR_KEYS, **overrides})
        return Runtime(settings, client=fake_redis, leadterra=fake.client())

    return make


@pytest.fixture
def rt(make_rt: Callable[..., Runtime]) -> Runtime:
    return make_rt()


class FanOut(list[dict[str, Any]]):
    """The fan-out callback: remembers every note it was handed."""

    def __call__(self, note: dict[str, Any]) -> None:
        self.append(note)

    def ids(self) -> list[str]:
        return [note["followup"]["id"] for note in self]

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {note["followup"]["id"]: note for note in self}


def expected_note(item: dict[str, Any], thr: dict[str, Any] | None, sdr: str | None) -> dict:
    due = item["dueAt"].replace("Z", ".000Z") if "." not in item["dueAt"] else item["dueAt"]
    return {
        "followup": {**item, "dueAt": due},
        "thread": {**thr, "priorityScore": float(thr["priorityScore"])} if thr else None,
        "sdr": sdr,
    }


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def decisions(rt: Runtime, decision: str) -> float:
    value = rt.metrics.registry.get_sample_value(
        "leadrouter_followups_total", {"decision": decision}
    )
    return value or 0.0


# -- poll: fan-out ----------------------------------------------------------------------------


def test_poll_fans_out_one_note_per_due_followup_with_its_thread(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    """SDRs are polled in parallel, so notes are compared by follow-up id, not by position."""
    fan_out = FanOut()
    result = poll(rt, fan_out)
    due, inbox = fake.due, fake.inbox
    assert fan_out.by_id() == {
        "fu_1": expected_note(due["sdr_1"][0], inbox["sdr_1"][0], "sdr_1"),
        "fu_2": expected_note(due["sdr_1"][1], inbox["sdr_1"][1], "sdr_1"),
        "fu_3": expected_note(due["sdr_2"][0], inbox["sdr_2"][0], "sdr_2"),
    }
    assert len(fan_out) == 3
    assert result == PollResult(polled=2, due=3, claimed=3)


def test_note_for_has_the_documented_shape() -> None:
    item = FollowUp.model_validate(followup("fu_1", "thr_1", "sdr_1", "2026-06-29T14:00:00Z"))
    thr = Thread.model_validate({**thread("thr_1"), "lastMessageAt": "2026-06-28T18:00:00Z"})
    note = note_for(item, thr, "sdr_1")
    assert note == {
        "followup": {
            "id": "fu_1",
            "threadId": "thr_1",
            "sdrId": "sdr_1",
            "status": "pending",
            "dueAt": "2026-06-29T14:00:00.000Z",
        },
        "thread": {
            "id": "thr_1",
            "contactEmail": "thr_1@acme.io",
            "contactName": "Contact thr_1",
            "subject": "Re: thr_1",
            "status": "needs_followup",
            "category": "A",
            "priorityScore": 85.0,
            "lastMessageAt": "2026-06-28T18:00:00Z",
        },
        "sdr": "sdr_1",
    }
    assert json.loads(json.dumps(note)) == note


def test_each_sdr_is_polled_with_its_own_key(rt: Runtime, fake: FakeLeadterra) -> None:
    poll(rt, FanOut())
    assert sorted((c.sdr, c.authorization) for c in fake.to(DUE_PATH)) == [
        ("sdr_1", "Bearer sk_sdr_one_123"),
        ("sdr_2", "Bearer sk_sdr_two_456"),
    ]
    assert sorted(c.sdr for c in fake.to(INBOX_PATH)) == ["sdr_1", "sdr_2"]
    assert all(c.sdr is not None for c in fake.calls)


def test_sdr_scopes_are_the_mapped_sdrs_sorted_or_the_main_key(make_rt) -> None:
    assert sdr_scopes(make_rt(leadterra_sdr_api_keys={"b": "sk_b_123456", "a": "sk_a_123456"})) == [
        "a",
        "b",
    ]
    assert sdr_scopes(make_rt(leadterra_sdr_api_keys={})) == [None]


def test_without_a_key_map_poll_runs_once_with_the_main_key(make_rt, fake: FakeLeadterra) -> None:
    fake.due[None] = [followup("fu_9", "thr_9", "sdr_1")]
    fake.inbox[None] = [thread("thr_9")]
    fan_out = FanOut()
    result = poll(make_rt(leadterra_sdr_api_keys={}), fan_out)
    assert [(c.sdr, c.authorization) for c in fake.to(DUE_PATH)] == [(None, f"Bearer {API_KEY}")]
    assert fan_out == [expected_note(fake.due[None][0], fake.inbox[None][0], None)]
    assert result == PollResult(polled=1, due=1, claimed=1)


def test_a_followup_whose_thread_is_not_in_the_inbox_fans_out_without_thread(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    fake.due = {"sdr_1": [followup("fu_1", "thr_gone", "sdr_1"), followup("fu_2", None, "sdr_1")]}
    fan_out = FanOut()
    poll(rt, fan_out)
    assert [note["thread"] for note in fan_out] == [None, None]
    assert fan_out.ids() == ["fu_1", "fu_2"]


def test_a_thread_on_a_later_inbox_page_is_joined(rt: Runtime, fake: FakeLeadterra) -> None:
    fake.inbox["sdr_1"] = [thread(f"thr_x{n}") for n in range(150)] + [thread("thr_1")]
    fake.due = {"sdr_1": [followup("fu_1", "thr_1", "sdr_1")]}
    fan_out = FanOut()
    poll(rt, fan_out)
    assert fan_out[0]["thread"]["id"] == "thr_1"
    assert [c.params.get("offset") for c in fake.to(INBOX_PATH)] == [None, "100"]


# -- poll: inbox reads ------------------------------------------------------------------------


def test_the_inbox_is_read_once_per_sdr_per_poll(rt: Runtime, fake: FakeLeadterra) -> None:
    fake.due["sdr_1"] = [followup(f"fu_a{n}", "thr_1", "sdr_1") for n in range(10)]
    fan_out = FanOut()
    poll(rt, fan_out)
    assert len(fan_out) == 11
    assert sorted(c.sdr for c in fake.to(INBOX_PATH)) == ["sdr_1", "sdr_2"]


def test_the_inbox_is_not_read_when_nothing_new_was_claimed(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    poll(rt, FanOut())
    fake.calls.clear()
    poll(rt, FanOut())
    assert len(fake.to(DUE_PATH)) == 2
    assert fake.to(INBOX_PATH) == []


def test_the_inbox_is_not_read_for_an_sdr_with_nothing_due(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    fake.due["sdr_2"] = []
    poll(rt, FanOut())
    assert [c.sdr for c in fake.to(INBOX_PATH)] == ["sdr_1"]


def test_only_the_sdr_with_a_new_followup_reads_its_inbox(rt: Runtime, fake: FakeLeadterra) -> None:
    poll(rt, FanOut())
    fake.calls.clear()
    fake.due["sdr_2"].append(followup("fu_4", "thr_3", "sdr_2"))
    fan_out = FanOut()
    poll(rt, fan_out)
    assert fan_out.ids() == ["fu_4"]
    assert [c.sdr for c in fake.to(INBOX_PATH)] == ["sdr_2"]


# -- poll: claims -----------------------------------------------------------------------------


def test_a_second_poll_of_the_same_due_list_fans_out_nothing(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    poll(rt, FanOut())
    fan_out = FanOut()
    result = poll(rt, fan_out)
    assert fan_out == []
    assert result == PollResult(polled=2, due=3, claimed=0)


def test_a_rescheduled_followup_is_fanned_out_again_at_its_new_time(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    poll(rt, FanOut())
    fake.due["sdr_1"][0]["dueAt"] = "2026-06-30T09:00:00.000Z"
    fan_out = FanOut()
    result = poll(rt, fan_out)
    assert fan_out.ids() == ["fu_1"]
    assert fan_out[0]["followup"]["dueAt"] == "2026-06-30T09:00:00.000Z"
    assert fan_out[0]["thread"]["id"] == "thr_1"
    assert result.claimed == 1


def test_the_same_due_time_written_differently_is_one_claim(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    poll(rt, FanOut())
    fake.due["sdr_1"][0]["dueAt"] = "2026-06-29T16:00:00.000+02:00"  # == 14:00Z
    fan_out = FanOut()
    poll(rt, fan_out)
    assert fan_out == []


def test_claim_takes_each_id_and_due_time_once(rt: Runtime) -> None:
    items = [
        FollowUp.model_validate(followup("fu_1", "thr_1", "sdr_1")),
        FollowUp.model_validate(followup("fu_2", "thr_2", "sdr_1")),
    ]
    moved = FollowUp.model_validate(followup("fu_1", "thr_1", "sdr_1", "2026-07-01T09:00:00Z"))
    assert [i.id for i in claim(rt, items)] == ["fu_1", "fu_2"]
    assert claim(rt, items) == []
    assert claim(rt, [moved, *items]) == [moved]
    assert claim(rt, []) == []


def test_claims_expire_after_thirty_days(rt: Runtime, fake_redis) -> None:
    item = FollowUp.model_validate(followup("fu_1", "thr_1", "sdr_1"))
    claim(rt, [item])
    ttl = fake_redis.ttl(rt.keys.followup_claim("fu_1", "2026-06-29T14:00:00.000Z"))
    assert 29 * 24 * 3600 < ttl <= 30 * 24 * 3600


@pytest.mark.parametrize("limit", [200, 50, 1])
def test_the_due_list_is_requested_with_the_configured_limit(
    make_rt, fake: FakeLeadterra, limit: int
) -> None:
    poll(make_rt(followup_limit=limit), FanOut())
    assert [c.params for c in fake.to(DUE_PATH)] == [{"limit": str(limit)}] * 2


def test_the_default_limit_is_the_apis_maximum(rt: Runtime, fake: FakeLeadterra) -> None:
    poll(rt, FanOut())
    assert {c.params["limit"] for c in fake.to(DUE_PATH)} == {"200"}


# -- poll: backlog ----------------------------------------------------------------------------


def test_a_full_page_of_claimed_followups_logs_backlog_saturated(
    make_rt, fake: FakeLeadterra
) -> None:
    rt = make_rt(followup_limit=2)
    with capture_logs() as first:
        poll(rt, FanOut())
    with capture_logs() as second:
        poll(rt, FanOut())
    assert events(first, "followups.backlog_saturated") == []
    [warning] = events(second, "followups.backlog_saturated")
    assert warning["log_level"] == "warning"
    assert {k: warning[k] for k in ("sdr_id", "due", "limit", "claimed")} == {
        "sdr_id": "sdr_1",
        "due": 2,
        "limit": 2,
        "claimed": 0,
    }


def test_a_partial_page_of_claimed_followups_is_no_backlog(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(followup_limit=3)
    poll(rt, FanOut())
    with capture_logs() as logs:
        poll(rt, FanOut())
    assert events(logs, "followups.backlog_saturated") == []
    assert events(logs, "followups.polled")[0]["claimed"] == 0


def test_a_full_page_with_something_new_is_no_backlog(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(followup_limit=2)
    poll(rt, FanOut())
    fake.due["sdr_1"][1]["dueAt"] = "2026-06-30T09:00:00.000Z"
    with capture_logs() as logs:
        poll(rt, FanOut())
    assert events(logs, "followups.backlog_saturated") == []


def test_poll_logs_its_counts(rt: Runtime) -> None:
    with capture_logs() as logs:
        poll(rt, FanOut())
    [polled] = events(logs, "followups.polled")
    assert {k: polled[k] for k in ("sdrs", "due", "claimed")} == {"sdrs": 2, "due": 3, "claimed": 3}
    assert polled["duration_ms"] >= 0


# -- poll: single flight ----------------------------------------------------------------------


def test_poll_is_skipped_while_another_holder_has_the_lock(
    rt: Runtime, fake: FakeLeadterra, fake_redis
) -> None:
    lock = fake_redis.lock(rt.keys.poll_lock, timeout=60)
    assert lock.acquire(blocking=False)
    fan_out = FanOut()
    with capture_logs() as logs:
        result = poll(rt, fan_out)
    assert result == PollResult(0, 0, 0, skipped_lock=True)
    assert fake.calls == []
    assert fan_out == []
    assert [e["event"] for e in logs] == ["followups.poll_skipped"]
    lock.release()
    assert poll(rt, fan_out).skipped_lock is False
    assert len(fan_out) == 3


def test_poll_releases_its_lock(rt: Runtime, fake_redis) -> None:
    poll(rt, FanOut())
    assert fake_redis.exists(rt.keys.poll_lock) == 0


def test_poll_releases_its_lock_when_fan_out_fails(rt: Runtime, fake_redis) -> None:
    def broken(note: dict[str, Any]) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        poll(rt, broken)
    assert fake_redis.exists(rt.keys.poll_lock) == 0


def test_the_poll_lock_expires_no_sooner_than_two_minutes(rt: Runtime, fake_redis) -> None:
    seen: list[int] = []

    def fan_out(note: dict[str, Any]) -> None:
        seen.append(fake_redis.pttl(rt.keys.poll_lock))

    poll(rt, fan_out)
    assert seen and all(ttl > 110_000 for ttl in seen)


def test_two_racing_polls_never_fan_out_the_same_followup_twice(
    make_rt, fake: FakeLeadterra
) -> None:
    """Whichever poll takes the lock is held in its due calls until the other has returned, so
    the two overlap on every run, whatever the scheduler does."""
    fake.due["sdr_1"] = [followup(f"fu_a{n}", "thr_1", "sdr_1") for n in range(20)]
    one_returned = threading.Event()

    def held_until_one_poll_returned(request: httpx.Request) -> httpx.Response:
        one_returned.wait(timeout=10)
        return fake.documented(request)

    fake.answers[DUE_PATH] = held_until_one_poll_returned
    fan_out = FanOut()
    results: list[PollResult] = []

    def run(rt: Runtime) -> None:
        results.append(poll(rt, fan_out))
        one_returned.set()

    workers = [threading.Thread(target=run, args=(make_rt(),)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)
    assert sorted(r.skipped_lock for r in results) == [False, True]
    assert sorted(fan_out.ids()) == sorted(["fu_3", *(f"fu_a{n}" for n in range(20))])
    assert sum(r.claimed for r in results) == 21


def test_racing_claims_split_the_followups_between_them(rt: Runtime) -> None:
    items = [FollowUp.model_validate(followup(f"fu_{n}", None, "sdr_1")) for n in range(200)]
    start = threading.Barrier(4)
    won: list[list[FollowUp]] = []

    def run() -> None:
        start.wait()
        won.append(claim(rt, items))

    workers = [threading.Thread(target=run) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    ids = [item.id for batch in won for item in batch]
    assert len(won) == 4
    assert sorted(ids) == sorted(item.id for item in items)


# -- poll: failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (httpx.Response(503), "ServerError"),
        (httpx.Response(429, headers={"Retry-After": "2"}), "RateLimited"),
        (httpx.Response(401), "AuthError"),
        (httpx.Response(200, json={"data": [{"id": "fu_bad"}]}), "UnexpectedAnswer"),
    ],
)
def test_one_sdrs_failing_due_call_is_logged_and_the_others_are_polled(
    rt: Runtime, fake: FakeLeadterra, answer: httpx.Response, error_type: str
) -> None:
    fake.answers = {("sdr_1", DUE_PATH): answer}
    fan_out = FanOut()
    with capture_logs() as logs:
        result = poll(rt, fan_out)
    [failed] = events(logs, "followups.poll_failed")
    assert failed["log_level"] == "error"
    assert failed["sdr_id"] == "sdr_1"
    assert failed["error_type"] == error_type
    assert "sk_sdr_one_123" not in repr(logs)
    assert fan_out.ids() == ["fu_3"]
    assert [c.sdr for c in fake.to(INBOX_PATH)] == ["sdr_2"]
    assert result == PollResult(polled=1, due=1, claimed=1)


def test_a_failed_sdr_is_fanned_out_once_it_recovers(rt: Runtime, fake: FakeLeadterra) -> None:
    fake.answers = {("sdr_1", DUE_PATH): httpx.Response(503)}
    poll(rt, FanOut())
    fake.answers = {}
    fan_out = FanOut()
    poll(rt, fan_out)
    assert fan_out.ids() == ["fu_1", "fu_2"]


def test_a_failing_inbox_read_loses_no_followup(rt: Runtime, fake: FakeLeadterra) -> None:
    """Claims are taken before the inbox is read: if the read fails, the claimed follow-ups
    must still reach fan-out, now or on a later poll, and the other SDRs must be polled."""
    fake.answers = {("sdr_1", INBOX_PATH): httpx.Response(503)}
    fan_out = FanOut()
    with contextlib.suppress(errors.ServiceError):
        poll(rt, fan_out)
    fake.answers = {}
    poll(rt, fan_out)
    assert sorted(fan_out.ids()) == ["fu_1", "fu_2", "fu_3"]


# -- route ------------------------------------------------------------------------------------


@dataclass
class Notify:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, destination: str, note: dict[str, Any]) -> None:
        self.calls.append((destination, note))


def make_note(
    status: str | None = "needs_followup",
    due: str = MONDAY_TEN_PARIS,
    sdr: str | None = "sdr_1",
    followup_sdr: str = "sdr_1",
) -> dict[str, Any]:
    item = FollowUp.model_validate(followup("fu_1", "thr_1", followup_sdr, due))
    thr = Thread.model_validate(thread("thr_1", status)) if status else None
    return note_for(item, thr, sdr)


TERMINAL = [
    "meeting_booked",
    "won",
    "lost_timing",
    "lost_competitor",
    "lost_not_interested",
    "archived",
]
LIVE = ["new", "awaiting_reply", "needs_followup", "replied", "lost", "snoozed_forever"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("meeting_booked", "thread status meeting_booked"),
        ("lost_timing", "thread status lost_timing"),
        ("needs_followup", None),
        ("lost", None),
        ("Won", None),
        (None, None),
        ("", None),
    ],
)
def test_terminal_reason_matches_the_patterns(status: str | None, reason: str | None) -> None:
    assert terminal_reason(status, ("meeting_booked", "won", "lost_*", "archived")) == reason


def test_the_default_terminal_statuses() -> None:
    assert make_settings().followup_terminal_statuses == (
        "meeting_booked",
        "won",
        "lost_*",
        "archived",
    )


@pytest.mark.parametrize("status", TERMINAL)
def test_a_followup_on_a_closed_thread_is_skipped_with_the_sdrs_key(
    rt: Runtime, fake: FakeLeadterra, status: str
) -> None:
    notify = Notify()
    with capture_logs() as logs:
        decision = route(rt, make_note(status), rt.working_hours, notify, ["webhook"])
    assert decision == "skipped"
    [call] = fake.calls
    assert (call.method, call.path, call.body) == (
        "POST",
        "/v1/sdr/followups/fu_1/skip",
        {"reason": f"thread status {status}"},
    )
    assert call.authorization == "Bearer sk_sdr_one_123"
    [skipped] = events(logs, "followup.skipped")
    assert skipped["reason"] == f"thread status {status}"
    assert (skipped["followup_id"], skipped["sdr_id"], skipped["thread_id"]) == (
        "fu_1",
        "sdr_1",
        "thr_1",
    )
    assert notify.calls == []
    assert decisions(rt, "skipped") == 1


def test_a_closed_thread_is_skipped_even_outside_working_hours(
    make_rt, fake: FakeLeadterra
) -> None:
    rt = make_rt(working_hours={"sdr_1": PARIS})
    decision = route(rt, make_note("won", due=SATURDAY), rt.working_hours, Notify(), [])
    assert decision == "skipped"
    assert [c.path for c in fake.calls] == ["/v1/sdr/followups/fu_1/skip"]


def test_the_terminal_statuses_come_from_settings(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(followup_terminal_statuses="replied,closed_*")
    assert route(rt, make_note("replied"), rt.working_hours, Notify(), []) == "skipped"
    assert route(rt, make_note("closed_lost"), rt.working_hours, Notify(), []) == "skipped"
    assert route(rt, make_note("won"), rt.working_hours, Notify(), []) == "routed"


def test_a_409_on_skip_means_already_closed(rt: Runtime, fake: FakeLeadterra) -> None:
    fake.answers = {("sdr_1", "/v1/sdr/followups/fu_1/skip"): httpx.Response(409)}
    with capture_logs() as logs:
        decision = route(rt, make_note("won"), rt.working_hours, Notify(), [])
    assert decision == "already_closed"
    assert events(logs, "followup.already_closed")[0]["followup_id"] == "fu_1"
    assert events(logs, "followup.skipped") == []
    assert decisions(rt, "skipped") == 0


def test_another_skip_failure_propagates_for_the_retry_policy(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    fake.answers = {("sdr_1", "/v1/sdr/followups/fu_1/skip"): httpx.Response(503)}
    notify = Notify()
    with pytest.raises(errors.ServerError):
        route(rt, make_note("won"), rt.working_hours, notify, ["webhook"])
    assert notify.calls == []
    assert decisions(rt, "skipped") == 0


@pytest.mark.parametrize(
    ("due", "slot"),
    [
        (SATURDAY, MONDAY_NINE_PARIS),
        ("2030-05-31T16:00:00.000Z", MONDAY_NINE_PARIS),  # Friday 18:00 in Paris
        ("2030-06-03T06:59:00.000Z", MONDAY_NINE_PARIS),  # Monday 08:59 in Paris
        ("2030-06-03T15:00:00.000Z", "2030-06-04T07:00:00.000Z"),  # Monday 17:00 in Paris
    ],
)
def test_a_followup_due_outside_working_hours_is_rescheduled_to_the_next_start(
    make_rt, fake: FakeLeadterra, due: str, slot: str
) -> None:
    rt = make_rt(working_hours={"sdr_1": PARIS})
    notify = Notify()
    with capture_logs() as logs:
        decision = route(rt, make_note(due=due), rt.working_hours, notify, ["webhook"])
    assert decision == "rescheduled"
    [call] = fake.calls
    assert (call.method, call.path, call.body) == (
        "POST",
        "/v1/sdr/followups/fu_1/reschedule",
        {"dueAt": slot},
    )
    assert call.authorization == "Bearer sk_sdr_one_123"
    [rescheduled] = events(logs, "followup.rescheduled")
    assert rescheduled["new_due_at"] == slot
    assert rescheduled["timezone"] == "Europe/Paris"
    assert rescheduled["due_at"] == due
    assert notify.calls == []
    assert decisions(rt, "rescheduled") == 1


def test_the_default_working_hours_apply_to_an_sdr_without_its_own(
    make_rt, fake: FakeLeadterra
) -> None:
    rt = make_rt(working_hours={"default": PARIS})
    note = make_note(due=SATURDAY, sdr="sdr_2", followup_sdr="sdr_2")
    assert route(rt, note, rt.working_hours, Notify(), []) == "rescheduled"
    [call] = fake.calls
    assert call.authorization == "Bearer sk_sdr_two_456"
    assert call.body == {"dueAt": MONDAY_NINE_PARIS}


def test_without_a_key_map_route_uses_the_main_key_and_the_followups_sdr_hours(
    make_rt, fake: FakeLeadterra
) -> None:
    rt = make_rt(leadterra_sdr_api_keys={}, working_hours={"sdr_1": PARIS})
    with capture_logs() as logs:
        decision = route(rt, make_note(due=SATURDAY, sdr=None), rt.working_hours, Notify(), [])
    assert decision == "rescheduled"
    [call] = fake.calls
    assert call.authorization == f"Bearer {API_KEY}"
    assert events(logs, "followup.rescheduled")[0]["sdr_id"] == "sdr_1"


def test_a_409_on_reschedule_means_already_closed(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(working_hours={"sdr_1": PARIS})
    fake.answers = {("sdr_1", "/v1/sdr/followups/fu_1/reschedule"): httpx.Response(409)}
    decision = route(rt, make_note(due=SATURDAY), rt.working_hours, Notify(), [])
    assert decision == "already_closed"
    assert decisions(rt, "rescheduled") == 0


@pytest.mark.parametrize("status", LIVE)
def test_a_live_followup_inside_hours_is_notified_to_every_destination(
    make_rt, fake: FakeLeadterra, status: str
) -> None:
    rt = make_rt(working_hours={"sdr_1": PARIS})
    note = make_note(status, due=MONDAY_TEN_PARIS)
    notify = Notify()
    with capture_logs() as logs:
        decision = route(rt, note, rt.working_hours, notify, ["webhook", "slack"])
    assert decision == "routed"
    assert notify.calls == [("webhook", note), ("slack", note)]
    assert fake.calls == []
    [routed] = events(logs, "followup.routed")
    assert routed["destinations"] == ["log", "webhook", "slack"]
    assert routed["thread_status"] == status
    assert (routed["followup_id"], routed["sdr_id"]) == ("fu_1", "sdr_1")
    assert decisions(rt, "routed") == 1


def test_a_followup_without_thread_is_routed(rt: Runtime, fake: FakeLeadterra) -> None:
    note = make_note(status=None)
    assert note["thread"] is None
    notify = Notify()
    with capture_logs() as logs:
        decision = route(rt, note, rt.working_hours, notify, ["webhook"])
    assert decision == "routed"
    assert notify.calls == [("webhook", note)]
    assert events(logs, "followup.routed")[0]["thread_status"] is None


def test_with_no_destination_a_followup_is_routed_to_the_log_only(rt: Runtime) -> None:
    with capture_logs() as logs:
        decision = route(rt, make_note(), rt.working_hours, Notify(), [])
    assert decision == "routed"
    assert events(logs, "followup.routed")[0]["destinations"] == ["log"]


def test_without_working_hours_a_weekend_followup_is_routed(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    notify = Notify()
    assert route(rt, make_note(due=SATURDAY), rt.working_hours, notify, ["slack"]) == "routed"
    assert len(notify.calls) == 1
    assert fake.calls == []


def test_a_failing_destination_propagates_and_counts_nothing(rt: Runtime) -> None:
    def notify(destination: str, note: dict[str, Any]) -> None:
        raise errors.ServerError("notify webhook: 503", status=503)

    with pytest.raises(errors.ServerError):
        route(rt, make_note(), rt.working_hours, notify, ["webhook"])
    assert decisions(rt, "routed") == 0


def test_each_decision_counts_in_the_metrics(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(working_hours={"sdr_1": PARIS})
    hours, notify = rt.working_hours, Notify()
    route(rt, make_note("won"), hours, notify, [])
    route(rt, make_note("archived"), hours, notify, [])
    route(rt, make_note(due=SATURDAY), hours, notify, [])
    route(rt, make_note(), hours, notify, [])
    route(rt, make_note(), hours, notify, [])
    route(rt, make_note(), hours, notify, [])
    assert (decisions(rt, "skipped"), decisions(rt, "rescheduled"), decisions(rt, "routed")) == (
        2,
        1,
        3,
    )


def test_a_followup_due_off_hours_but_routed_during_hours_is_notified_now(
    make_rt, fake: FakeLeadterra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Due Sunday 20:00 in Paris, routed late on Monday 10:00 (a worker back after the weekend):
    the SDR is at work now, so it must not be pushed to Tuesday 09:00."""
    monday_ten = datetime(2030, 6, 3, 8, 0, tzinfo=UTC)

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Clock:  # type: ignore[override]
            return cls.fromtimestamp(monday_ten.timestamp(), tz)

    monkeypatch.setattr("worker.followups.poll.datetime", Clock)
    rt = make_rt(working_hours={"sdr_1": PARIS})
    notify = Notify()
    sunday_evening = "2030-06-02T18:00:00.000Z"
    decision = route(rt, make_note(due=sunday_evening), rt.working_hours, notify, ["webhook"])
    assert [c.body for c in fake.calls] == []  # today: reschedule to 2030-06-04T07:00:00.000Z
    assert decision == "routed"
    assert len(notify.calls) == 1


# -- route: drafts and one-click sends ---------------------------------------------------------

GENERATE = "/v1/sdr/drafts/generate"
DRAFTS = {
    "followup_drafts": True,
    "public_base_url": "https://leadrouter.example.test",
    "action_secret": "action-secret-0123456789-abcdefghij",
    "followup_draft_timeout_seconds": 5,
}


def generated(request: httpx.Request) -> httpx.Response:
    draft = {"id": "draft_1", "subject": "Re: thr_1", "bodyText": "Still keen?"}
    insight = {"draftId": "draft_1", "confidence": 0.9}
    return httpx.Response(200, json={"data": {"drafts": [draft], "insights": [insight]}})


def test_with_drafts_on_every_destination_gets_the_draft(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(**DRAFTS)
    fake.answers[GENERATE] = generated
    note, notify = make_note(), Notify()
    with capture_logs() as logs:
        decision = route(rt, note, rt.working_hours, notify, ["webhook", "slack"])
    assert decision == "routed"
    [(_, sent), (_, also)] = notify.calls
    assert sent is also and "draft" not in note  # the caller's note is left as it was
    assert sent == {**note, "draft": sent["draft"]}
    assert sent["draft"]["id"] == "draft_1" and sent["draft"]["confidence"] == 0.9
    assert sent["draft"]["sendUrl"].startswith("https://leadrouter.example.test/actions/send?")
    [call] = fake.calls
    assert (call.path, call.authorization) == (GENERATE, "Bearer sk_sdr_one_123")
    [routed] = events(logs, "followup.routed")
    assert routed["draft_id"] == "draft_1" and routed["duration_ms"] >= 0


def test_a_rerouted_followup_reuses_its_draft(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(**DRAFTS)
    fake.answers[GENERATE] = generated
    first, second = Notify(), Notify()
    route(rt, make_note(), rt.working_hours, first, ["webhook"])
    route(rt, make_note(), rt.working_hours, second, ["webhook"])
    assert first.calls[0][1]["draft"] == second.calls[0][1]["draft"]
    assert len(fake.to(GENERATE)) == 1


def test_a_failed_draft_still_notifies_without_one(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(**DRAFTS)
    fake.answers[GENERATE] = httpx.Response(503)
    notify = Notify()
    with capture_logs() as logs:
        decision = route(rt, make_note(), rt.working_hours, notify, ["webhook"])
    assert decision == "routed"
    assert notify.calls == [("webhook", make_note())]
    assert events(logs, "draft.failed")[0]["followup_id"] == "fu_1"
    assert events(logs, "followup.routed")[0]["draft_id"] is None


def test_no_draft_is_generated_for_the_log_alone(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(**DRAFTS)
    fake.answers[GENERATE] = generated
    assert route(rt, make_note(), rt.working_hours, Notify(), []) == "routed"
    assert fake.calls == []


def test_no_draft_for_a_skipped_or_rescheduled_followup(make_rt, fake: FakeLeadterra) -> None:
    rt = make_rt(**DRAFTS, working_hours={"sdr_1": PARIS})
    fake.answers[GENERATE] = generated
    route(rt, make_note("won"), rt.working_hours, Notify(), ["webhook"])
    route(rt, make_note(due=SATURDAY), rt.working_hours, Notify(), ["webhook"])
    assert fake.to(GENERATE) == []


@pytest.mark.parametrize(("answer", "outcome"), [(None, "completed"), (409, "not_pending")])
def test_a_followup_whose_draft_was_sent_is_completed_not_notified(
    rt: Runtime, fake: FakeLeadterra, fake_redis, answer: int | None, outcome: str
) -> None:
    fake_redis.set(rt.keys.followup_sent("fu_1"), "draft_1")
    if answer:
        fake.answers[("sdr_1", "/v1/sdr/followups/fu_1/complete")] = httpx.Response(answer)
    notify = Notify()
    with capture_logs() as logs:
        decision = route(rt, make_note("won"), rt.working_hours, notify, ["webhook"])
    assert decision == "completed"
    assert notify.calls == []
    [call] = fake.calls
    assert (call.method, call.path) == ("POST", "/v1/sdr/followups/fu_1/complete")
    assert call.authorization == "Bearer sk_sdr_one_123"
    [done] = events(logs, "followup.completed_after_send")
    assert (done["followup_id"], done["outcome"]) == ("fu_1", outcome)
    assert decisions(rt, "completed") == 1


def test_a_failing_complete_after_send_propagates(rt: Runtime, fake: FakeLeadterra) -> None:
    rt.redis.set(rt.keys.followup_sent("fu_1"), "draft_1")
    fake.answers[("sdr_1", "/v1/sdr/followups/fu_1/complete")] = httpx.Response(503)
    notify = Notify()
    with pytest.raises(errors.ServerError):
        route(rt, make_note(), rt.working_hours, notify, ["webhook"])
    assert notify.calls == []
    assert decisions(rt, "completed") == 0
