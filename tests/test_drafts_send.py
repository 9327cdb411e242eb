"""worker/drafts/sending.py: a draft sent in one click, exactly once, against fakeredis and the
fake Leadterra behind httpx.MockTransport; the completion task; and the same flow against a real
sandbox process (stale after the prospect replies, the guardrails' 422, a send answered too late).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from celery.exceptions import Retry
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker.deadline import wait_until
from worker.drafts import sending
from worker.drafts.record import DraftRecord, DraftStore
from worker.drafts.sending import complete_sent_followup, send_draft
from worker.jobs.celery_app import create_celery
from worker.jobs.tasks import register
from worker.keys import QUEUE_FOLLOWUPS, TASK_COMPLETE
from worker.leadterra.models import iso_ms
from worker.oneclick.links import LinkClaims
from worker.oneclick.preview import check_thread
from worker.oneclick.send_state import CLAIMED, SENT, UNKNOWN, SendState, SendStates
from worker.runtime import Runtime

SDR_KEYS = {"sdr_1": "sk_sdr_one_123", "sdr_2": "sk_sdr_two_456"}
ACTION_SECRET = "action-secret-0123456789-abcdefghij"
SEND = "/v1/sdr/drafts/draft_1/send"
COMPLETE = "/v1/sdr/followups/fu_1/complete"
DUE = "2026-06-29T14:00:00.000Z"
BASE = "2026-06-28T18:00:00.000Z"
EXPIRES = 4_000_000_000


def make_record(**changes: Any) -> DraftRecord:
    record = DraftRecord(
        draft_id="draft_1",
        followup_id="fu_1",
        due_at=DUE,
        sdr_id="sdr_1",
        thread_id="thr_1",
        subject="Re: pricing <b>now</b>",
        body_text="Hi Ada,\n\nStill keen? <script>alert(1)</script>",
        body_html="<p>Hi Ada,</p>",
        confidence=0.85,
        generated_at=time.time() - 60,
        base_last_message_at=BASE,
        send_url="https://leadrouter.example.test/actions/send?d=draft_1",
        expires_at=EXPIRES,
    )
    return replace(record, **changes)


def claims_of(record: DraftRecord) -> LinkClaims:
    return LinkClaims(record.draft_id, record.followup_id, record.sdr_id, record.expires_at)


def followup(due: str = DUE, status: str = "pending") -> dict[str, Any]:
    return {"id": "fu_1", "threadId": "thr_1", "sdrId": "sdr_1", "status": status, "dueAt": due}


def thread(status: str = "needs_followup", last: str = BASE) -> dict[str, Any]:
    return {
        "id": "thr_1",
        "contactEmail": "ada@acme.io",
        "contactName": "Ada <Lovelace>",
        "subject": "Quick question",
        "status": status,
        "lastMessageAt": last,
    }


def sent_answer(message_id: str = "gmsg_1") -> httpx.Response:
    guardrails = {"blocked": False, "issues": [], "scores": {"overall": 0.9}}
    return httpx.Response(200, json={"data": {"messageId": message_id, "guardrails": guardrails}})


def blocked_answer(*issues: str) -> httpx.Response:
    guardrails = {"blocked": True, "issues": list(issues), "scores": {"overall": 0.2}}
    error = {"code": "guardrail_blocked", "message": "the draft failed the quality guardrails"}
    return httpx.Response(422, json={"error": error, "guardrails": guardrails})


def make_fake() -> FakeLeadterra:
    fake = FakeLeadterra(
        sdr_keys=SDR_KEYS, due={"sdr_1": [followup()]}, inbox={"sdr_1": [thread()]}
    )
    fake.answers[SEND] = lambda request: sent_answer()
    return fake


def make_runtime(redis_client: Any, fake: FakeLeadterra, **overrides: Any) -> Runtime:
    values = {"leadterra_sdr_api_keys": SDR_KEYS, "action_secret": ACTION_SECRET, **overrides}
    return Runtime(make_settings(**values), client=redis_client, leadterra=fake.client())


@pytest.fixture
def fake() -> FakeLeadterra:
    return make_fake()


@pytest.fixture
def rt(fake_redis: Any, fake: FakeLeadterra) -> Runtime:
    runtime = make_runtime(fake_redis, fake)
    DraftStore(runtime.redis, runtime.keys).save(make_record())
    return runtime


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def drafts(rt: Runtime, event: str) -> float:
    value = rt.metrics.registry.get_sample_value("leadrouter_drafts_total", {"event": event})
    return value or 0.0


def queued(rt: Runtime) -> list[dict[str, Any]]:
    """The task messages on the followups queue, oldest first, with their decoded args."""
    found = []
    for raw in reversed(rt.redis.lrange(rt.keys.queue(QUEUE_FOLLOWUPS), 0, -1)):
        message = json.loads(raw)
        [args, _, _] = json.loads(base64.b64decode(message["body"]))
        found.append({"task": message["headers"]["task"], "args": args, "message": message})
    return found


def state(rt: Runtime, draft_id: str = "draft_1") -> SendState | None:
    return SendStates(rt.redis, rt.keys).read(draft_id)


# -- sent, once ---------------------------------------------------------------------------------


def test_a_fresh_draft_is_sent_once_with_the_sdrs_key_and_recorded(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    with capture_logs() as logs:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert (outcome.status, outcome.message_id) == (sending.SENT_OUTCOME, "gmsg_1")
    [call] = fake.to(SEND)
    assert call.authorization == "Bearer sk_sdr_one_123"
    assert all(c.sdr == "sdr_1" for c in fake.calls)
    recorded = state(rt)
    assert recorded is not None
    assert (recorded.state, recorded.actor, recorded.message_id) == (SENT, "link", "gmsg_1")
    assert rt.redis.get(rt.keys.followup_sent("fu_1")) == b"draft_1"
    assert 29 * 86400 < rt.redis.ttl(rt.keys.followup_sent("fu_1")) <= 30 * 86400
    [task] = queued(rt)
    assert task["task"] == TASK_COMPLETE
    assert task["args"] == [{"id": "fu_1", "sdrId": "sdr_1", "draftId": "draft_1"}]
    assert task["message"]["headers"]["argsrepr"] == "[followup fu_1]"
    [event] = events(logs, "draft.sent")
    assert {k: event[k] for k in ("draft_id", "followup_id", "sdr_id", "actor", "message_id")} == {
        "draft_id": "draft_1",
        "followup_id": "fu_1",
        "sdr_id": "sdr_1",
        "actor": "link",
        "message_id": "gmsg_1",
    }
    assert event["duration_ms"] >= 0 and event["log_level"] == "info"
    assert drafts(rt, "sent") == 1


def test_a_second_click_answers_already_sent_and_sends_nothing(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    send_draft(rt, claims_of(make_record()), actor="link")
    with capture_logs() as logs:
        again = send_draft(rt, claims_of(make_record()), actor="slack:U024BE7LH")
    assert again.status == sending.ALREADY_SENT
    assert again.state is not None and again.state.actor == "link"
    assert len(fake.to(SEND)) == 1 and len(queued(rt)) == 1
    [event] = events(logs, "draft.duplicate")
    assert (event["held"], event["held_by"], event["actor"]) == (SENT, "link", "slack:U024BE7LH")


def test_two_concurrent_clicks_send_once(rt: Runtime, fake: FakeLeadterra) -> None:
    """The second click comes while the first one's send is in Leadterra's hands (held there
    until the second click has started), not before or after it."""
    sending_now, release = threading.Event(), threading.Event()

    def held(request: httpx.Request) -> httpx.Response:
        sending_now.set()
        release.wait(10)
        return sent_answer()

    fake.answers[SEND] = held
    results: list[str] = []

    def click(actor: str) -> None:
        results.append(send_draft(rt, claims_of(make_record()), actor=actor).status)

    first = threading.Thread(target=click, args=("slack:U01",))
    first.start()
    wait_until(sending_now.is_set, 10, 0.01, what="the first click sending")
    second = threading.Thread(target=click, args=("slack:U02",))
    second.start()
    release.set()
    for worker in (first, second):
        worker.join(20)
    loser = {sending.IN_PROGRESS, sending.ALREADY_SENT}
    assert results.count(sending.SENT_OUTCOME) == 1 and len(results) == 2
    assert set(results) - {sending.SENT_OUTCOME} <= loser
    assert len(fake.to(SEND)) == 1 and len(queued(rt)) == 1


def test_a_409_already_sent_counts_as_sent(rt: Runtime, fake: FakeLeadterra) -> None:
    fake.answers[SEND] = httpx.Response(409, json={"error": {"code": "already_sent"}})
    with capture_logs() as logs:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert outcome.status == sending.SENT_OUTCOME
    assert rt.redis.exists(rt.keys.followup_sent("fu_1")) and len(queued(rt)) == 1
    assert events(logs, "draft.sent")[0]["conflict"] is True


# -- stale: nothing claimed, nothing sent ------------------------------------------------------


@pytest.mark.parametrize(
    ("inbox", "due", "reason"),
    [
        ([thread("replied")], [followup()], "the thread is replied now"),
        (
            [thread(last="2026-06-29T09:00:00.000Z")],
            [followup()],
            "the thread has a newer message than the draft",
        ),
        ([], [followup()], "thread not found"),
        ([thread()], [followup(due="2026-07-01T09:00:00.000Z")], "the follow-up was rescheduled"),
        ([thread()], [], "the follow-up is no longer pending"),
    ],
)
def test_a_stale_draft_is_not_sent(
    rt: Runtime,
    fake: FakeLeadterra,
    inbox: list[dict[str, Any]],
    due: list[dict[str, Any]],
    reason: str,
) -> None:
    fake.inbox["sdr_1"], fake.due["sdr_1"] = inbox, due
    with capture_logs() as logs:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert (outcome.status, outcome.reason) == (sending.STALE, reason)
    assert fake.to(SEND) == [] and state(rt) is None and queued(rt) == []
    [event] = events(logs, "draft.stale")
    assert event["reason"] == reason and event["draft_id"] == "draft_1"
    assert drafts(rt, "stale") == 1


def test_the_followup_is_read_with_upcoming_ones_too(rt: Runtime, fake: FakeLeadterra) -> None:
    send_draft(rt, claims_of(make_record()), actor="link")
    [due_call] = fake.to("/v1/sdr/followups/due")
    assert due_call.params == {"limit": "200", "includeUpcoming": "true"}


def test_another_draft_of_the_same_followup_already_sent_makes_it_stale(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    rt.redis.set(rt.keys.followup_sent("fu_1"), "draft_0")
    outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert outcome.status == sending.STALE and fake.to(SEND) == []


def test_a_link_for_another_followup_or_sdr_is_an_unknown_draft(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    for claims in (
        LinkClaims("draft_1", "fu_9", "sdr_1", EXPIRES),
        LinkClaims("draft_1", "fu_1", "sdr_2", EXPIRES),
        LinkClaims("draft_9", "fu_1", "sdr_1", EXPIRES),
    ):
        assert send_draft(rt, claims, actor="link").status == sending.UNKNOWN_DRAFT
    assert fake.calls == []


def test_leadterra_unreadable_before_the_send_claims_nothing(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    fake.answers["/v1/sdr/inbox"] = httpx.Response(503)
    with capture_logs() as logs:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert outcome.status == sending.BUSY and state(rt) is None and fake.to(SEND) == []
    assert events(logs, "draft.check_failed")[0]["error"] == "ServerError"


# -- refused, blocked, unknown --------------------------------------------------------------------


def test_a_guardrail_block_gives_the_claim_back_and_keeps_the_followup_pending(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    fake.answers[SEND] = blocked_answer("Too pushy", "<b>link</b> looks broken")
    with capture_logs() as logs:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert outcome.status == sending.BLOCKED
    assert outcome.issues == ("Too pushy", "<b>link</b> looks broken")
    assert state(rt) is None and queued(rt) == []
    assert not rt.redis.exists(rt.keys.followup_sent("fu_1"))
    assert fake.to(COMPLETE) == []
    [event] = events(logs, "draft.blocked")
    assert event["issue_count"] == 2 and event["log_level"] == "info"
    assert drafts(rt, "blocked") == 1
    fake.answers[SEND] = lambda request: sent_answer()
    assert send_draft(rt, claims_of(make_record()), actor="link").status == sending.SENT_OUTCOME
    assert len(fake.to(SEND)) == 2


@pytest.mark.parametrize(
    ("answer", "status", "reason"),
    [
        (
            httpx.Response(422, json={"error": {"code": "gmail_not_connected"}}),
            sending.NOT_SENT,
            "the SDR's Gmail is not connected in Leadterra",
        ),
        (
            httpx.Response(404, json={"error": {"code": "draft_not_found"}}),
            sending.NOT_SENT,
            "Leadterra does not know this draft",
        ),
        (httpx.Response(401), sending.NOT_SENT, "Leadterra refused the SDR's API key"),
        (
            httpx.Response(429, headers={"retry-after": "1"}),
            sending.BUSY,
            "Leadterra is busy right now; try again in a minute",
        ),
        (httpx.Response(418), sending.NOT_SENT, "Leadterra refused the send (HTTP 418)"),
    ],
)
def test_a_refused_send_gives_the_claim_back(
    rt: Runtime, fake: FakeLeadterra, answer: httpx.Response, status: str, reason: str
) -> None:
    fake.answers[SEND] = answer
    with capture_logs() as logs:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert (outcome.status, outcome.reason) == (status, reason)
    assert state(rt) is None and queued(rt) == []
    assert events(logs, "draft.send_failed")[0]["log_level"] == "warning"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
        httpx.Response(503),
        httpx.Response(200, content=b"not json"),
        RuntimeError("a bug"),
    ],
    ids=["timeout", "transport", "5xx", "garbled", "unexpected"],
)
def test_no_trustworthy_answer_is_unknown_for_good_and_never_sent_again(
    rt: Runtime, fake: FakeLeadterra, answer: Any
) -> None:
    fake.answers[SEND] = answer
    with capture_logs() as logs:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    assert outcome.status == sending.UNKNOWN_OUTCOME
    recorded = state(rt)
    assert recorded is not None and recorded.state == UNKNOWN and recorded.error
    [event] = events(logs, "draft.unknown_outcome")
    assert event["log_level"] == "error" and event["error"]
    assert drafts(rt, "unknown_outcome") == 1
    fake.answers[SEND] = lambda request: sent_answer()
    again = send_draft(rt, claims_of(make_record()), actor="link")
    assert again.status == sending.UNKNOWN_OUTCOME
    assert len(fake.to(SEND)) == 1 and queued(rt) == []


def test_a_claim_whose_holder_never_finished_reads_as_unknown(
    rt: Runtime, fake: FakeLeadterra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sending, "SETTLE_SECONDS", 0.3)
    stuck = SendState(CLAIMED, "link", time.time() - 3600, "token")
    rt.redis.set(rt.keys.draft_send("draft_1"), stuck.dumps())
    assert send_draft(rt, claims_of(make_record()), actor="link").status == sending.UNKNOWN_OUTCOME
    fresh = replace(stuck, at=time.time())
    rt.redis.set(rt.keys.draft_send("draft_1"), fresh.dumps())
    assert send_draft(rt, claims_of(make_record()), actor="link").status == sending.IN_PROGRESS
    assert fake.to(SEND) == []


def test_a_click_that_meets_a_send_in_progress_waits_and_says_sent_already(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    claimed = SendState(CLAIMED, "link", time.time(), "token")
    rt.redis.set(rt.keys.draft_send("draft_1"), claimed.dumps())
    finished = replace(claimed, state=SENT, message_id="gmsg_1")
    timer = threading.Timer(0.3, rt.redis.set, (rt.keys.draft_send("draft_1"), finished.dumps()))
    timer.start()
    try:
        outcome = send_draft(rt, claims_of(make_record()), actor="link")
    finally:
        timer.join()
    assert outcome.status == sending.ALREADY_SENT
    assert fake.to(SEND) == []


# -- the check after an unknown outcome --------------------------------------------------------


def test_check_thread_reads_the_thread_and_says_whether_it_moved(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    fake.answers[SEND] = httpx.ReadTimeout("timed out")
    send_draft(rt, claims_of(make_record()), actor="link")
    calls = len(fake.calls)
    checked = check_thread(rt, claims_of(make_record()))
    assert checked is not None and checked.looks_sent is False
    assert checked.thread is not None and checked.thread.status == "needs_followup"
    later = iso_ms(datetime.now(UTC) + timedelta(seconds=5))
    fake.inbox["sdr_1"] = [thread("awaiting_reply", last=later)]
    checked = check_thread(rt, claims_of(make_record()))
    assert checked is not None and checked.looks_sent is True
    assert [c.path for c in fake.calls[calls:]] == ["/v1/sdr/inbox", "/v1/sdr/inbox"]
    assert check_thread(rt, LinkClaims("draft_1", "fu_2", "sdr_1", EXPIRES)) is None


# -- the completion task -------------------------------------------------------------------------


def test_completion_completes_with_the_sdrs_key_and_treats_409_as_done(
    rt: Runtime, fake: FakeLeadterra
) -> None:
    payload = {"id": "fu_1", "sdrId": "sdr_1", "draftId": "draft_1"}
    with capture_logs() as logs:
        assert complete_sent_followup(rt, payload) == "completed"
        fake.answers[COMPLETE] = httpx.Response(409, json={"error": {"code": "not_pending"}})
        assert complete_sent_followup(rt, payload) == "already"
    assert [c.authorization for c in fake.to(COMPLETE)] == ["Bearer sk_sdr_one_123"] * 2
    assert [e["outcome"] for e in events(logs, "followup.completed")] == ["completed", "already"]


@pytest.fixture
def task_rt(redis_server: Any, real_redis: Any, fake: FakeLeadterra) -> Iterator[Runtime]:
    runtime = make_runtime(real_redis, fake, redis_url=redis_server.url, max_retries=3)
    DraftStore(runtime.redis, runtime.keys).save(make_record())
    yield runtime


def test_the_queued_completion_runs_as_the_registered_task_and_is_retried(
    task_rt: Runtime, fake: FakeLeadterra
) -> None:
    send_draft(task_rt, claims_of(make_record()), actor="link")
    [queued_task] = queued(task_rt)
    app = create_celery(task_rt.settings)
    task = register(app, task_rt)[TASK_COMPLETE]
    headers = queued_task["message"]["headers"]

    def run() -> Any:
        request = {"id": headers["id"], "retries": 0, "called_directly": False}
        delivery = {"routing_key": QUEUE_FOLLOWUPS}
        task.push_request(**request, hostname="w@h", delivery_info=delivery, is_eager=False)
        try:
            return task(*queued_task["args"])
        finally:
            task.pop_request()

    try:
        fake.answers[COMPLETE] = httpx.Response(503)
        with pytest.raises(Retry):
            run()
        del fake.answers[COMPLETE]
        assert run() == "completed"
    finally:
        app.close()
    assert len(fake.to(COMPLETE)) == 2


# -- against the real sandbox ------------------------------------------------------------------

SANDBOX_KEY = "sk_test_workspace"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from leadterra_sandbox.process import SandboxProcess

    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    args = ["--sdrs", "2", "--log-level", "WARNING"]
    with SandboxProcess.start(args, log_path=str(log)) as process:
        yield process


@pytest.fixture
def world(sandbox: Any, fake_redis: Any) -> Iterator[Callable[..., tuple[Runtime, DraftRecord]]]:
    """A thread with a due follow-up and a generated draft for sdr_1, stored as we would."""
    sandbox.control.reset()
    made: list[Runtime] = []

    def make(**settings: Any) -> tuple[Runtime, DraftRecord]:
        keys = {sdr: f"{SANDBOX_KEY}_{sdr}" for sdr in ("sdr_1", "sdr_2")}
        values = {
            "leadterra_base_url": sandbox.api_url,
            "leadterra_api_key": SANDBOX_KEY,
            "leadterra_sdr_api_keys": json.dumps(keys),
            "action_secret": ACTION_SECRET,
            **settings,
        }
        rt = Runtime(make_settings(**values), client=fake_redis)
        made.append(rt)
        now = datetime.fromisoformat(sandbox.control.clock()["now"].replace("Z", "+00:00"))
        base = iso_ms(now - timedelta(hours=2))
        due = iso_ms(now - timedelta(minutes=5))
        sandbox.control.seed_threads([{"id": "thr_s", "sdrId": "sdr_1", "status": "needs_followup",
                                       "lastMessageAt": base, "contactName": "Ada"}])  # fmt: skip
        sandbox.control.seed_followups([{"id": "fu_s", "threadId": "thr_s", "dueAt": due}])
        draft = rt.for_sdr("sdr_1").generate_draft("thr_s")
        record = make_record(draft_id=draft.id, followup_id="fu_s", thread_id="thr_s",
                             due_at=due, base_last_message_at=base)  # fmt: skip
        DraftStore(rt.redis, rt.keys).save(record)
        return rt, record

    yield make
    for rt in made:
        rt.close()


SANDBOX_SEND = "POST /v1/sdr/drafts/{id}/send"


@pytest.mark.integration
def test_sandbox_concurrent_clicks_send_once(sandbox: Any, world: Any) -> None:
    rt, record = world()
    barrier = threading.Barrier(3)
    results: list[str] = []

    def click() -> None:
        barrier.wait()
        results.append(send_draft(rt, claims_of(record), actor="link").status)

    threads = [threading.Thread(target=click) for _ in range(3)]
    for worker in threads:
        worker.start()
    for worker in threads:
        worker.join(20)
    assert results.count(sending.SENT_OUTCOME) == 1 and len(results) == 3
    assert len(sandbox.control.draft_sends(record.draft_id)) == 1
    again = send_draft(rt, claims_of(record), actor="link")
    assert again.status == sending.ALREADY_SENT
    assert len(sandbox.control.draft_sends(record.draft_id)) == 1


@pytest.mark.integration
def test_sandbox_a_prospect_reply_makes_the_draft_stale(sandbox: Any, world: Any) -> None:
    rt, record = world()
    sandbox.control.prospect_replies("thr_s")
    outcome = send_draft(rt, claims_of(record), actor="link")
    assert (outcome.status, outcome.reason) == (sending.STALE, "the thread is replied now")
    assert sandbox.control.draft_sends(record.draft_id) == []


@pytest.mark.integration
def test_sandbox_a_new_message_without_a_status_change_is_stale_too(
    sandbox: Any, world: Any
) -> None:
    rt, record = world()
    sandbox.control.prospect_replies("thr_s", status="needs_followup")
    outcome = send_draft(rt, claims_of(record), actor="link")
    assert outcome.reason == "the thread has a newer message than the draft"
    assert sandbox.control.draft_sends(record.draft_id) == []


@pytest.mark.integration
def test_sandbox_a_guardrail_block_keeps_the_followup_pending_and_a_later_click_sends(
    sandbox: Any, world: Any
) -> None:
    rt, record = world()
    sandbox.control.block_sends(1, issues=["Too pushy"])
    outcome = send_draft(rt, claims_of(record), actor="link")
    assert (outcome.status, outcome.issues) == (sending.BLOCKED, ("Too pushy",))
    assert state(rt, record.draft_id) is None
    due = rt.for_sdr("sdr_1").due_followups(limit=200, include_upcoming=True)
    assert [(f.id, f.status) for f in due] == [("fu_s", "pending")]
    assert send_draft(rt, claims_of(record), actor="link").status == sending.SENT_OUTCOME
    assert len(sandbox.control.draft_sends(record.draft_id)) == 1


@pytest.mark.integration
def test_sandbox_a_send_answered_too_late_is_unknown_and_never_repeated(
    sandbox: Any, world: Any
) -> None:
    rt, record = world(leadterra_timeout_read=0.5)
    sandbox.control.set_fault(SANDBOX_SEND, latency_ms=2000, phase="after")
    outcome = send_draft(rt, claims_of(record), actor="link")
    assert outcome.status == sending.UNKNOWN_OUTCOME
    sandbox.control.clear_faults()
    assert send_draft(rt, claims_of(record), actor="link").status == sending.UNKNOWN_OUTCOME
    assert len(sandbox.control.draft_sends(record.draft_id)) == 1  # it went, once
    checked = check_thread(rt, claims_of(record))
    assert checked is not None and checked.looks_sent is True
