import json

import httpx
import pytest
from celery.exceptions import Retry
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker.jobs.celery_app import create_celery
from worker.jobs.tasks import register
from worker.keys import QUEUE_ASSIGN, TASK_ASSIGN, TASK_CANARY
from worker.runtime import Runtime


@pytest.fixture
def fake() -> FakeLeadterra:
    return FakeLeadterra()


@pytest.fixture
def rt(redis_server, real_redis, fake) -> Runtime:
    settings = make_settings(
        redis_url=redis_server.url,
        max_retries=3,
        max_deliveries=2,
        retry_backoff_base=0.2,
        retry_backoff_max=1.0,
    )
    return Runtime(settings, client=real_redis, leadterra=fake.client())


@pytest.fixture
def task(rt):
    app = create_celery(rt.settings)
    tasks = register(app, rt)
    yield tasks[TASK_ASSIGN]
    app.close()


def call(task, payload, *, retries: int = 0, task_id: str = "task-1", redelivered: bool = False):
    task.push_request(
        id=task_id,
        retries=retries,
        called_directly=False,
        hostname="test@h",
        delivery_info={"routing_key": QUEUE_ASSIGN, "redelivered": redelivered},
        is_eager=False,
    )
    try:
        with capture_logs() as logs:
            result = task(payload)
        return result, logs
    finally:
        task.pop_request()


REPLY = {"id": "rpl_1", "email": "lead@acme.io", "classification": "interested", "acceptedAt": 1.0}


def queued(rt) -> list[dict]:
    return [json.loads(m) for m in rt.redis.lrange(rt.keys.queue(QUEUE_ASSIGN), 0, -1)]


def test_a_short_retryable_failure_is_a_broker_countdown_within_the_cap(task, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(503))
    with pytest.raises(Retry):
        call(task, REPLY)
    [message] = queued(rt)
    assert message["headers"]["retries"] == 1
    assert message["headers"]["eta"] is not None
    assert message["headers"]["argsrepr"] == "[rpl_1]"
    assert rt.delayed.count() == 0


def test_a_retry_after_longer_than_the_cap_waits_in_redis_not_in_the_broker(task, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(429, headers={"Retry-After": "30"}))
    result, logs = call(task, REPLY)
    assert result is None
    assert queued(rt) == []
    assert rt.delayed.count() == 1
    [(member, due)] = rt.redis.zrange(rt.keys.delayed, 0, -1, withscores=True)
    queue, message = member.decode().split("\n", 1)
    assert queue == QUEUE_ASSIGN
    assert json.loads(message)["headers"]["retries"] == 1
    [event] = [e for e in logs if e["event"] == "reply.retry"]
    assert event["held_in"] == "redis"
    assert event["delay_s"] >= 30


def test_used_up_retries_go_to_the_dead_letter_list_with_the_reason(task, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(503))
    result, logs = call(task, REPLY, retries=3)
    assert result is None
    [entry] = rt.dlq.list()
    assert entry.id == "reply:rpl_1"
    assert entry.attempts == 4
    assert entry.error_type == "ServerError"
    assert entry.args == [REPLY]
    assert any(
        e["event"] == "reply.dead_lettered" and e["reason"] == "retries used up" for e in logs
    )


def test_a_permanent_failure_is_dead_lettered_at_once(task, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(404, json={"error": {"code": "reply_not_found"}}))
    call(task, REPLY)
    [entry] = rt.dlq.list()
    assert entry.error_type == "NotFound"
    assert queued(rt) == []


def test_an_auth_failure_is_loud(task, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(401))
    _, logs = call(task, REPLY)
    assert any(e["event"] == "leadterra.auth_failed" and e["log_level"] == "critical" for e in logs)
    assert rt.dlq.list()[0].error_type == "AuthError"


@pytest.mark.parametrize("payload", ["garbage", {"no": "id"}, {"id": ""}, 42, None])
def test_a_payload_that_does_not_decode_is_dead_lettered_as_poison(task, rt, payload) -> None:
    call(task, payload)
    [entry] = rt.dlq.list()
    assert entry.error_type == "PoisonMessage"
    assert entry.args == [payload]


def test_a_message_that_keeps_coming_back_is_dead_lettered(task, rt, fake) -> None:
    # the first delivery and one redelivery died mid-run; this is the second redelivery
    rt.count_delivery("task-9", 0)
    call(task, REPLY, task_id="task-9", redelivered=True)
    assert fake.assigns() == []
    [entry] = rt.dlq.list()
    assert entry.error_type == "PoisonMessage"
    assert "delivered 3 times" in entry.error


def test_a_first_delivery_is_not_counted_a_redelivery_is(task, rt, fake) -> None:
    call(task, REPLY, task_id="task-10")
    assert rt.redis.keys(rt.keys.deliveries("task-10", 0)) == []
    call(task, {**REPLY, "id": "rpl_2"}, task_id="task-11", redelivered=True)
    assert rt.redis.get(rt.keys.deliveries("task-11", 0)) == b"1"
    assert len(fake.assigns()) == 2


def test_a_replayed_dead_letter_is_assigned_once_the_fault_is_fixed(task, rt, fake) -> None:
    fake.assign_script.append(httpx.Response(503))
    call(task, REPLY, retries=3)
    assert rt.dlq.replay("reply:rpl_1")
    assert rt.dlq.list() == []
    [message] = queued(rt)
    assert message["headers"]["retries"] == 0
    import base64

    [args, _, _] = json.loads(base64.b64decode(message["body"]))
    assert call(task, args[0], task_id=message["headers"]["id"])[0] == "assigned"
    assert call(task, args[0], task_id="again")[0] == "duplicate"
    assert len(fake.assigns()) == 2  # the failed call and the replayed one


def test_the_canary_task_stamps_the_heartbeat_through_its_own_runtime(rt) -> None:
    app = create_celery(rt.settings)
    canary = register(app, rt)[TASK_CANARY]
    canary.push_request(id="c-1", retries=0, hostname="worker@h", delivery_info={})
    try:
        assert canary() is None
    finally:
        canary.pop_request()
        app.close()
    assert rt.redis.get(rt.keys.heartbeat).decode().endswith("|worker@h")
