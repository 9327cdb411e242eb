"""`leadrouter_queue_wait_seconds`: every message is stamped with since when it may run, and the
task's start records the wait (worker/jobs/queuewait.py)."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from celery.exceptions import Retry

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker.jobs.celery_app import create_celery
from worker.jobs.queueing import assign_message, task_message
from worker.jobs.queuewait import observe_wait, queue_of, runnable_since
from worker.jobs.tasks import register
from worker.keys import ENQUEUED_AT_HEADER, QUEUE_ASSIGN, QUEUE_DEFAULT, TASK_ASSIGN, TASK_POLL
from worker.metrics import Metrics
from worker.runtime import Runtime

REPLY = {"id": "rpl_1", "email": "lead@acme.io", "classification": "interested"}


def request(**fields: Any) -> SimpleNamespace:
    return SimpleNamespace(**{"eta": None, "delivery_info": {}, **fields})


def stamped(**fields: Any) -> SimpleNamespace:
    return request(**{ENQUEUED_AT_HEADER: fields.pop("at"), **fields})


def wait_samples(metrics: Metrics, queue: str) -> tuple[float, float]:
    """(count, sum) of the queue's wait histogram."""
    values = {
        s.name: s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if family.name == "leadrouter_queue_wait_seconds" and s.labels.get("queue") == queue
    }
    return (
        values.get("leadrouter_queue_wait_seconds_count", 0.0),
        values.get("leadrouter_queue_wait_seconds_sum", 0.0),
    )


def test_a_message_we_write_is_stamped_now_unless_given_its_due_time() -> None:
    before = time.time()
    now = json.loads(task_message(TASK_POLL, [], queue=QUEUE_DEFAULT))["headers"]
    assert before <= now[ENQUEUED_AT_HEADER] <= time.time()
    due = json.loads(assign_message(REPLY, enqueued_at=before + 30))["headers"]
    assert due[ENQUEUED_AT_HEADER] == before + 30


def test_the_wait_counts_from_the_stamp_or_from_a_later_eta() -> None:
    later = datetime.now(UTC) + timedelta(seconds=20)
    assert runnable_since(stamped(at=100.0)) == 100.0
    assert runnable_since(stamped(at=100.0, eta=later.isoformat())) == later.timestamp()
    assert runnable_since(stamped(at=later.timestamp(), eta="2001-01-01T00:00:00")) == (
        later.timestamp()
    )
    naive = datetime(2030, 1, 1, 12, 0, 0)  # Celery's eta without a zone is UTC
    assert runnable_since(stamped(at=1.0, eta=naive.isoformat())) == (
        naive.replace(tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize("value", [None, "soon", math.nan, math.inf, [1]])
def test_a_message_without_a_readable_stamp_is_not_observed(value: Any) -> None:
    metrics = Metrics("w:1")
    assert observe_wait(metrics, stamped(at=value), QUEUE_ASSIGN) is None
    assert observe_wait(metrics, request(), QUEUE_ASSIGN) is None
    assert wait_samples(metrics, QUEUE_ASSIGN) == (0.0, 0.0)


def test_the_queue_label_is_the_routing_key_when_it_is_one_of_ours() -> None:
    assert queue_of(request(delivery_info={"routing_key": "followups"}), "default") == "followups"
    assert queue_of(request(delivery_info={"routing_key": "elsewhere"}), "default") == "default"
    assert queue_of(request(delivery_info=None), "assign") == "assign"


def test_a_stamp_from_a_clock_ahead_counts_as_no_wait() -> None:
    metrics = Metrics("w:1")
    assert observe_wait(metrics, stamped(at=time.time() + 60), QUEUE_ASSIGN) == 0.0
    assert wait_samples(metrics, QUEUE_ASSIGN) == (1.0, 0.0)


# -- through the tasks, on a real Redis ----------------------------------------------------------


@pytest.fixture
def fake() -> FakeLeadterra:
    return FakeLeadterra()


@pytest.fixture
def rt(redis_server, real_redis, fake) -> Runtime:
    settings = make_settings(redis_url=redis_server.url, retry_backoff_max=1.0, max_retries=3)
    return Runtime(settings, client=real_redis, leadterra=fake.client(), metrics=Metrics("w:1"))


@pytest.fixture
def app(rt):
    app = create_celery(rt.settings)
    yield app
    app.close()


@pytest.fixture
def assign(app, rt):
    """The registered assign task (not through `app.tasks`: finalizing the app would also pull
    in the shared tasks other test modules define)."""
    return register(app, rt)[TASK_ASSIGN]


def call(task, payload, *, stamp: float) -> Any:
    """Run the task as a worker would, for a message stamped `stamp` (its headers inherited)."""
    task.push_request(
        id="task-1",
        retries=0,
        called_directly=False,
        hostname="test@h",
        delivery_info={"routing_key": QUEUE_ASSIGN, "redelivered": False},
        is_eager=False,
        **{ENQUEUED_AT_HEADER: stamp},
    )
    try:
        return task(payload)
    finally:
        task.pop_request()


def test_a_task_start_records_its_wait_under_its_queue(assign, rt) -> None:
    before = time.time()
    call(assign, REPLY, stamp=before - 2.5)
    count, total = wait_samples(rt.metrics, QUEUE_ASSIGN)
    assert count == 1.0
    assert 2.5 <= total <= 2.5 + (time.time() - before)


def test_a_countdown_retry_is_stamped_anew_and_counts_from_its_eta(assign, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(503))
    before = time.time()
    with pytest.raises(Retry):
        call(assign, REPLY, stamp=100.0)
    [raw] = rt.redis.lrange(rt.keys.queue(QUEUE_ASSIGN), 0, -1)
    headers = json.loads(raw)["headers"]
    assert before <= headers[ENQUEUED_AT_HEADER] <= time.time()  # not the inherited 100.0
    eta = datetime.fromisoformat(headers["eta"]).timestamp()
    assert runnable_since(request(**headers)) == max(headers[ENQUEUED_AT_HEADER], eta)


def test_a_long_retry_and_a_held_reply_are_stamped_with_their_due_time(assign, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(429, headers={"Retry-After": "30"}))
    call(assign, REPLY, stamp=time.time())
    rt.holds.hold({"id": "rpl_2"}, "no_eligible_sdr", retries=0)
    entries = rt.redis.zrange(rt.keys.delayed, 0, -1, withscores=True)
    assert len(entries) == 2
    for member, due in entries:
        message = json.loads(member.decode().split("\n", 1)[1])
        assert message["headers"][ENQUEUED_AT_HEADER] == pytest.approx(due, abs=1e-3)


def test_what_our_celery_apps_publish_is_stamped_and_other_tasks_are_not(app, rt) -> None:
    before = time.time()
    app.send_task(TASK_POLL, queue=QUEUE_DEFAULT)
    app.send_task("someone_else.task", queue=QUEUE_DEFAULT)
    raw = rt.redis.lrange(rt.keys.queue(QUEUE_DEFAULT), 0, -1)
    headers = {h["task"]: h for h in (json.loads(m)["headers"] for m in raw)}
    assert before <= headers[TASK_POLL][ENQUEUED_AT_HEADER] <= time.time()
    assert ENQUEUED_AT_HEADER not in headers["someone_else.task"]
