"""worker/jobs/broker.py: our kombu channel, on a real Redis."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import make_settings
from worker.embedded_redis import EmbeddedRedis
from worker.jobs.celery_app import create_celery

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
