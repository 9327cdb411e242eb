"""The open-world failure policy of worker/jobs/reliable.py, through real tasks on a real Redis:
every run ends done, retried or dead-lettered (never acked and dropped), whatever it raises."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from celery import Celery, Task
from celery.exceptions import Ignore, Reject, Retry
from pydantic import SecretStr
from redis.exceptions import ResponseError
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker import budget, errors
from worker.followups.notify import DELIVERY_HEADER, Notifier
from worker.followups.poll import claim, poll
from worker.jobs import reliable
from worker.jobs.celery_app import create_celery
from worker.jobs.reliable import ReliableTask
from worker.jobs.tasks import register
from worker.keys import QUEUE_ASSIGN, QUEUE_FOLLOWUPS, TASK_ASSIGN, TASK_NOTIFY, TASK_ROUTE
from worker.leadterra.models import FollowUp
from worker.runtime import Runtime

# a key that every escape changes: repr, JSON and URL encoding each write it differently
KEY = "sk_live_q\"u'o\\te%2Fd"
REPLY = {"id": "rpl_1", "email": "lead@acme.io", "classification": "interested"}
ASSIGN_PATH = "/v1/replies/rpl_1/assign"
DUE = "2026-06-29T14:00:00.000Z"


@pytest.fixture
def fake() -> FakeLeadterra:
    return FakeLeadterra(workspace_key=KEY)


@pytest.fixture
def rt(redis_server, real_redis, fake) -> Runtime:
    settings = make_settings(
        redis_url=redis_server.url,
        leadterra_api_key=KEY,
        followup_webhook_url="https://hooks.example/followups",
        max_retries=3,
        max_deliveries=2,
    )
    return Runtime(settings, client=real_redis, leadterra=fake.client())


@pytest.fixture
def app(rt) -> Iterator[Celery]:
    app = create_celery(rt.settings)
    yield app
    app.close()


@pytest.fixture
def tasks(app, rt) -> dict[str, Task]:
    return register(app, rt)


def boom_task(app: Celery, rt: Runtime, fn: Callable[..., Any]) -> Task:
    """A task added later, about replies, that runs `fn` under the same policy."""
    return app.task(
        name=f"test.{fn.__name__}",
        base=ReliableTask,
        bind=True,
        ignore_result=True,
        runtime=rt,
        subject="reply",
        queue_name=QUEUE_ASSIGN,
    )(fn)


def call(task: Task, *args: Any, retries: int = 0, task_id: str = "task-1") -> tuple[Any, list]:
    task.push_request(
        id=task_id,
        retries=retries,
        called_directly=False,
        hostname="test@h",
        delivery_info={"routing_key": task.queue_name, "redelivered": False},
        is_eager=False,
    )
    try:
        with capture_logs() as logs:
            try:
                return task(*args), logs
            except BaseException as exc:
                exc.logs = logs  # type: ignore[attr-defined]
                raise
    finally:
        task.pop_request()


def queued(rt: Runtime, queue: str = QUEUE_ASSIGN) -> list[dict[str, Any]]:
    return [json.loads(m) for m in rt.redis.lrange(rt.keys.queue(queue), 0, -1)]


def args_of(message: dict[str, Any]) -> list[Any]:
    return json.loads(base64.b64decode(message["body"]))[0]


class OddError(Exception):
    """An exception of our own making, as a library might define."""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


# -- any Exception: retried under its own type, then dead-lettered ------------------------------


def test_the_issues_example_a_content_encoding_mismatch_is_retried_not_dropped(
    tasks, rt, fake
) -> None:
    """Issue 12: an assign answer whose Content-Encoding its body does not match raised
    httpx.DecodingError past the task policy; Celery acked it and the reply vanished."""
    garbled = httpx.ByteStream(b'{"data":{"handoffId":"h1"}}')
    fake.assign_script.append(
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=garbled)
    )
    with pytest.raises(Retry):
        call(tasks[TASK_ASSIGN], REPLY)
    [message] = queued(rt)
    assert message["headers"]["retries"] == 1
    result, _ = call(tasks[TASK_ASSIGN], *args_of(message), task_id=message["headers"]["id"])
    assert result == "assigned"


def test_an_unclassified_exception_from_the_client_is_retried_under_its_own_type(
    tasks, rt, fake
) -> None:
    fake.assign_script.append(KeyError("lost"))
    with pytest.raises(Retry) as caught:
        call(tasks[TASK_ASSIGN], REPLY)
    [message] = queued(rt)
    assert message["headers"]["retries"] == 1
    [event] = [e for e in caught.value.logs if e["event"] == "reply.retry"]  # type: ignore[attr-defined]
    assert event["error_type"] == "KeyError"
    assert event["error"] == "'lost'"
    assert event["error_at"].startswith("tests/support/fake_leadterra.py:")
    assert event["reply_id"] == "rpl_1"
    assert rt.dlq.list() == []


def test_an_unclassified_exception_is_dead_lettered_with_its_type_once_retries_run_out(
    tasks, rt, fake
) -> None:
    fake.assign_script.append(OddError("the library gave up"))
    result, logs = call(tasks[TASK_ASSIGN], REPLY, retries=3)
    assert result is None
    [entry] = rt.dlq.list()
    assert entry.id == "reply:rpl_1"
    assert entry.error_type == "tests.test_failure_policy.OddError"
    assert entry.error == "the library gave up"
    assert entry.attempts == 4
    assert entry.args == [REPLY]
    [event] = [e for e in logs if e["event"] == "reply.dead_lettered"]
    assert event["reason"] == "retries used up"
    assert event["error_type"] == "tests.test_failure_policy.OddError"
    assert queued(rt) == []


def test_a_dead_letter_and_its_log_never_hold_the_key_in_any_escaped_form(tasks, rt, fake) -> None:
    forms = [KEY, repr(KEY)[1:-1], json.dumps(KEY)[1:-1], quote(KEY, safe=""), quote(KEY)]
    fake.assign_script.append(ValueError("bad " + " | ".join(forms)))
    _, logs = call(tasks[TASK_ASSIGN], REPLY, retries=3)
    [entry] = rt.dlq.list()
    rendered = [entry.error, json.dumps(entry.error), *(json.dumps(e, default=str) for e in logs)]
    for text in rendered:
        for form in forms:
            assert form not in text
    assert entry.error.startswith("bad ***")


def test_an_exception_whose_message_cannot_be_rendered_is_described_by_its_type(
    tasks, rt, fake
) -> None:
    fake.assign_script.append(Unprintable())
    call(tasks[TASK_ASSIGN], REPLY, retries=3)
    [entry] = rt.dlq.list()
    assert entry.error_type == "tests.test_failure_policy.Unprintable"
    assert entry.error == "(its message cannot be rendered)"


def test_a_huge_message_is_cut(tasks, rt, fake) -> None:
    fake.assign_script.append(RuntimeError("x" * 1_000_000))
    call(tasks[TASK_ASSIGN], REPLY, retries=3)
    [entry] = rt.dlq.list()
    assert len(entry.error) == reliable.MAX_ERROR_TEXT
    assert entry.error_type == "RuntimeError"


def test_a_type_error_inside_a_task_is_a_bug_retried_not_poison(app, rt) -> None:
    def adds(task: ReliableTask, payload: dict[str, Any]) -> int:
        return payload["id"] + 1  # TypeError: str + int

    with pytest.raises(Retry):
        call(boom_task(app, rt, adds), REPLY)
    assert rt.dlq.list() == []


def test_arguments_that_do_not_fit_the_task_are_still_poison(tasks, rt) -> None:
    call(tasks[TASK_ASSIGN], REPLY, "one argument too many")
    [entry] = rt.dlq.list()
    assert entry.error_type == "PoisonMessage"
    assert entry.error.startswith("arguments do not fit the task")


def test_a_server_error_that_is_not_ours_is_unclassified_too(app, rt) -> None:
    def config_breaks(task: ReliableTask, payload: dict[str, Any]) -> None:
        raise errors.ConfigError("WORKING_HOURS: the roster changed under us")

    call(boom_task(app, rt, config_breaks), REPLY, retries=3)
    [entry] = rt.dlq.list()
    assert entry.error_type == "worker.errors.ConfigError"


# -- BaseExceptions: the redelivery and poison path ---------------------------------------------


class Halt(BaseException):
    """A BaseException a library might raise."""


@pytest.mark.parametrize(
    "raised",
    [SystemExit(3), KeyboardInterrupt(), GeneratorExit(), MemoryError(), Halt("stop")],
    ids=["SystemExit", "KeyboardInterrupt", "GeneratorExit", "MemoryError", "custom"],
)
def test_memory_errors_and_base_exceptions_requeue_the_message(app, rt, raised) -> None:
    def interrupted(task: ReliableTask, payload: dict[str, Any]) -> None:
        raise raised

    with pytest.raises(Reject) as caught:
        call(boom_task(app, rt, interrupted), REPLY)
    assert caught.value.requeue is True
    [event] = [e for e in caught.value.logs if e["event"] == "reply.requeued"]  # type: ignore[attr-defined]
    assert event["error_type"] == reliable.type_name(raised)
    assert event["outcome"] == "requeued"
    assert event["max_deliveries"] == 2
    assert rt.dlq.list() == []
    assert queued(rt) == []  # Celery puts it back, marked redelivered (tests/e2e)


@pytest.mark.parametrize(
    "signal", [Ignore(), Reject("no", requeue=False)], ids=["Ignore", "Reject"]
)
def test_celerys_own_signals_pass_through_untouched(app, rt, signal) -> None:
    def signals(task: ReliableTask, payload: dict[str, Any]) -> None:
        raise signal

    with pytest.raises(type(signal)):
        call(boom_task(app, rt, signals), REPLY)
    assert rt.dlq.list() == []


def test_a_decision_redis_refuses_to_record_requeues_instead_of_acking(
    app, rt, monkeypatch
) -> None:
    def refuse(entry: Any) -> None:
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'")

    def gone(task: ReliableTask, payload: dict[str, Any]) -> None:
        raise errors.NotFound("POST /v1/replies/{id}/assign: 404 reply_not_found")

    monkeypatch.setattr(rt.dlq, "add", refuse)
    with pytest.raises(Reject) as caught:
        call(boom_task(app, rt, gone), REPLY)
    assert caught.value.requeue is True
    [event] = [e for e in caught.value.logs if e["event"] == "reply.requeued"]  # type: ignore[attr-defined]
    assert event["reason"] == "its outcome could not be recorded"


# -- the run's deadline -------------------------------------------------------------------------


def test_every_run_has_the_tasks_deadline_in_force(app, rt) -> None:
    seen: list[float | None] = []

    def reads(task: ReliableTask, payload: dict[str, Any]) -> None:
        seen.append(budget.remaining())

    call(boom_task(app, rt, reads), REPLY)
    [left] = seen
    assert left is not None
    assert rt.settings.max_task_seconds - 5 < left <= rt.settings.max_task_seconds
    assert rt.settings.max_task_seconds < rt.settings.visibility_timeout / 3
    assert budget.remaining() is None  # and nothing after it


def test_past_its_deadline_a_task_makes_no_call_and_is_retried(app, rt, fake) -> None:
    def late(task: ReliableTask, payload: dict[str, Any]) -> None:
        with budget.deadline_in(-1.0):
            task.runtime.leadterra.list_sdrs()

    with pytest.raises(Retry) as caught:
        call(boom_task(app, rt, late), REPLY)
    [event] = [e for e in caught.value.logs if e["event"] == "reply.retry"]  # type: ignore[attr-defined]
    assert event["error_type"] == "OutOfTime"
    assert fake.calls == []


def test_a_run_that_ends_past_its_deadline_is_logged_as_overran(app, rt, monkeypatch) -> None:
    monkeypatch.setattr(reliable, "OVERRUN_GRACE", -rt.settings.max_task_seconds)

    def slow(task: ReliableTask, payload: dict[str, Any]) -> str:
        return "done"

    result, logs = call(boom_task(app, rt, slow), REPLY)
    assert result == "done"
    [event] = [e for e in logs if e["event"] == "reply.overran"]
    assert event["deadline_s"] == round(rt.settings.max_task_seconds, 1)


# -- follow-ups: a failed routing is never blocked by its claim ---------------------------------


def note(fid: str = "fu_1", status: str = "won") -> dict[str, Any]:
    followup = {"id": fid, "threadId": "thr_1", "sdrId": None, "status": "pending", "dueAt": DUE}
    return {"followup": followup, "thread": {"id": "thr_1", "status": status}, "sdr": None}


def test_a_dead_lettered_route_is_replayed_past_its_claim(tasks, rt, fake) -> None:
    skip = "/v1/sdr/followups/fu_1/skip"
    claim(rt, [FollowUp.model_validate(note()["followup"])])  # the poll claimed it
    fake.answers[skip] = ConnectionAbortedError("the proxy hung up oddly")
    call(tasks[TASK_ROUTE], note(), retries=3)
    [entry] = rt.dlq.list()
    assert (entry.id, entry.error_type) == (f"followup:fu_1:{DUE}", "ConnectionAbortedError")
    assert rt.redis.exists(rt.keys.followup_claim("fu_1", DUE))  # still claimed: no re-poll

    del fake.answers[skip]
    assert rt.dlq.replay(entry.id)
    [message] = queued(rt, QUEUE_FOLLOWUPS)
    assert message["headers"]["task"] == TASK_ROUTE
    result, _ = call(tasks[TASK_ROUTE], *args_of(message), task_id=message["headers"]["id"])
    assert result == "skipped"
    assert [c.path for c in fake.calls].count(skip) == 2  # the failed call, the replayed one


def test_a_non_ascii_followup_id_is_delivered_with_its_header_encoded(tasks, rt) -> None:
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    rt._notifier = Notifier(rt.settings, transport=httpx.MockTransport(receiver))
    odd = note("fu_é\u200b%1", "needs_followup")
    result, logs = call(tasks[TASK_NOTIFY], "webhook", odd)
    assert [e["event"] for e in logs if e["event"].startswith("notification.")] == [
        "notification.delivered"
    ]
    [request] = seen
    assert request.headers[DELIVERY_HEADER] == f"fu_%C3%A9%E2%80%8B%251:{DUE}"
    assert json.loads(request.content)["deliveryId"] == f"fu_é\u200b%1:{DUE}"


def test_a_dead_lettered_notification_can_be_replayed(tasks, rt) -> None:
    answers = [httpx.Response(404), httpx.Response(200)]
    rt._notifier = Notifier(rt.settings, transport=httpx.MockTransport(lambda r: answers.pop(0)))
    call(tasks[TASK_NOTIFY], "webhook", note("fu_2", "new"))
    [entry] = rt.dlq.list()
    assert entry.id == f"notification:webhook:fu_2:{DUE}"
    assert rt.dlq.replay(entry.id)
    [message] = queued(rt, QUEUE_FOLLOWUPS)
    call(tasks[TASK_NOTIFY], *args_of(message))
    assert answers == []


def test_a_key_that_cannot_go_in_a_header_is_a_loud_permanent_auth_error() -> None:
    fake = FakeLeadterra(workspace_key="sk_live_zero\u200bwidth")
    client = fake.client()
    with pytest.raises(errors.AuthError) as caught:
        client.with_key(SecretStr("sk_live_zero\u200bwidth")).list_sdrs()
    assert "zero" not in str(caught.value)
    assert fake.calls == []


def test_the_polls_threads_keep_the_tasks_deadline(rt, fake) -> None:
    fake.sdr_keys = {"sdr_1": "sk_sdr_one_123456"}
    rt = Runtime(
        make_settings(
            redis_url=rt.settings.redis_url,
            leadterra_api_key=KEY,
            leadterra_sdr_api_keys=fake.sdr_keys,
        ),
        client=rt.redis,
        leadterra=fake.client(),
    )
    with capture_logs() as logs, budget.deadline_in(-1.0):
        result = poll(rt, lambda note: None)
    assert result.polled == 0
    assert [e["error_type"] for e in logs if e["event"] == "followups.poll_failed"] == ["OutOfTime"]
    assert fake.calls == []


def test_a_periodic_task_that_keeps_failing_keeps_one_dead_letter_not_one_per_run(app, rt) -> None:
    def tick(task: Task) -> None:
        raise OddError("still broken")

    periodic = boom_task(app, rt, tick)
    for run in range(3):
        call(periodic, retries=3, task_id=f"run-{run}")
    [entry] = rt.dlq.list()
    assert entry.id == "reply:test.tick"
    assert entry.task_id == "run-2"
