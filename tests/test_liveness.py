"""Who holds each unacked message (worker/jobs/liveness.py, worker/jobs/broker.py `QoS`): the
holder is recorded with kombu's entry and forgotten with it, and a dead worker's messages go back
to the head of their queue once, while a live worker's stay where they are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from kombu import Connection, Exchange, Queue
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker.deadline import wait_until
from worker.embedded_redis import EmbeddedRedis
from worker.jobs.liveness import ALIVE_TTL, HOLDER_OPTION, Liveness, restorable, restore_dead
from worker.jobs.orphans import recover, reply_in
from worker.jobs.queueing import assign_message, task_message
from worker.keys import QUEUE_ASSIGN, QUEUE_DEFAULT, Keys, text
from worker.runtime import Runtime

KEYS = Keys("test:")
DEAD, LIVE = "leadrouter-1@dead", "leadrouter-2@live"


def hold(client: redis.Redis, tag: str, raw: str, worker: str, queue: str = QUEUE_ASSIGN) -> None:
    """What our QoS writes when `worker` takes a message: kombu's entry and its holder."""
    client.hset(KEYS.unacked, tag, json.dumps([json.loads(raw), "", queue]))
    client.zadd(KEYS.unacked_index, {tag: 1.0})
    client.hset(KEYS.unacked_holders, tag, worker)


def queued(client: redis.Redis, queue: str = QUEUE_ASSIGN) -> list[dict[str, Any]]:
    """The queue's messages, the next one a worker takes (BRPOP's end) first."""
    return [json.loads(raw) for raw in reversed(client.lrange(KEYS.queue(queue), 0, -1))]


def left(client: redis.Redis) -> tuple[int, int, int]:
    return (
        int(client.hlen(KEYS.unacked)),
        int(client.zcard(KEYS.unacked_index)),
        int(client.hlen(KEYS.unacked_holders)),
    )


def test_a_dead_workers_messages_go_back_to_the_head_of_their_queue_once(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    fake_redis.lpush(KEYS.queue(QUEUE_ASSIGN), assign_message({"id": "rpl_backlog"}))
    raw = assign_message({"id": "rpl_held"})
    hold(fake_redis, "tag-1", raw, DEAD)
    [restored] = restore_dead(fake_redis, KEYS)
    assert (restored.tag, restored.worker, restored.queue) == ("tag-1", DEAD, QUEUE_ASSIGN)
    first, second = queued(fake_redis)
    assert reply_in(json.dumps(first)) == "rpl_held"  # ahead of the backlog, as kombu puts it
    assert first["headers"]["redelivered"] is True  # so the delivery count applies
    assert first["properties"]["delivery_info"]["redelivered"] is True
    held = json.loads(raw)["properties"]["delivery_tag"]
    assert first["properties"]["delivery_tag"] not in (held, "tag-1")  # a tag of its own
    assert reply_in(json.dumps(second)) == "rpl_backlog"
    assert left(fake_redis) == (0, 0, 0)
    assert restore_dead(fake_redis, KEYS) == []
    assert len(queued(fake_redis)) == 2


def test_a_live_workers_messages_stay_until_it_stops_beating(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    liveness = Liveness(fake_redis, KEYS, LIVE)
    liveness.beat()
    hold(fake_redis, "tag-1", assign_message({"id": "rpl_1"}), LIVE)
    hold(fake_redis, "tag-2", assign_message({"id": "rpl_2"}), DEAD)
    assert [r.tag for r in restore_dead(fake_redis, KEYS)] == ["tag-2"]
    assert left(fake_redis) == (1, 1, 1)
    assert 0 < fake_redis.pttl(KEYS.worker_alive(LIVE)) <= ALIVE_TTL * 1000
    fake_redis.delete(KEYS.worker_alive(LIVE))  # what the TTL does once it stops beating
    assert [r.tag for r in restore_dead(fake_redis, KEYS)] == ["tag-1"]
    assert left(fake_redis) == (0, 0, 0)


def test_an_entry_acknowledged_meanwhile_is_not_pushed_and_its_holder_is_forgotten(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    hold(fake_redis, "tag-1", assign_message({"id": "rpl_1"}), DEAD)
    fake_redis.hdel(KEYS.unacked, "tag-1")  # an ack kombu wrote without our QoS
    assert restore_dead(fake_redis, KEYS) == []
    assert queued(fake_redis) == []
    assert not fake_redis.hexists(KEYS.unacked_holders, "tag-1")


def test_what_is_not_ours_to_restore_is_left_to_kombus_timeout(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    hold(fake_redis, "tag-1", assign_message({"id": "rpl_1"}), DEAD, queue="someone_elses")
    high = json.loads(assign_message({"id": "rpl_2"}))
    high["properties"]["priority"] = 9
    hold(fake_redis, "tag-2", json.dumps(high), DEAD)
    assert restore_dead(fake_redis, KEYS) == []
    assert left(fake_redis) == (2, 2, 2)
    assert restorable(b"not json") is None
    assert restorable(json.dumps({"not": "a list"})) is None


def test_a_restored_beat_task_goes_back_to_its_own_queue(fake_redis: fakeredis.FakeRedis) -> None:
    raw = task_message("leadrouter.release_due", [], queue=QUEUE_DEFAULT)
    hold(fake_redis, "tag-1", raw, DEAD, queue=QUEUE_DEFAULT)
    [restored] = restore_dead(fake_redis, KEYS)
    assert restored.queue == QUEUE_DEFAULT
    assert [m["headers"]["task"] for m in queued(fake_redis, QUEUE_DEFAULT)] == [
        "leadrouter.release_due"
    ]


def test_recovery_restores_a_dead_workers_messages_and_says_so(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    rt = Runtime(make_settings(), client=fake_redis, leadterra=FakeLeadterra().client())
    hold(fake_redis, "tag-1", assign_message({"id": "rpl_1"}), DEAD)
    with capture_logs() as logs:
        result = recover(rt)
    assert (result.restored, result.redelivered) == (1, 0)
    [event] = [e for e in logs if e["event"] == "message.restored"]
    assert event["reply_id"] == "rpl_1" and event["worker"] == DEAD
    assert event["task"] == "leadrouter.assign_reply" and event["log_level"] == "warning"


def test_a_started_worker_is_alive_at_once_and_keeps_beating(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    liveness = Liveness(fake_redis, KEYS, LIVE, every=0.01).start()
    try:
        assert fake_redis.exists(KEYS.worker_alive(LIVE))  # before any message is taken
        fake_redis.delete(KEYS.worker_alive(LIVE))
        wait_until(lambda: fake_redis.exists(KEYS.worker_alive(LIVE)), 10, 0.01, what="a beat")
    finally:
        liveness.stop()


class Refusing:
    def set(self, *args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("down")


def test_a_beat_redis_refuses_is_logged_once_until_it_answers_again() -> None:
    liveness = Liveness(Refusing(), KEYS, LIVE)  # type: ignore[arg-type]
    with capture_logs() as logs:
        liveness.beat()
        liveness.beat()
    assert [e["event"] for e in logs] == ["worker.liveness_failed"]


# -- the QoS against kombu's own transport, on a real Redis ------------------------------------


@pytest.fixture
def broker(redis_server: EmbeddedRedis, real_redis: redis.Redis) -> Iterator[Connection]:
    options = {"global_keyprefix": KEYS.prefix, HOLDER_OPTION: DEAD}
    connection = Connection(
        redis_server.url, transport="worker.jobs.broker:Transport", transport_options=options
    )
    yield connection
    connection.release()


def publish_and_take(connection: Connection) -> Any:
    queue = Queue(QUEUE_ASSIGN, Exchange(QUEUE_ASSIGN), QUEUE_ASSIGN)
    channel = connection.channel()
    producer = connection.Producer(channel)
    producer.publish({"n": 1}, exchange=queue.exchange, routing_key=QUEUE_ASSIGN, declare=[queue])
    message = queue(channel).get(no_ack=False)
    assert message is not None
    return message


def test_the_transport_records_the_holder_with_kombus_entry_and_drops_both_on_ack(
    broker: Connection, real_redis: redis.Redis
) -> None:
    message = publish_and_take(broker)
    tag = message.delivery_tag
    assert text(real_redis.hget(KEYS.unacked_holders, tag)) == DEAD
    assert real_redis.hexists(KEYS.unacked, tag) and real_redis.zscore(KEYS.unacked_index, tag)
    message.ack()
    assert left(real_redis) == (0, 0, 0)


def test_a_dead_holders_message_is_taken_again_and_a_late_ack_leaves_the_copy_alone(
    broker: Connection, real_redis: redis.Redis
) -> None:
    first = publish_and_take(broker)  # held by DEAD, which never beat
    assert len(restore_dead(real_redis, KEYS)) == 1
    assert left(real_redis) == (0, 0, 0)
    again = Queue(QUEUE_ASSIGN, Exchange(QUEUE_ASSIGN), QUEUE_ASSIGN)(broker.channel()).get()
    assert again is not None and again.payload == {"n": 1}
    assert again.delivery_info["redelivered"] is True
    assert again.delivery_tag != first.delivery_tag
    first.ack()  # DEAD was only starved: its ack comes late
    assert left(real_redis) == (1, 1, 1)  # the copy is still held, and by whom
    again.ack()
    assert left(real_redis) == (0, 0, 0)


def test_a_process_without_a_holder_records_none(
    redis_server: EmbeddedRedis, real_redis: redis.Redis
) -> None:
    options = {"global_keyprefix": KEYS.prefix}
    with Connection(
        redis_server.url, transport="worker.jobs.broker:Transport", transport_options=options
    ) as connection:
        message = publish_and_take(connection)
        assert real_redis.hlen(KEYS.unacked) == 1
        assert real_redis.hlen(KEYS.unacked_holders) == 0
        assert restore_dead(real_redis, KEYS) == []
        message.reject(requeue=True)  # kombu's own restore, through our QoS
    assert left(real_redis) == (0, 0, 0)
