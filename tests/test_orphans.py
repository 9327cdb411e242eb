"""Lost assign messages (worker/jobs/orphans.py) against fakeredis: every enqueue keeps its
message in flight until an outcome or a dead letter settles it, and `recover` sends again what a
killed worker lost, and nothing else."""

from __future__ import annotations

import json
import time

import fakeredis
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from tests.test_web import body_for, post, sign
from worker.jobs.deadletter import DeadLetter
from worker.jobs.orphans import ORPHAN_AFTER_SECONDS, recover, reply_in
from worker.jobs.queueing import assign_message, enqueue_once
from worker.keys import QUEUE_ASSIGN, TASK_ASSIGN, Keys, text
from worker.receiver.web import create_app
from worker.routing.assign import assign
from worker.runtime import Runtime

KEYS = Keys("test:")
LATER = ORPHAN_AFTER_SECONDS + 1


@pytest.fixture
def rt(fake_redis: fakeredis.FakeRedis) -> Runtime:
    return Runtime(make_settings(), client=fake_redis, leadterra=FakeLeadterra().client())


def enqueue(rt: Runtime, *ids: str) -> list[bool]:
    payloads = [{"id": i, "email": f"{i}@acme.io", "source": "webhook"} for i in ids]
    return enqueue_once(rt.redis, rt.keys, payloads, 3600)


def in_flight(rt: Runtime) -> dict[str, float]:
    return {text(k): float(v) for k, v in rt.redis.zrange(KEYS.inflight_at, 0, -1, withscores=True)}


def queued(rt: Runtime) -> list[str]:
    return [str(reply_in(raw)) for raw in rt.redis.lrange(KEYS.queue(QUEUE_ASSIGN), 0, -1)]


def lose(rt: Runtime, reply_id: str) -> None:
    """What a worker killed between BRPOP and its unacked write leaves: no message anywhere."""
    queue = KEYS.queue(QUEUE_ASSIGN)
    for raw in rt.redis.lrange(queue, 0, -1):
        if reply_in(raw) == reply_id:
            rt.redis.lrem(queue, 1, raw)


def test_an_enqueue_keeps_the_message_in_flight_and_an_outcome_settles_it(rt: Runtime) -> None:
    assert enqueue(rt, "rpl_1", "rpl_2") == [True, True]
    assert enqueue(rt, "rpl_1") == [False]  # a duplicate changes nothing
    assert set(in_flight(rt)) == {"rpl_1", "rpl_2"}
    kept = rt.redis.hget(KEYS.inflight, "rpl_1")
    assert kept is not None and reply_in(kept) == "rpl_1"
    assert assign(rt, {"id": "rpl_1"}, attempt=1, retries=0) == "assigned"
    assert set(in_flight(rt)) == {"rpl_2"}
    assert not rt.redis.hexists(KEYS.inflight, "rpl_1")


def test_a_dead_letter_settles_it_and_a_replay_puts_it_back_in_flight(rt: Runtime) -> None:
    enqueue(rt, "rpl_1")
    entry = DeadLetter("reply:rpl_1", TASK_ASSIGN, QUEUE_ASSIGN, [{"id": "rpl_1"}], "e", "E", 5)
    rt.dlq.add(entry)
    assert in_flight(rt) == {}
    assert rt.dlq.replay("reply:rpl_1")
    assert set(in_flight(rt)) == {"rpl_1"}


def test_a_lost_message_is_sent_again_once(rt: Runtime) -> None:
    enqueue(rt, "rpl_1", "rpl_2")
    lose(rt, "rpl_1")
    now = time.time()
    assert recover(rt, now=now).redelivered == 0  # too young: it may be on its way
    with capture_logs() as logs:
        result = recover(rt, now=now + LATER)
    assert (result.looked_at, result.redelivered) == (2, 1)
    assert sorted(queued(rt)) == ["rpl_1", "rpl_2"]
    [event] = [e for e in logs if e["event"] == "reply.redelivered"]
    assert event["reply_id"] == "rpl_1" and event["log_level"] == "warning"
    # both are known to be somewhere now: nothing more until they are old again
    assert recover(rt, now=now + LATER + 1).redelivered == 0
    assert sorted(queued(rt)) == ["rpl_1", "rpl_2"]
    # the redelivered message is the one first enqueued, and assigns like it
    assert assign(rt, {"id": "rpl_1"}, attempt=1, retries=0) == "assigned"


@pytest.mark.parametrize("where", ["unacked", "delayed", "done", "dead_letter"])
def test_a_reply_accounted_for_is_not_sent_again(where: str, rt: Runtime) -> None:
    enqueue(rt, "rpl_1")
    lose(rt, "rpl_1")
    raw = assign_message({"id": "rpl_1"})
    if where == "unacked":  # kombu's entry: [message, exchange, routing key]
        rt.redis.hset(KEYS.unacked, "tag-1", json.dumps([json.loads(raw), "", QUEUE_ASSIGN]))
    elif where == "delayed":
        rt.redis.zadd(KEYS.delayed, {f"{QUEUE_ASSIGN}\n{raw}": time.time() + 300})
    elif where == "done":
        rt.redis.set(KEYS.done("rpl_1"), json.dumps({"outcome": "assigned"}))
    else:
        rt.redis.hset(KEYS.dlq, "reply:rpl_1", "{}")
    with capture_logs() as logs:
        result = recover(rt, now=time.time() + LATER)
    assert result.redelivered == 0 and queued(rt) == []
    assert not [e for e in logs if e["event"] == "reply.redelivered"]
    settled = where in ("done", "dead_letter")
    assert (result.settled, "rpl_1" in in_flight(rt)) == (int(settled), not settled)


def test_one_recovery_at_a_time(rt: Runtime) -> None:
    lock = rt.redis.lock(KEYS.orphans_lock, timeout=30)
    assert lock.acquire(blocking=False)
    assert recover(rt).skipped_lock
    lock.release()
    assert not recover(rt).skipped_lock


def test_reply_in_reads_every_shape_a_message_is_kept_in() -> None:
    raw = assign_message({"id": "rpl_7"})
    assert reply_in(raw) == "rpl_7"
    assert reply_in(json.dumps([json.loads(raw), "", QUEUE_ASSIGN])) == "rpl_7"
    assert reply_in(b"not json") is None
    assert reply_in(json.dumps({"body": "????"})) is None


def test_the_receivers_enqueue_keeps_its_message_in_flight_too(
    fake_server: fakeredis.FakeServer, rt: Runtime
) -> None:
    app = create_app(make_settings(), client=fakeredis.FakeAsyncRedis(server=fake_server))
    body = body_for("rpl_9")
    assert post(TestClient(app), body, sign(body)).status_code == 202
    assert set(in_flight(rt)) == {"rpl_9"}
    lose(rt, "rpl_9")
    assert recover(rt, now=time.time() + LATER).redelivered == 1
    assert queued(rt) == ["rpl_9"]


def test_a_backlog_on_the_queue_is_accounted_for_without_decoding_it(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stale reply's kept message is on the queue byte for byte: nothing is decoded."""
    ids = [f"rpl_{i}" for i in range(50)]
    enqueue(rt, *ids)
    decoded: list[object] = []

    def counting(raw: bytes | str) -> str | None:
        decoded.append(raw)
        return reply_in(raw)

    monkeypatch.setattr("worker.jobs.orphans.reply_in", counting)
    now = time.time() + LATER
    result = recover(rt, now=now)
    assert (result.looked_at, result.redelivered) == (50, 0)
    assert decoded == []
    assert set(in_flight(rt).values()) == {now}  # looked at again only once old again


def test_a_queued_message_that_differs_from_the_kept_one_is_found_by_decoding(
    rt: Runtime,
) -> None:
    """A retry's message (other bytes, the same reply) on the queue: the reply is not lost."""
    enqueue(rt, "rpl_1", "rpl_2")
    lose(rt, "rpl_1")
    rt.redis.lpush(KEYS.queue(QUEUE_ASSIGN), assign_message({"id": "rpl_1"}, retries=1))
    result = recover(rt, now=time.time() + LATER)
    assert (result.looked_at, result.redelivered) == (2, 0)
    assert sorted(queued(rt)) == ["rpl_1", "rpl_2"]
