"""The SLA watch (worker/sla/watch.py) against the fake Leadterra and fakeredis: the ledger, the
acted-on rule (two complete reads), the reminder and the breach once each, the re-route at most
once per attempt (a claim taken before the call, an unknown outcome escalates), escalation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fakeredis
import httpx
import pytest
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import INBOX_PATH, FakeLeadterra
from worker.routing.assign import assign
from worker.runtime import Runtime
from worker.sla.ledger import ACTED, ESCALATED, OPEN, Handoff
from worker.sla.watch import watch

SDR_KEYS = {"sdr_1": "key-one-0123456789", "sdr_2": "key-two-0123456789"}
SLA = 10.0  # minutes
MIN = 60.0


@pytest.fixture
def fake() -> FakeLeadterra:
    sdrs = [{"id": s, "gmailConnected": True} for s in ("sdr_1", "sdr_2", "sdr_3")]
    return FakeLeadterra(sdrs, sdr_keys=SDR_KEYS, max_calls=200)


@pytest.fixture
def make_rt(fake_redis: fakeredis.FakeRedis, fake: FakeLeadterra) -> Callable[..., Runtime]:
    def build(**overrides: Any) -> Runtime:
        values: dict[str, Any] = {
            "sla_minutes": SLA,
            "leadterra_sdr_api_keys": SDR_KEYS,
            "followup_webhook_url": "https://team.example/hook",
            "sla_escalation_webhook_url": "https://manager.example/hook",
            **overrides,
        }
        return Runtime(make_settings(**values), client=fake_redis, leadterra=fake.client())

    return build


@pytest.fixture
def rt(make_rt: Callable[..., Runtime]) -> Runtime:
    return make_rt()


class Sent:
    """The notifications a check enqueued: (destination, note)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, destination: str, note: dict[str, Any]) -> None:
        self.items.append((destination, note))

    def types(self) -> list[str]:
        return [note["type"] for _, note in self.items]


def hand_off(rt: Runtime, fake: FakeLeadterra, reply_id: str, thread_id: str) -> Handoff:
    """Assign `reply_id` (the rotation picks) with Leadterra opening `thread_id`, listed `new`
    in that SDR's inbox."""
    fake.assigned = {**fake.assigned, "threadId": thread_id}
    assign(rt, {"id": reply_id, "email": f"{reply_id}@acme.io"}, attempt=1, retries=0)
    handoff = rt.ledger.get(reply_id)
    assert handoff is not None
    fake.inbox.setdefault(handoff.current.sdr_id, []).append({"id": thread_id, "status": "new"})
    return handoff


def acts(fake: FakeLeadterra, sdr_id: str, thread_id: str) -> None:
    """The SDR acts on the thread: it is no longer listed as new."""
    fake.inbox[sdr_id] = [t for t in fake.inbox.get(sdr_id, []) if t["id"] != thread_id]


def check(rt: Runtime, sent: Sent, at: float) -> dict[str, int]:
    return dict(watch(rt, sent, now=at).counts)


def test_a_handoff_is_recorded_and_watched_only_with_the_sdrs_key(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(leadterra_sdr_api_keys={"sdr_1": SDR_KEYS["sdr_1"]})
    first = hand_off(rt, fake, "rpl_1", "thr_1")
    second = hand_off(rt, fake, "rpl_2", "thr_2")
    assert (first.current.sdr_id, first.current.thread_id, first.current.attempt) == (
        "sdr_1",
        "thr_1",
        1,
    )
    assert [h.reply_id for h in rt.ledger.watched()] == ["rpl_1"]  # sdr_2 has no key
    assert second.state == "unwatched"
    # a redelivered assign (a duplicate) never resets the record
    assign(rt, {"id": "rpl_1"}, attempt=2, retries=1)
    assert rt.ledger.get("rpl_1") == first


def test_the_reminder_and_the_breach_come_once_each_and_remind_mode_does_not_reroute(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    sent, start = Sent(), handoff.current.at
    assert check(rt, sent, start + 4 * MIN) == {} and sent.items == []
    assert check(rt, sent, start + 5 * MIN) == {"reminded": 1}
    check(rt, sent, start + 6 * MIN)
    with capture_logs() as logs:
        assert check(rt, sent, start + 10 * MIN) == {"breached": 1}
    check(rt, sent, start + 30 * MIN)
    assert sent.types() == ["sla.reminder", "sla.breached", "sla.breached"]  # team + manager
    assert {d for d, n in sent.items if n["type"] == "sla.breached"} == {
        "webhook",
        "escalation_webhook",
    }
    [breached] = [e for e in logs if e["event"] == "sla.breached"]
    assert breached["reply_id"] == "rpl_1" and breached["log_level"] == "warning"
    assert not fake.assigns()[1:]  # only the handoff itself: no re-route in remind mode
    assert rt.ledger.get("rpl_1").state == OPEN  # still watched, for its time to action


def test_a_thread_missed_by_two_complete_reads_is_acted_on_and_never_touched_again(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    sdr, start, sent = handoff.current.sdr_id, handoff.current.at, Sent()
    acts(fake, sdr, "thr_1")
    assert check(rt, sent, start + 1 * MIN) == {}  # one miss decides nothing
    assert rt.ledger.get("rpl_1").current.misses == 1
    assert check(rt, sent, start + 2 * MIN) == {"acted": 1}
    done = rt.ledger.get("rpl_1")
    assert done.state == ACTED and done.current.acted_at == start + 1 * MIN
    assert rt.ledger.watched() == []
    check(rt, sent, start + 60 * MIN)
    assert sent.items == [] and rt.metrics.time_to_action._sum.get() == pytest.approx(60.0)


def test_a_thread_missing_once_then_listed_again_is_still_watched(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    sdr, start = handoff.current.sdr_id, handoff.current.at
    saved = list(fake.inbox[sdr])
    acts(fake, sdr, "thr_1")
    check(rt, Sent(), start + 1 * MIN)
    fake.inbox[sdr] = saved
    check(rt, Sent(), start + 2 * MIN)
    assert rt.ledger.get("rpl_1").current.misses == 0
    assert rt.ledger.get("rpl_1").state == OPEN


def test_a_failed_inbox_read_decides_nothing(rt: Runtime, fake: FakeLeadterra) -> None:
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    fake.answers[INBOX_PATH] = httpx.Response(503, json={"error": {"code": "down"}})
    for minutes in (1, 2, 3, 20):
        result = watch(rt, Sent(), now=handoff.current.at + minutes * MIN)
        assert result.unread_sdrs == [handoff.current.sdr_id]
    record = rt.ledger.get("rpl_1")
    assert record.state == OPEN and record.current.misses == 0
    assert record.current.breached_at is None


def test_reroute_mode_reroutes_once_to_someone_new_then_escalates_once(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(sla_action="reroute", sla_max_reroutes=1)
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    first, start, sent = handoff.current.sdr_id, handoff.current.at, Sent()
    fake.assigned = {**fake.assigned, "threadId": "thr_2"}
    assert check(rt, sent, start + 10 * MIN) == {"breached": 1, "rerouted": 1}
    record = rt.ledger.get("rpl_1")
    second = record.current
    assert second.attempt == 2 and second.sdr_id != first and second.thread_id == "thr_2"
    path, body = fake.assigns()[-1]
    assert body["forceForward"] is True and body["sdrId"] == second.sdr_id
    fake.inbox.setdefault(second.sdr_id, []).append({"id": "thr_2", "status": "new"})
    # the new handoff is watched in turn, on its own clock
    assert check(rt, sent, second.at + 5 * MIN) == {"reminded": 1}
    with capture_logs() as logs:
        assert check(rt, sent, second.at + 10 * MIN) == {"breached": 1, "escalated": 1}
    check(rt, sent, second.at + 60 * MIN)
    assert len(fake.assigns()) == 2  # the handoff and one re-route
    escalated = [n for d, n in sent.items if n["type"] == "sla.escalated"]
    assert [d for d, n in sent.items if n["type"] == "sla.escalated"] == ["escalation_webhook"]
    assert [h["event"] for h in escalated[0]["history"]][:3] == [
        "assigned",
        "breached",
        "rerouted",
    ]
    [event] = [e for e in logs if e["event"] == "sla.escalated"]
    assert event["reason"] == "max_reroutes" and event["sdrs"] == [first, second.sdr_id]
    assert rt.ledger.get("rpl_1").state == ESCALATED and rt.ledger.watched() == []


def test_a_thread_acted_on_just_before_the_reroute_is_not_rerouted(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(sla_action="reroute")
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    sdr, start = handoff.current.sdr_id, handoff.current.at
    reads = 0

    def acted_between_reads(request: httpx.Request) -> httpx.Response:
        nonlocal reads
        reads += 1
        if reads == 2:  # the re-read right before the re-route
            acts(fake, sdr, "thr_1")
        return fake.documented(request)

    fake.answers[INBOX_PATH] = acted_between_reads
    check(rt, Sent(), start + 10 * MIN)
    assert len(fake.assigns()) == 1
    assert not rt.redis.exists(rt.keys.sla_claim("rpl_1", 2))  # given back: nothing was called
    check(rt, Sent(), start + 11 * MIN)
    assert rt.ledger.get("rpl_1").state == ACTED


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.Response(503, json={"error": {"code": "down"}}), "outcome_unknown"),
        (httpx.ReadTimeout("slow"), "outcome_unknown"),
        (httpx.Response(422, json={"error": {"code": "gmail_not_connected"}}), "refused"),
    ],
)
def test_a_reroute_whose_call_fails_is_never_called_again_and_escalates(
    answer: Any, reason: str, make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(sla_action="reroute", sla_max_reroutes=3)
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    fake.assign_script.append(answer)
    with capture_logs() as logs:
        for minutes in (10, 11, 30):
            check(rt, Sent(), handoff.current.at + minutes * MIN)
    assert len(fake.assigns()) == 2
    [event] = [e for e in logs if e["event"] == "sla.escalated"]
    assert event["reason"] == reason
    assert rt.ledger.get("rpl_1").state == ESCALATED


def test_a_claim_left_by_a_worker_killed_mid_reroute_escalates_without_calling(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(sla_action="reroute")
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    rt.redis.set(rt.keys.sla_claim("rpl_1", 2), "1")  # claimed, outcome never recorded
    with capture_logs() as logs:
        check(rt, Sent(), handoff.current.at + 10 * MIN)
    assert len(fake.assigns()) == 1
    [event] = [e for e in logs if e["event"] == "sla.escalated"]
    assert event["reason"] == "claimed_before"


def test_with_nobody_else_eligible_the_reply_is_escalated(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    fake.sdrs = [{"id": "sdr_1", "gmailConnected": True}, {"id": "sdr_2", "gmailConnected": False}]
    rt = make_rt(sla_action="reroute")
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    with capture_logs() as logs:
        check(rt, Sent(), handoff.current.at + 10 * MIN)
    [event] = [e for e in logs if e["event"] == "sla.escalated"]
    assert event["reason"] == "nobody_else_eligible" and len(fake.assigns()) == 1


def test_two_checks_at_once_make_one(rt: Runtime, fake: FakeLeadterra) -> None:
    hand_off(rt, fake, "rpl_1", "thr_1")
    lock = rt.redis.lock(rt.keys.sla_lock, timeout=30)
    assert lock.acquire(blocking=False)
    assert watch(rt, Sent()).skipped_lock
    lock.release()
    assert not watch(rt, Sent()).skipped_lock


def test_working_hours_stop_the_clock(make_rt: Callable[..., Runtime], fake: FakeLeadterra) -> None:
    hours = {"default": {"timezone": "UTC", "days": "mon-fri", "start": "09:00", "end": "17:00"}}
    rt = make_rt(working_hours=hours)
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    # Friday 16:55 UTC: five minutes before closing, then the weekend
    friday = 1_795_798_500.0  # 2026-11-27T16:55:00Z
    handoff.current.at = friday
    rt.ledger.save(handoff)
    assert check(rt, Sent(), friday + 19 * 3600) == {"reminded": 1}  # Saturday: 5 min in
    monday_0904 = friday + 2 * 86400 + 16 * 3600 + 9 * 60
    assert check(rt, Sent(), monday_0904) == {}  # 9 working minutes
    assert check(rt, Sent(), monday_0904 + MIN) == {"breached": 1}


def test_without_working_hours_only_the_clock_is_the_wall_clock(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    hours = {"default": {"timezone": "UTC", "days": "mon-fri", "start": "09:00", "end": "17:00"}}
    rt = make_rt(working_hours=hours, sla_working_hours_only=False)
    handoff = hand_off(rt, fake, "rpl_1", "thr_1")
    friday = 1_795_798_500.0
    handoff.current.at = friday
    rt.ledger.save(handoff)
    assert check(rt, Sent(), friday + 6 * MIN) == {"reminded": 1}
    assert check(rt, Sent(), friday + 10 * MIN) == {"breached": 1}
