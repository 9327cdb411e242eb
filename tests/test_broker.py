"""worker/jobs/broker.py: our kombu channel, on a real Redis."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.utils.json import dumps

from tests.conftest import make_settings
from worker.embedded_redis import EmbeddedRedis
from worker.jobs.celery_app import create_celery
from worker.jobs.liveness import HOLDER_OPTION
from worker.keys import QUEUE_ASSIGN, UNACKED_HOLDERS, text

pytestmark = pytest.mark.integration


def test_a_channel_closed_after_its_connection_was_collected_raises_a_broker_error(
    redis_server: EmbeddedRedis,
) -> None:
    """What Celery does on a lost connection: `collect()` drops the transport's client, then
    the close restores the unacked messages. kombu's own code raises AttributeError there (the
    worker stops); ours raises a ConnectionError, which the close ignores like any broker
    error, and the messages wait in the unacked hash for kombu's visibility sweep."""
    app = create_celery(make_settings(redis_url=redis_server.url))
    connection = app.connection_for_write()
    channel = connection.default_channel
    channel._disconnect_pools()
    channel.connection.client = None
    with pytest.raises(redis.ConnectionError), channel.conn_or_acquire():
        pass
    assert isinstance(redis.ConnectionError(), connection.connection_errors)
    channel.connection.client = connection
    with channel.conn_or_acquire() as client:  # a channel that can still connect does
        assert client.ping()
    connection.release()


# -- the QoS's scripts (ack emulation plus the holder), on a real Redis -------------------------

HOLDER = "leadrouter-1@host"


@pytest.fixture(params=["test:", ""], ids=["prefixed", "unprefixed"])
def prefix(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connect(server: EmbeddedRedis, prefix: str, holder: str | None = HOLDER) -> Connection:
    options: dict[str, Any] = {"global_keyprefix": prefix}
    if holder is not None:
        options[HOLDER_OPTION] = holder
    return Connection(
        server.url, transport="worker.jobs.broker:Transport", transport_options=options
    )


def take(connection: Connection, n: int = 1) -> Any:
    """Publish one message and take it without acknowledging it (our QoS's `append`)."""
    queue = Queue(QUEUE_ASSIGN, Exchange(QUEUE_ASSIGN), QUEUE_ASSIGN)
    channel = connection.default_channel
    connection.Producer(channel).publish(
        {"n": n}, exchange=queue.exchange, routing_key=QUEUE_ASSIGN, declare=[queue]
    )
    message = queue(channel).get(no_ack=False)
    assert message is not None
    return message


def old_append(qos: Any, message: Any, tag: str, holder: str | None) -> None:
    """What `QoS.append` ran before its script: kombu 5.7.0's MULTI plus the holder."""
    delivery = message.delivery_info
    entry = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
    with qos.pipe_or_acquire() as pipe:
        pipe.zadd(qos.unacked_index_key, {tag: time.time()}).hset(qos.unacked_key, tag, entry)
        if holder is not None:
            pipe.hset(UNACKED_HOLDERS, tag, holder)
        pipe.execute()


def ack_state(client: redis.Redis) -> dict[bytes, Any]:
    """Every key but kombu's bindings and queues: the unacked ones, read back in full."""
    state: dict[bytes, Any] = {}
    for key in cast(list[bytes], client.keys("*")):
        kind = text(client.type(key))
        if kind == "hash":
            state[key] = client.hgetall(key)
        elif kind == "zset":
            state[key] = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    return state


def queued(client: redis.Redis, prefix: str) -> int:
    return int(client.llen(prefix + QUEUE_ASSIGN))


@pytest.mark.parametrize("holder", [HOLDER, None], ids=["holder", "no-holder"])
def test_append_writes_the_keys_and_values_the_old_pipeline_wrote(
    redis_server: EmbeddedRedis, real_redis: redis.Redis, prefix: str, holder: str | None
) -> None:
    with connect(redis_server, prefix, holder) as connection:
        message = take(connection)
        tag, qos = message.delivery_tag, connection.default_channel.qos
        new = ack_state(real_redis)
        score = real_redis.zscore(prefix + "unacked_index", tag)
        assert score is not None and abs(score - time.time()) < 60
        entry = dumps([message._raw, message.delivery_info["exchange"], QUEUE_ASSIGN])
        expected: dict[bytes, Any] = {
            f"{prefix}unacked".encode(): {tag.encode(): entry.encode()},
            f"{prefix}unacked_index".encode(): [tag.encode()],
        }
        if holder is not None:
            expected[f"{prefix}unacked_holders".encode()] = {tag.encode(): holder.encode()}
        assert new == expected
        assert tag in qos._delivered  # virtual.QoS's bookkeeping
        message.ack()
        assert ack_state(real_redis) == {}
        old_append(qos, message, tag, holder)
        assert ack_state(real_redis) == new


def test_append_then_ack_leaves_nothing_and_runs_no_transaction(
    redis_server: EmbeddedRedis, real_redis: redis.Redis, prefix: str
) -> None:
    with connect(redis_server, prefix) as connection:
        take(connection).ack()  # registers the scripts, declares the queue
        real_redis.config_resetstat()
        message = take(connection, 2)
        message.ack()
        stats = cast(dict[str, Any], real_redis.info("commandstats"))
        assert ack_state(real_redis) == {}
        assert message.delivery_tag in connection.default_channel.qos._dirty  # virtual.QoS's
    assert "cmdstat_multi" not in stats
    assert stats["cmdstat_evalsha"]["calls"] == 2


def test_a_reject_without_requeue_removes_all_three(
    redis_server: EmbeddedRedis, real_redis: redis.Redis, prefix: str
) -> None:
    with connect(redis_server, prefix) as connection:
        message = take(connection)
        message.reject(requeue=False)
        assert ack_state(real_redis) == {}
        assert queued(real_redis, prefix) == 0
        assert message.delivery_tag in connection.default_channel.qos._dirty


def test_kombus_restores_still_remove_the_holder(
    redis_server: EmbeddedRedis, real_redis: redis.Redis, prefix: str
) -> None:
    """A reject with requeue, the visibility sweep and a channel's close restore in kombu's
    own transaction, through `_remove_from_indices` and its pipe."""
    with connect(redis_server, prefix) as connection:
        take(connection).reject(requeue=True)
        assert ack_state(real_redis) == {}
        assert queued(real_redis, prefix) == 1
        real_redis.delete(prefix + QUEUE_ASSIGN)
        take(connection, 2)
        qos = connection.default_channel.qos
        qos.visibility_timeout = -1  # every message is overdue
        qos.restore_visible(interval=1)
        assert ack_state(real_redis) == {}
        assert queued(real_redis, prefix) == 1
        real_redis.delete(prefix + QUEUE_ASSIGN)
        take(connection, 3)
        assert len(ack_state(real_redis)) == 3
    # the connection's close restored what its channel held
    assert ack_state(real_redis) == {}
    assert queued(real_redis, prefix) == 1


def test_redis_errors_propagate_and_a_flushed_script_cache_is_refilled(
    redis_server: EmbeddedRedis, real_redis: redis.Redis
) -> None:
    with connect(redis_server, "test:") as connection:
        message = take(connection)
        real_redis.script_flush()  # a restarted or failed-over server has no scripts
        message.ack()
        assert ack_state(real_redis) == {}
        real_redis.set("test:unacked_holders", "not a hash")
        with pytest.raises(redis.ResponseError):
            take(connection, 2)
        qos = connection.default_channel.qos
        assert list(qos._delivered) == [message.delivery_tag]  # kombu's only after the write
        real_redis.delete("test:unacked_holders")
        connection.default_channel._disconnect_pools()
        connection.default_channel.connection.client = None
        with pytest.raises(redis.ConnectionError):
            qos.ack("any-tag")
        connection.default_channel.connection.client = connection
