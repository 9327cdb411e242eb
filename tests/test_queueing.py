import base64
import json

import pytest
from celery import Celery

from worker.jobs.queueing import Delayed, assign_message, task_message, uuid4_text
from worker.keys import ENQUEUED_AT_HEADER, TASK_ASSIGN, Keys

KEYS = Keys("test:")


def celery_published(real_redis_url: str) -> dict:
    import redis

    app = Celery(broker=real_redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"global_keyprefix": "test:"},
    )
    app.send_task(TASK_ASSIGN, args=[{"id": "rpl_1"}], queue="assign", task_id="t-1")
    client = redis.Redis.from_url(real_redis_url)
    [raw] = client.lrange("test:assign", 0, -1)
    return json.loads(raw)


def test_our_message_has_the_shape_celery_itself_publishes(redis_server, real_redis) -> None:
    theirs = celery_published(redis_server.url)
    ours = json.loads(task_message(TASK_ASSIGN, [{"id": "rpl_1"}], queue="assign", task_id="t-1"))
    assert set(ours) == set(theirs)
    # our one header more: stamped on Celery's side only by our own apps' publish hook
    assert set(ours["headers"]) - {ENQUEUED_AT_HEADER} == set(theirs["headers"]) - {
        ENQUEUED_AT_HEADER
    }
    assert isinstance(ours["headers"][ENQUEUED_AT_HEADER], float)
    assert set(ours["properties"]) == set(theirs["properties"])
    for field in ("task", "id", "root_id", "retries", "lang", "eta", "expires", "group"):
        assert ours["headers"][field] == theirs["headers"][field], field
    assert ours["properties"]["delivery_info"] == theirs["properties"]["delivery_info"]
    assert ours["properties"]["body_encoding"] == theirs["properties"]["body_encoding"]
    assert ours["content-type"] == theirs["content-type"]
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(
        base64.b64decode(theirs["body"])
    )


def test_the_assign_message_repr_names_the_reply_not_the_address() -> None:
    message = json.loads(assign_message({"id": "rpl_9", "email": "lead@acme.io"}))
    assert message["headers"]["argsrepr"] == "[reply rpl_9]"
    assert "lead@acme.io" not in json.dumps(message["headers"])


def test_each_message_gets_its_own_task_id_and_delivery_tag() -> None:
    one = json.loads(assign_message({"id": "r"}))
    two = json.loads(assign_message({"id": "r"}))
    assert one["headers"]["id"] != two["headers"]["id"]
    assert one["properties"]["delivery_tag"] != two["properties"]["delivery_tag"]


def test_delayed_messages_are_released_only_when_due(real_redis) -> None:
    delayed = Delayed(real_redis, KEYS)
    delayed.add("assign", "early", 100.0)
    delayed.add("assign", "late", 200.0)
    delayed.add("followups", "other\nqueue", 150.0)
    assert delayed.release_due(now=50.0) == 0
    assert delayed.release_due(now=160.0) == 2
    assert real_redis.lrange("test:assign", 0, -1) == [b"early"]
    assert real_redis.lrange("test:followups", 0, -1) == [b"other\nqueue"]
    assert delayed.count() == 1


def test_two_releasers_never_release_a_message_twice(real_redis) -> None:
    from concurrent.futures import ThreadPoolExecutor

    delayed = Delayed(real_redis, KEYS)
    for i in range(500):
        delayed.add("assign", f"m{i}", float(i))
    with ThreadPoolExecutor(4) as pool:
        moved = sum(
            pool.map(lambda _: Delayed(real_redis, KEYS).release_due(now=1e9, limit=50), range(40))
        )
    assert moved == 500
    messages = real_redis.lrange("test:assign", 0, -1)
    assert len(messages) == len(set(messages)) == 500


def _laid_out_in_full(
    task: str, args: list, *, queue: str, task_id: str, retries: int, argsrepr: str, at: float
) -> str:
    """The message as `task_message` wrote it before its template: the whole dict, dumped."""
    from worker.jobs.queueing import ORIGIN

    body = json.dumps(
        [args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
        separators=(",", ":"),
    )
    headers = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": retries,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": argsrepr,
        "kwargsrepr": "{}",
        "origin": ORIGIN,
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        ENQUEUED_AT_HEADER: at,
    }
    properties = {
        "correlation_id": task_id,
        "reply_to": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": "TAG",
    }
    message = {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": properties,
    }
    return json.dumps(message, separators=(",", ":"))


@pytest.mark.parametrize(
    ("args", "argsrepr", "retries", "at"),
    [
        (
            [{"id": "rpl_1", "email": "a@b.c", "acceptedAt": 1733500000.123456}],
            "[reply rpl_1]",
            0,
            1.5,
        ),
        ([{"id": 'q"uo\\te', "note": "é ✓ \u2028 {x}"}], 'with "quotes" {and} é', 3, 1733500000),
        ([], "", 8, 0.1),
    ],
)
def test_the_template_writes_the_message_laid_out_in_full(
    args: list, argsrepr: str, retries: int, at: float
) -> None:
    ours = task_message(
        TASK_ASSIGN,
        args,
        queue="assign",
        task_id="t-1{}",
        retries=retries,
        argsrepr=argsrepr,
        enqueued_at=at,
    )
    tag = json.loads(ours)["properties"]["delivery_tag"]
    expected = _laid_out_in_full(
        TASK_ASSIGN,
        args,
        queue="assign",
        task_id="t-1{}",
        retries=retries,
        argsrepr=argsrepr,
        at=at,
    )
    assert ours == expected.replace('"TAG"', json.dumps(tag))


def test_task_and_delivery_ids_read_as_version_4_uuids() -> None:
    import uuid

    for _ in range(200):
        text = uuid4_text()
        assert str(uuid.UUID(text)) == text and uuid.UUID(text).version == 4
        assert uuid.UUID(text).variant == uuid.RFC_4122
