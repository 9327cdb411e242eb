"""Beat's lease (worker/jobs/beat_lease.py): one process sends the schedule at a time."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis
from celery import Celery

from worker.deadline import wait_until
from worker.jobs.beat_lease import BeatLease, LeasedScheduler, leased

KEY = "t:beat:leader"


def lease(client: redis.Redis, holder: str, ttl_ms: int = 10_000) -> BeatLease:
    return BeatLease(client, KEY, holder, ttl_ms)


def test_one_holder_at_a_time_renewed_while_it_ticks(fake_redis: fakeredis.FakeRedis) -> None:
    first, second = lease(fake_redis, "w1"), lease(fake_redis, "w2")
    assert first.hold() and not second.hold()
    assert first.hold() and not second.hold()  # renewed, still its
    assert fake_redis.get(KEY) == b"w1"
    assert 9_000 < fake_redis.pttl(KEY) <= 10_000


def test_a_holder_that_stops_renewing_is_replaced_after_the_ttl(real_redis: redis.Redis) -> None:
    first, second = lease(real_redis, "w1", ttl_ms=200), lease(real_redis, "w2", ttl_ms=200)
    assert first.hold()
    wait_until(second.hold, 5, 0.02, what="the lease taken over")
    assert not first.hold()  # the first learns it lost the lease and sends nothing
    assert real_redis.get(KEY) == b"w2"


def test_release_gives_the_lease_up_only_if_held(fake_redis: fakeredis.FakeRedis) -> None:
    first, second = lease(fake_redis, "w1"), lease(fake_redis, "w2")
    assert first.hold()
    second.release()  # never held: nothing deleted
    assert fake_redis.get(KEY) == b"w1"
    first.release()
    assert fake_redis.get(KEY) is None
    assert second.hold()


def test_redis_unavailable_means_not_holding() -> None:
    down = redis.Redis(port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    assert lease(down, "w1").hold() is False


def test_lease_changes_are_logged_once_each(fake_redis: fakeredis.FakeRedis, capsys: Any) -> None:
    first = lease(fake_redis, "w1")
    first.hold()
    first.hold()
    fake_redis.set(KEY, "someone-else")
    first.hold()
    out = capsys.readouterr().out + capsys.readouterr().err
    assert out.count("beat.leading") == 1
    assert out.count("beat.following") == 1


class Recording(LeasedScheduler):
    sent: list[str]

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        self.sent.append(entry.name)


@pytest.fixture
def app() -> Celery:
    app = Celery("beat-lease-test", broker="memory://")
    app.conf.beat_schedule = {"every-tick": {"task": "t.x", "schedule": 0.001}}
    return app


def scheduler(app: Celery, held: BeatLease, sent: list[str]) -> LeasedScheduler:
    cls = type("R", (Recording, leased(held)), {"sent": sent})
    return cls(app=app, max_interval=1)


def test_only_the_holder_sends(app: Celery, fake_redis: fakeredis.FakeRedis) -> None:
    sent_1: list[str] = []
    sent_2: list[str] = []
    first = scheduler(app, lease(fake_redis, "w1"), sent_1)
    second = scheduler(app, lease(fake_redis, "w2"), sent_2)
    wait_until(lambda: first.tick() is not None and sent_1, 5, 0.01, what="a send")
    assert second.tick() == 1.0
    assert sent_2 == []
    first.close()  # a clean stop gives the lease up: the other sends at its next tick
    wait_until(lambda: second.tick() is not None and sent_2, 5, 0.01, what="the other's send")
    assert sent_2 == ["every-tick"] * len(sent_2)
