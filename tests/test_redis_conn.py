"""worker/redis_conn.py: what each factory builds, from REDIS_URL alone or through Sentinel.

Nothing here connects: the clients are built and looked at. Sentinels on real processes, and a
failover, are in tests/test_redis_sentinel.py and tests/e2e/test_sentinel_failover_e2e.py.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio import sentinel as async_sentinel
from redis.sentinel import SentinelManagedSSLConnection

from tests.conftest import make_settings
from worker.jobs import broker
from worker.jobs.celery_app import celery_config, create_celery, transport_options
from worker.receiver.web import redis_for_web
from worker.redis_conn import (
    AsyncBlockingSentinelPool,
    BlockingSentinelPool,
    SentinelPool,
    async_client,
    broker_config,
    redis_client,
    sentinel_options,
    sync_client,
)

SENTINELS = "10.0.0.1:26379,10.0.0.2:26380,10.0.0.3:26381"


def sentinel_settings(**overrides: object):
    values: dict[str, object] = {
        "redis_url": "redis://app:s3cret%2Fpass@ignored-host:6399/3",
        "redis_sentinels": SENTINELS,
        "redis_sentinel_master": "leadrouter",
        "redis_sentinel_password": "sentinel-pass-123",
    }
    values.update(overrides)
    return make_settings(**values)


# -- REDIS_URL alone: as before ---------------------------------------------------------------


def test_without_sentinels_the_workers_pool_is_the_blocking_pool_at_redis_url() -> None:
    client = redis_client(make_settings(redis_url="redis://127.0.0.1:6390/2"), 42)
    pool = client.connection_pool
    assert type(pool) is redis.BlockingConnectionPool
    assert (pool.max_connections, pool.timeout) == (42, 10)
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (3, 10)
    assert kwargs["health_check_interval"] == 30


def test_without_sentinels_an_unsized_client_is_redis_pys_default_from_url() -> None:
    client = sync_client(make_settings(redis_url="redis://:pw@127.0.0.1:6390/4"))
    assert type(client.connection_pool) is redis.ConnectionPool
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["port"], kwargs["db"], kwargs["password"]) == (6390, 4, "pw")


def test_without_sentinels_the_receivers_pool_waits_for_a_connection() -> None:
    client = redis_for_web(make_settings(redis_url="rediss://127.0.0.1:6390/1"))
    pool = client.connection_pool
    assert type(pool) is aioredis.BlockingConnectionPool
    assert (pool.max_connections, pool.timeout) == (64, 3)
    assert pool.connection_class is aioredis.SSLConnection
    assert "socket_timeout" not in pool.connection_kwargs


def test_without_sentinels_celery_uses_redis_url_and_our_transport() -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:6390/0")
    assert broker_config(settings) == {
        "broker_url": "redis://127.0.0.1:6390/0",
        "broker_transport": "worker.jobs.broker:Transport",
    }
    assert sentinel_options(settings) == {}
    config = celery_config(settings)
    assert "broker_use_ssl" not in config
    assert "master_name" not in config["broker_transport_options"]


# -- through Sentinel ------------------------------------------------------------------------


def test_the_workers_pool_asks_the_sentinels_and_waits_for_a_connection() -> None:
    client = redis_client(sentinel_settings(), 42)
    pool = client.connection_pool
    assert isinstance(pool, BlockingSentinelPool)
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (42, 10)
    assert (pool.service_name, pool.is_master) == ("leadrouter", True)
    kwargs = pool.connection_kwargs
    assert "host" not in kwargs and "port" not in kwargs  # Sentinel says where
    assert (kwargs["db"], kwargs["username"], kwargs["password"]) == (3, "app", "s3cret/pass")
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (3, 10)
    assert pool.connection_class is redis.sentinel.SentinelManagedConnection


def test_the_sentinels_are_asked_with_their_own_password_and_short_timeouts() -> None:
    pool = sync_client(sentinel_settings()).connection_pool
    assert type(pool) is SentinelPool  # unsized: redis-py's pool, closing its Sentinels
    asked = pool.sentinel_manager.sentinels
    where = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in asked
    ]
    assert where == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26381)]
    kwargs = asked[0].connection_pool.connection_kwargs
    assert kwargs["password"] == "sentinel-pass-123"
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (2.0, 2.0)
    assert kwargs["db"] == 0  # not REDIS_URL's: a Sentinel has no databases


def test_tls_comes_from_a_rediss_url_through_sentinel_too() -> None:
    settings = sentinel_settings(
        redis_url="rediss://ignored:6380/0?ssl_cert_reqs=none", redis_sentinel_password=None
    )
    pool = sync_client(settings, pool_size=4).connection_pool
    assert pool.connection_class is SentinelManagedSSLConnection
    assert pool.connection_kwargs["ssl_cert_reqs"] == "none"
    sentinel_kwargs = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert sentinel_kwargs["password"] is None  # not REDIS_URL's


def test_the_receivers_pool_asks_the_sentinels_and_waits_for_a_connection() -> None:
    client = redis_for_web(sentinel_settings())
    pool = client.connection_pool
    assert isinstance(pool, AsyncBlockingSentinelPool)
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (64, 3)
    assert pool.connection_class is async_sentinel.SentinelManagedConnection
    assert (pool.service_name, pool.connection_kwargs["db"]) == ("leadrouter", 3)
    assert "socket_timeout" not in pool.connection_kwargs


def test_an_async_tls_client_uses_the_async_sentinel_tls_connection() -> None:
    settings = sentinel_settings(redis_url="rediss://ignored:6380/0")
    pool = async_client(settings, pool_size=2, pool_wait=1).connection_pool
    assert pool.connection_class is async_sentinel.SentinelManagedSSLConnection


def test_celery_uses_kombus_sentinel_transport_with_the_master_and_sentinel_password() -> None:
    settings = sentinel_settings()
    config = celery_config(settings)
    assert config["broker_url"] == ";".join(
        f"sentinel://app:s3cret%2Fpass@{a}/3" for a in SENTINELS.split(",")
    )
    assert config["broker_transport"] == "worker.jobs.broker:SentinelTransport"
    options = transport_options(settings)
    assert options["master_name"] == "leadrouter"
    assert options["sentinel_kwargs"]["password"] == "sentinel-pass-123"
    assert options["global_keyprefix"] == settings.key_prefix  # the rest as without Sentinel
    assert options["visibility_timeout"] == settings.visibility_timeout


def test_the_celery_connection_reads_every_sentinel_and_redis_urls_database() -> None:
    app = create_celery(sentinel_settings())
    connection = app.connection_for_write()
    assert connection.transport_cls == "worker.jobs.broker:SentinelTransport"
    assert len(connection.alt) == 3
    assert (connection.hostname, connection.port) == ("10.0.0.1", 26379)
    assert (connection.userid, connection.password) == ("app", "s3cret/pass")
    assert connection.virtual_host == "3"


def test_celery_through_sentinel_with_tls_verifies_the_certificate_unless_told() -> None:
    verified = celery_config(sentinel_settings(redis_url="rediss://h:6380/0"))
    assert verified["broker_use_ssl"] == {"ssl_cert_reqs": "required"}
    told = celery_config(sentinel_settings(redis_url="rediss://h:6380/0?ssl_cert_reqs=none"))
    assert told["broker_use_ssl"] == {"ssl_cert_reqs": "none"}


def test_the_sentinel_transport_keeps_our_channel_with_kombus_sentinel_pools() -> None:
    channel = broker.SentinelTransport.Channel
    assert issubclass(channel, broker.Channel)
    assert issubclass(channel, broker.kombu_redis.SentinelChannel)
    # our overrides, kombu's Sentinel pool
    assert channel._brpop_read is broker.Channel._brpop_read
    assert channel.conn_or_acquire is broker.Channel.conn_or_acquire
    assert channel._get_pool is broker.kombu_redis.SentinelChannel._get_pool
    assert channel.connection_class is redis.sentinel.SentinelManagedConnection
    assert broker.SentinelTransport.default_port == 26379


def test_options_in_redis_urls_query_win_through_sentinel_as_they_do_without() -> None:
    settings = sentinel_settings(redis_url="redis://ignored:6379/2?socket_timeout=7")
    kwargs = redis_client(settings, 4).connection_pool.connection_kwargs
    plain = redis_client(make_settings(redis_url="redis://h:6379/2?socket_timeout=7"), 4)
    assert (
        kwargs["socket_timeout"] == plain.connection_pool.connection_kwargs["socket_timeout"] == 7
    )
