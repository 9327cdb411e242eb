"""The sandbox's rules, exercised by calling the state and actions directly."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from leadterra_sandbox import actions
from leadterra_sandbox.calls import CallLog
from leadterra_sandbox.clock import iso_ms, parse_iso
from leadterra_sandbox.errors import ApiError
from leadterra_sandbox.seeding import allocate, seed_followups, seed_replies, seed_threads
from leadterra_sandbox.world import World

SKIP = {"sdrId": "sdr_1", "category": "A", "skipIcpCheck": True}


def _error(fn: Callable[..., Any], *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        fn(*args)
    return caught.value


def test_assign_records_a_handoff_a_thread_and_a_first_followup(world: World) -> None:
    state = world.state
    seed_replies(state, {"replies": [{"id": "rpl_1", "email": "jane.doe@acme.com"}]})
    handoff = actions.assign(state, "rpl_1", SKIP)
    thread = state.threads[handoff.thread_id]
    followup = state.followups[handoff.followup_id]
    assert state.replies["rpl_1"].forwarded is True
    assert (thread.sdr_id, thread.status, thread.contact_email) == (
        "sdr_1",
        "new",
        "jane.doe@acme.com",
    )
    assert thread.contact_name == "Jane Doe" and thread.subject == "Re: Quick question"
    assert followup.status == "pending"
    assert followup.due_at == pytest.approx(thread.created_at + 3600.0)
    assert state.handoffs_by_reply == {"rpl_1": 1}


def test_a_second_assign_is_409_unless_forced_and_forcing_adds_a_second_handoff(
    world: World,
) -> None:
    state = world.state
    seed_replies(state, {"replies": [{"id": "rpl_1"}]})
    actions.assign(state, "rpl_1", SKIP)
    assert _error(actions.assign, state, "rpl_1", SKIP).code == "already_forwarded"
    second = actions.assign(state, "rpl_1", {**SKIP, "sdrId": "sdr_2", "forceForward": True})
    assert second.forced is True and second.sdr_id == "sdr_2"
    assert state.handoffs_by_reply["rpl_1"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "invalid_request"),
        ({"sdrId": "sdr_1", "category": "D", "skipIcpCheck": True}, 422, "invalid_request"),
        ({"sdrId": "sdr_404", "skipIcpCheck": True}, 404, "sdr_not_found"),
        ({"sdrId": "sdr_6", "skipIcpCheck": True}, 422, "gmail_not_connected"),
        ({"sdrId": "sdr_1"}, 400, "invalid_request"),
        ({"sdrId": "sdr_1", "seniority": "Intern", "employeeCount": "200"}, 400, "icp_failed"),
        ({"sdrId": "sdr_1", "seniority": "VP", "employeeCount": "1-10"}, 400, "icp_failed"),
        ({"sdrId": "sdr_1", "seniority": "VP", "employeeCount": "unknown"}, 400, "icp_failed"),
    ],
)
def test_assign_rejects_bad_calls_with_leadterra_errors(
    world: World, body: dict[str, Any], status: int, code: str
) -> None:
    seed_replies(world.state, {"replies": [{"id": "rpl_1"}]})
    error = _error(actions.assign, world.state, "rpl_1", body)
    assert (error.status, error.code) == (status, code)
    assert world.state.handoffs == []


def test_icp_failure_body_carries_icp_failed_true(world: World) -> None:
    seed_replies(world.state, {"replies": [{"id": "rpl_1", "icpPass": False}]})
    body = {"sdrId": "sdr_1", "seniority": "Director", "employeeCount": "51-200"}
    error = _error(actions.assign, world.state, "rpl_1", body)
    assert error.body()["icpFailed"] is True and error.body()["error"]["code"] == "icp_failed"


def test_a_senior_contact_at_a_large_company_passes_the_icp_rule(world: World) -> None:
    seed_replies(world.state, {"replies": [{"id": "rpl_1"}]})
    body = {"sdrId": "sdr_1", "seniority": "Director", "employeeCount": "1000+"}
    assert actions.assign(world.state, "rpl_1", body).reply_id == "rpl_1"


def test_unknown_reply_is_404_reply_not_found(world: World) -> None:
    assert _error(actions.assign, world.state, "rpl_nope", SKIP).code == "reply_not_found"


def test_due_lists_pending_followups_by_due_time_then_id_up_to_now(world: World) -> None:
    state = world.state
    now = state.clock.now()
    seed_followups(
        state,
        {
            "followups": [
                {"id": "fu_b", "sdrId": "sdr_1", "dueAt": now - 10},
                {"id": "fu_a", "sdrId": "sdr_1", "dueAt": now - 10},
                {"id": "fu_c", "sdrId": "sdr_1", "dueAt": now - 100},
                {"id": "fu_later", "sdrId": "sdr_1", "dueAt": now + 100},
                {"id": "fu_done", "sdrId": "sdr_1", "dueAt": now - 500, "status": "completed"},
                {"id": "fu_other", "sdrId": "sdr_2", "dueAt": now - 500},
            ]
        },
        random.Random(1),
    )
    assert [f.id for f in state.due("sdr_1", 50)] == ["fu_c", "fu_a", "fu_b"]
    assert [f.id for f in state.due("sdr_1", 2)] == ["fu_c", "fu_a"]
    assert [f.id for f in state.due("sdr_1", 50, include_upcoming=True)][-1] == "fu_later"


def test_advancing_the_clock_makes_later_followups_due(world: World) -> None:
    state = world.state
    seed_followups(
        state,
        {"followups": [{"id": "fu_1", "sdrId": "sdr_1", "dueAt": state.clock.now() + 7200}]},
        random.Random(1),
    )
    assert state.due("sdr_1", 50) == []
    world.clock.advance(7201)
    assert [f.id for f in state.due("sdr_1", 50)] == ["fu_1"]


def test_complete_skip_and_reschedule_change_state_and_leave_the_due_list(world: World) -> None:
    state = world.state
    now = state.clock.now()
    specs = [{"id": f"fu_{n}", "sdrId": "sdr_1", "dueAt": now - n} for n in (1, 2, 3)]
    seed_followups(state, {"followups": specs}, random.Random(1))
    assert actions.complete(state, "sdr_1", "fu_1").status == "completed"
    assert actions.skip(state, "sdr_1", "fu_2", {"reason": "bounced"}).reason == "bounced"
    moved = actions.reschedule(state, "sdr_1", "fu_3", {"dueAt": iso_ms(now + 86400)})
    assert moved.status == "pending" and moved.due_at == pytest.approx(now + 86400, abs=0.001)
    assert moved.reschedules[0]["toDueAt"] == iso_ms(now + 86400)
    assert state.due("sdr_1", 50) == []
    assert [f.id for f in state.due("sdr_1", 50, include_upcoming=True)] == ["fu_3"]


def test_acting_on_a_closed_followup_is_409_and_on_another_sdrs_is_404(world: World) -> None:
    state = world.state
    seed_followups(state, {"followups": [{"id": "fu_1", "sdrId": "sdr_1"}]}, random.Random(1))
    actions.complete(state, "sdr_1", "fu_1")
    assert _error(actions.complete, state, "sdr_1", "fu_1").code == "followup_not_pending"
    assert _error(actions.skip, state, "sdr_1", "fu_1", {}).status == 409
    assert _error(actions.complete, state, "sdr_2", "fu_1").code == "followup_not_found"
    assert _error(actions.complete, state, "sdr_1", "fu_missing").status == 404


def test_reschedule_without_a_parseable_due_at_is_400(world: World) -> None:
    state = world.state
    seed_followups(state, {"followups": [{"id": "fu_1", "sdrId": "sdr_1"}]}, random.Random(1))
    assert _error(actions.reschedule, state, "sdr_1", "fu_1", {}).status == 400
    assert _error(actions.reschedule, state, "sdr_1", "fu_1", {"dueAt": "soon"}).status == 400


def test_schedule_uses_the_rule_delay_when_due_at_is_omitted(world: World) -> None:
    state = world.state
    [thread] = seed_threads(state, {"threads": [{"id": "thr_1", "sdrId": "sdr_1"}]})
    ruled = actions.schedule(state, "sdr_1", "thr_1", {})
    given = actions.schedule(state, "sdr_1", "thr_1", {"dueAt": "2030-01-02T03:04:05.678Z"})
    assert ruled.due_at == pytest.approx(state.clock.now() + 3600.0, abs=1.0)
    assert iso_ms(given.due_at) == "2030-01-02T03:04:05.678Z"
    assert _error(actions.schedule, state, "sdr_1", "thr_nope", {}).code == "thread_not_found"


def test_bulk_followups_spread_due_times_and_split_statuses_exactly(world: World) -> None:
    state = world.state
    body = {
        "perSdr": 10,
        "sdrIds": ["sdr_1", "sdr_2"],
        "statuses": {"pending": 7, "skipped": 3},
        "dueFromSeconds": -900,
        "dueToSeconds": 900,
    }
    made = seed_followups(state, body, random.Random(3))
    assert len(made) == 20 and len(state.threads) == 20
    mine = [f for f in made if f.sdr_id == "sdr_1"]
    assert sum(f.status == "pending" for f in mine) == 7
    spread = sorted(f.due_at for f in mine)
    assert spread[-1] - spread[0] == pytest.approx(1800)


def test_allocate_gives_exact_shares_for_any_label() -> None:
    labels = allocate({"interested": 2, "bounce": 1, "mystery_label": 1}, 100, random.Random(0))
    assert (labels.count("interested"), labels.count("bounce"), labels.count("mystery_label")) == (
        50,
        25,
        25,
    )


def test_inbox_filters_searches_and_orders_threads(world: World) -> None:
    state = world.state
    seed_threads(
        state,
        {
            "threads": [
                {
                    "id": "t1",
                    "sdrId": "sdr_1",
                    "status": "new",
                    "category": "A",
                    "priorityScore": 10,
                    "contactEmail": "ann@acme.com",
                },
                {
                    "id": "t2",
                    "sdrId": "sdr_1",
                    "status": "replied",
                    "category": "B",
                    "priorityScore": 90,
                    "contactEmail": "bob@globex.com",
                },
                {
                    "id": "t3",
                    "sdrId": "sdr_1",
                    "status": "won",
                    "category": "A",
                    "priorityScore": 50,
                    "subject": "Re: Acme pricing",
                },
                {"id": "t4", "sdrId": "sdr_2", "status": "new"},
            ]
        },
    )
    assert [t.id for t in state.inbox("sdr_1")] == ["t2", "t3", "t1"]
    assert [t.id for t in state.inbox("sdr_1", statuses=frozenset({"new", "won"}))] == ["t3", "t1"]
    assert [t.id for t in state.inbox("sdr_1", category="A")] == ["t3", "t1"]
    assert [t.id for t in state.inbox("sdr_1", search="ACME")] == ["t3", "t1"]


def test_the_call_log_reads_back_after_a_sequence_number_and_forgets_the_oldest() -> None:
    log = CallLog(capacity=10)
    for n in range(30):
        log.record(float(n), "GET", "/v1/sdrs", "", "GET /v1/sdrs", "workspace", 200, None, None)
    assert [c.seq for c in log.since(25)] == [26, 27, 28, 29, 30]
    assert len(log.calls) <= 11 and log.summary()["byEndpoint"]["GET /v1/sdrs"] == {"200": 30}


def test_timestamps_parse_with_or_without_milliseconds() -> None:
    assert parse_iso("2025-06-11T09:14:32Z") == parse_iso("2025-06-11T09:14:32.000Z")
    assert iso_ms(parse_iso("2026-06-29T14:00:00.123Z") or 0) == "2026-06-29T14:00:00.123Z"
    assert parse_iso("not a time") is None
