"""worker/jobs/deadletter.py against fakeredis: entries page through the whole index, replay and
drop act on every one, and a dead-lettered or dropped reply is no longer held."""

from __future__ import annotations

import base64
import json
from typing import Any

import fakeredis
import pytest

from worker.jobs import deadletter
from worker.jobs.deadletter import DeadLetter, DeadLetters
from worker.keys import QUEUE_ASSIGN, QUEUE_DEFAULT, TASK_ASSIGN, TASK_NOTIFY, Keys

KEYS = Keys("test:")


@pytest.fixture
def store(fake_redis: fakeredis.FakeRedis) -> DeadLetters:
    return DeadLetters(fake_redis, KEYS)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadletter, "PAGE", 3)


def letter(n: int, task: str = TASK_ASSIGN, reply: Any = None) -> DeadLetter:
    args = [reply if reply is not None else {"id": f"rpl_{n}", "classification": "interested"}]
    return DeadLetter(
        id=f"reply:rpl_{n}",
        task=task,
        queue=QUEUE_ASSIGN,
        args=args,
        error="assign: answered 422",
        error_type="InvalidRequest",
        attempts=3,
        at=1_780_000_000.0 + n,
    )


def hold(client: fakeredis.FakeRedis, *reply_ids: str) -> None:
    for reply_id in reply_ids:
        client.hset(KEYS.held, reply_id, json.dumps({"since": 1.0, "reason": "no_eligible_sdr"}))


def held(client: fakeredis.FakeRedis) -> set[str]:
    return {k.decode() for k in client.hkeys(KEYS.held)}


def queued_ids(client: fakeredis.FakeRedis, queue: str = QUEUE_ASSIGN) -> list[str]:
    """The reply ids on `queue`, in the order a worker takes them (from the right)."""
    found = []
    for raw in reversed(client.lrange(KEYS.queue(queue), 0, -1)):
        args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
        found.append(args[0]["id"])
    return found


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 6, 7, 10])
def test_list_and_ids_page_through_every_entry_oldest_first(
    count: int, store: DeadLetters, small_pages: None
) -> None:
    store.add_many(letter(n) for n in reversed(range(count)))
    expected = [f"reply:rpl_{n}" for n in range(count)]
    assert store.ids() == expected
    assert [e.id for e in store.list()] == expected
    assert store.count() == count


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 6, 9, 50])
def test_a_limit_gives_the_oldest_entries(limit: int, store: DeadLetters, small_pages) -> None:
    store.add_many(letter(n) for n in range(8))
    assert store.ids(limit) == [f"reply:rpl_{n}" for n in range(min(limit, 8))]
    assert len(store.list(limit)) == min(limit, 8)


def test_replay_many_enqueues_every_entry_oldest_first_and_empties_the_list(
    store: DeadLetters, fake_redis: fakeredis.FakeRedis, small_pages: None
) -> None:
    store.add_many(letter(n) for n in range(10))
    assert store.replay_many(store.ids()) == 10
    assert queued_ids(fake_redis) == [f"rpl_{n}" for n in range(10)]
    assert store.count() == 0 and fake_redis.zcard(KEYS.dlq_index) == 0


def test_replay_many_skips_an_entry_gone_meanwhile(
    store: DeadLetters, fake_redis: fakeredis.FakeRedis
) -> None:
    store.add_many(letter(n) for n in range(3))
    ids = store.ids()
    store.drop("reply:rpl_1")
    assert store.replay_many([*ids, "reply:nope"]) == 2
    assert queued_ids(fake_redis) == ["rpl_0", "rpl_2"]


def test_replaying_one_entry_puts_it_on_its_own_queue(
    store: DeadLetters, fake_redis: fakeredis.FakeRedis
) -> None:
    entry = letter(1, task=TASK_NOTIFY, reply={"id": "rpl_1"})
    entry.queue = QUEUE_DEFAULT
    store.add(entry)
    assert store.replay(entry.id) is True
    assert store.replay(entry.id) is False
    assert queued_ids(fake_redis, QUEUE_DEFAULT) == ["rpl_1"]


# -- held replies ----------------------------------------------------------------------------


def test_dead_lettering_a_held_reply_releases_it(
    store: DeadLetters, fake_redis: fakeredis.FakeRedis
) -> None:
    hold(fake_redis, "rpl_1", "rpl_2")
    store.add(letter(1))
    assert held(fake_redis) == {"rpl_2"}


def test_dead_lettering_many_releases_each_of_their_replies(
    store: DeadLetters, fake_redis: fakeredis.FakeRedis
) -> None:
    hold(fake_redis, *(f"rpl_{n}" for n in range(5)))
    store.add_many(letter(n) for n in (0, 2, 4))
    assert held(fake_redis) == {"rpl_1", "rpl_3"}


def test_dropping_a_dead_letter_releases_its_reply(
    store: DeadLetters, fake_redis: fakeredis.FakeRedis
) -> None:
    store.add(letter(1))
    hold(fake_redis, "rpl_1")  # held again (an older entry, before this fix), then dropped
    assert store.drop("reply:rpl_1") is True
    assert held(fake_redis) == set()
    assert store.drop("reply:rpl_1") is False


def test_other_tasks_and_poison_release_nothing_they_do_not_name(
    store: DeadLetters, fake_redis: fakeredis.FakeRedis
) -> None:
    hold(fake_redis, "rpl_1", "fu_1:2026")
    notify = DeadLetter(
        id="notification:slack:fu_1:2026",
        task=TASK_NOTIFY,
        queue=QUEUE_DEFAULT,
        args=["slack", {"followup": {"id": "fu_1", "dueAt": "2026"}}],
        error="x",
        error_type="ServerError",
        attempts=3,
    )
    poison = DeadLetter(
        id="poison:abc", task="(undecodable)", queue="assign", args=["[not json"], error="x",
        error_type="PoisonMessage", attempts=1,
    )  # fmt: skip
    store.add_many([notify, poison])
    assert held(fake_redis) == {"rpl_1", "fu_1:2026"}


@pytest.mark.parametrize(
    ("entry", "reply_id"),
    [
        (letter(1), "rpl_1"),
        (letter(1, reply={"id": 42}), "42"),  # numeric ids are held under their text
        (letter(1, reply="not a reply"), "rpl_1"),  # undecodable args: the entry id says it
        (DeadLetter("poison:ab", TASK_ASSIGN, "assign", ["x"], "e", "PoisonMessage", 1), None),
        (DeadLetter("route:fu_1:x", "leadrouter.route_followup", "f", [], "e", "E", 1), None),
    ],
)
def test_the_reply_an_entry_is_about(entry: DeadLetter, reply_id: str | None) -> None:
    assert entry.reply_id() == reply_id
