"""worker/jobs/holds.py against fakeredis: a held reply is recorded, re-queued after the recheck
delay, and keeps its first `since` however often it is held again."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import fakeredis
import pytest

from worker.jobs.holds import Holds
from worker.jobs.queueing import Delayed
from worker.keys import QUEUE_ASSIGN, Keys

KEYS = Keys("test:")
RECHECK = 30.0
ASSIGN_TASK = "leadrouter.assign_reply"  # the wire name: messages queued before a deploy


@pytest.fixture
def delayed(fake_redis: fakeredis.FakeRedis) -> Delayed:
    return Delayed(fake_redis, KEYS)


@pytest.fixture
def holds(fake_redis: fakeredis.FakeRedis, delayed: Delayed) -> Holds:
    return Holds(fake_redis, KEYS, delayed, RECHECK)


def reply(reply_id: str = "rpl_1") -> dict[str, Any]:
    return {"id": reply_id, "email": "lead@acme.io", "classification": "interested"}


def waiting(client: fakeredis.FakeRedis) -> list[tuple[str, dict[str, Any], float]]:
    """The delayed set: (queue, decoded message, due time) for each entry."""
    entries = []
    for member, due in client.zrange(KEYS.delayed, 0, -1, withscores=True):
        queue, message = member.decode().split("\n", 1)
        entries.append((queue, json.loads(message), due))
    return entries


def test_a_held_reply_is_listed_with_since_reason_and_last_check(holds: Holds) -> None:
    before = time.time()
    holds.hold(reply(), "no_eligible_sdr", retries=0)
    after = time.time()
    held = holds.list()
    assert list(held) == ["rpl_1"]
    entry = held["rpl_1"]
    assert entry["reason"] == "no_eligible_sdr"
    assert before <= entry["since"] <= after
    assert before <= entry["checked"] <= after


def test_a_held_reply_waits_in_the_delayed_set_for_the_recheck_delay(
    holds: Holds, fake_redis: fakeredis.FakeRedis
) -> None:
    before = time.time()
    holds.hold(reply(), "no_eligible_sdr", retries=2)
    after = time.time()
    [(queue, message, due)] = waiting(fake_redis)
    assert queue == QUEUE_ASSIGN
    assert before + RECHECK <= due <= after + RECHECK
    assert message["headers"]["task"] == ASSIGN_TASK
    assert message["headers"]["retries"] == 2
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([reply()], {})


def test_the_held_message_goes_back_on_the_assign_queue_once_the_recheck_is_due(
    holds: Holds, delayed: Delayed, fake_redis: fakeredis.FakeRedis
) -> None:
    holds.hold(reply(), "no_eligible_sdr", retries=0)
    assert delayed.release_due(now=time.time()) == 0
    assert fake_redis.llen(KEYS.queue(QUEUE_ASSIGN)) == 0
    assert delayed.release_due(now=time.time() + RECHECK + 1) == 1
    [raw] = fake_redis.lrange(KEYS.queue(QUEUE_ASSIGN), 0, -1)
    assert json.loads(raw)["headers"]["task"] == ASSIGN_TASK
    assert delayed.count() == 0
    assert "rpl_1" in holds.list()  # released from the wait, still held until assigned


def test_holding_again_keeps_the_first_since_and_updates_the_reason(
    holds: Holds, fake_redis: fakeredis.FakeRedis
) -> None:
    long_ago = {"since": 1_000.0, "reason": "no_eligible_sdr", "checked": 1_000.0}
    fake_redis.hset(KEYS.held, "rpl_1", json.dumps(long_ago))
    holds.hold(reply(), "all_sdrs_at_daily_cap", retries=1)
    entry = holds.list()["rpl_1"]
    assert entry["since"] == 1_000.0
    assert entry["reason"] == "all_sdrs_at_daily_cap"
    assert entry["checked"] > 1_000.0


def test_each_reply_is_held_under_its_own_id(holds: Holds) -> None:
    holds.hold(reply("rpl_1"), "no_eligible_sdr", retries=0)
    holds.hold(reply("rpl_2"), "all_sdrs_at_daily_cap", retries=0)
    assert {k: v["reason"] for k, v in holds.list().items()} == {
        "rpl_1": "no_eligible_sdr",
        "rpl_2": "all_sdrs_at_daily_cap",
    }


def test_nothing_held_lists_empty(holds: Holds) -> None:
    assert holds.list() == {}


def test_a_numeric_reply_id_is_held_under_its_text(holds: Holds) -> None:
    holds.hold({"id": 42, "email": "lead@acme.io"}, "no_eligible_sdr", retries=0)
    assert list(holds.list()) == ["42"]


def test_holds_live_under_the_key_prefix(holds: Holds, fake_redis: fakeredis.FakeRedis) -> None:
    holds.hold(reply(), "no_eligible_sdr", retries=0)
    other = Keys("other:")
    neighbour = Holds(fake_redis, other, Delayed(fake_redis, other), RECHECK)
    assert fake_redis.hexists("test:held", "rpl_1")
    assert neighbour.list() == {}


def test_a_held_reply_dead_lettered_or_dropped_is_no_longer_held(
    holds: Holds, fake_redis: fakeredis.FakeRedis
) -> None:
    """Dead-lettering (whoever calls it) and `dlq drop` release the hold, so the held-replies
    gauges read only replies still waiting."""
    from worker.jobs.deadletter import DeadLetter, DeadLetters

    store = DeadLetters(fake_redis, KEYS)
    for reply_id in ("rpl_1", "rpl_2", "rpl_3"):
        holds.hold(reply(reply_id), "no_eligible_sdr", retries=0)
    letter = DeadLetter("reply:rpl_1", ASSIGN_TASK, QUEUE_ASSIGN, [reply("rpl_1")], "e", "E", 3)
    store.add(letter)
    assert sorted(holds.list()) == ["rpl_2", "rpl_3"]
    store.add(DeadLetter("reply:rpl_2", ASSIGN_TASK, QUEUE_ASSIGN, [reply("rpl_2")], "e", "E", 3))
    holds.hold(reply("rpl_2"), "no_eligible_sdr", retries=0)  # held again meanwhile
    assert store.drop("reply:rpl_2")
    assert sorted(holds.list()) == ["rpl_3"]
