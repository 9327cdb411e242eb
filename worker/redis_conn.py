"""Every Redis connection the service makes: to REDIS_URL, or to the primary Sentinel names.

With REDIS_URL alone each client connects there, as it always has. With REDIS_SENTINELS and
REDIS_SENTINEL_MASTER each client asks the Sentinels where the primary of that master is, on
every new connection, and follows a failover: a connection to a primary that died or was demoted
fails, and the next one asks again. The database, user, password and TLS (`rediss://`, with its
`ssl_*` query parameters) still come from REDIS_URL, whose host and port are then unused;
REDIS_SENTINEL_PASSWORD is the Sentinels' own (`requirepass` in sentinel.conf). The Sentinels are
asked over plain TCP.

    sync_client(settings, ...)     workers, the console, the CLI; a blocking pool when sized
    redis_client(settings, n)      the same with a pool of n and the service's timeouts
    async_client(settings, ...)    the receiver: a blocking pool that waits for a connection
    broker_config(settings)        Celery: broker URL, kombu transport and its Sentinel options

`REDIS_MIN_REPLICAS_ACK` is the other half of surviving a failover: a write that only the
primary holds is lost with it, so the receiver's enqueue and the worker's outcome records are
confirmed by `WAIT` on the same connection (pipelined after the write) before they count as done
(`eval_confirmed` for the receiver's Lua call; `confirm_replicated` for a pipeline that ends
with `WAIT`, as worker/routing/assign.py's outcome record does).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio as aioredis
from redis.asyncio import sentinel as async_sentinel
from redis.commands.core import AsyncScript
from redis.connection import SSLConnection, parse_url
from redis.exceptions import NoScriptError
from redis.sentinel import Sentinel, SentinelConnectionPool

from config.settings import Settings
from worker.errors import NotReplicated

#: how long a write waits for REDIS_MIN_REPLICAS_ACK replicas to confirm it (WAIT's timeout)
REPLICA_ACK_TIMEOUT_MS = 500
#: how long asking one Sentinel may take (connect, and the answer)
SENTINEL_TIMEOUT = 2.0
#: our transports (worker/jobs/broker.py): kombu's, with poison dead-lettered
PLAIN_TRANSPORT = "worker.jobs.broker:Transport"
SENTINEL_TRANSPORT = "worker.jobs.broker:SentinelTransport"


class SentinelPool(SentinelConnectionPool):
    """redis-py's Sentinel-managed pool, whose full disconnect (the client's `close()`) also
    closes its connections to the Sentinels, which redis-py leaves open."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        super().disconnect(inuse_connections)
        if inuse_connections:
            self.sentinel_manager.close()


class BlockingSentinelPool(SentinelPool, redis.BlockingConnectionPool):
    """A Sentinel-managed pool that waits up to `timeout` for a free connection, as the
    workers' pool does without Sentinel, instead of failing at `max_connections`."""


class AsyncBlockingSentinelPool(
    async_sentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool
):
    """The receiver's pool through Sentinel: it waits up to `timeout` for a free connection;
    its full disconnect (the client's `aclose()`) closes its connections to the Sentinels."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:
            await self.sentinel_manager.aclose()


def confirm_replicated(acked: Any, wanted: int, what: str) -> None:
    """NotReplicated unless WAIT's answer `acked` reaches `wanted` replicas."""
    if int(acked) < wanted:
        raise NotReplicated(
            f"{what}: {int(acked)} of {wanted} replicas confirmed it within "
            f"{REPLICA_ACK_TIMEOUT_MS} ms",
            wanted=wanted,
            acked=int(acked),
        )


async def eval_confirmed(
    client: aioredis.Redis, script: AsyncScript, keys: list[str], args: list[Any], wanted: int
) -> Any:
    """`script`'s answer once `wanted` replicas have everything written up to it, else
    NotReplicated: its EVALSHA and `WAIT wanted` pipelined on one connection, one round trip
    (a script that always writes covers what it found written before, too). A primary new since
    a failover lacks the script: it is loaded and the call sent again."""
    for attempt in (1, 2):
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                pipe.wait(wanted, REPLICA_ACK_TIMEOUT_MS)
                answer, acked = await pipe.execute()
            break
        except NoScriptError:
            if attempt == 2:
                raise
            await client.script_load(script.script)
    confirm_replicated(acked, wanted, "the write")
    return answer


def primary_kwargs(settings: Settings) -> dict[str, Any]:
    """What REDIS_URL says about every connection to the primary, but where it is: database,
    user, password, TLS (`ssl=True` picks the Sentinel-managed TLS connection) and any other
    option in its query string."""
    found: dict[str, Any] = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    found.pop("host", None)
    found.pop("port", None)
    if found.pop("connection_class", None) is SSLConnection:
        found["ssl"] = True
    return found


def sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    """How to talk to the Sentinels themselves: short timeouts, and their own password."""
    found: dict[str, Any] = {
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "socket_timeout": SENTINEL_TIMEOUT,
    }
    if settings.redis_sentinel_password is not None:
        found["password"] = settings.redis_sentinel_password.get_secret_value()
    return found


def _master(settings: Settings) -> str:
    if not settings.redis_sentinel_master:  # Settings refuses this; a guard for direct callers
        raise ValueError("REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS")
    return settings.redis_sentinel_master


def sync_client(
    settings: Settings, *, pool_size: int | None = None, pool_wait: float = 10.0, **options: Any
) -> redis.Redis:
    """A thread-safe client. With `pool_size`, its pool holds that many connections and a
    caller waits up to `pool_wait` seconds for one; without, redis-py's default pool. `options`
    are connection options (timeouts, health checks)."""
    sized = {"max_connections": pool_size, "timeout": pool_wait} if pool_size else {}
    if not settings.redis_sentinels:
        if not pool_size:
            return redis.Redis.from_url(settings.redis_url, **options)
        pool = redis.BlockingConnectionPool.from_url(settings.redis_url, **sized, **options)
        return redis.Redis(connection_pool=pool)
    sentinel = Sentinel(
        settings.sentinel_addresses,
        sentinel_kwargs=sentinel_kwargs(settings),
        **{**options, **primary_kwargs(settings)},  # REDIS_URL's options win, as in from_url
    )
    pool_class = BlockingSentinelPool if pool_size else SentinelPool
    client: redis.Redis = sentinel.master_for(
        _master(settings), redis_class=redis.Redis, connection_pool_class=pool_class, **sized
    )
    return client


def redis_client(settings: Settings, max_connections: int) -> redis.Redis:
    """A thread-safe client whose pool waits up to 10 s for one of `max_connections`: to
    REDIS_URL, or to the primary REDIS_SENTINELS name."""
    return sync_client(
        settings,
        pool_size=max_connections,
        pool_wait=10,
        socket_connect_timeout=3,
        socket_timeout=10,
        health_check_interval=30,
    )


def async_client(
    settings: Settings, *, pool_size: int, pool_wait: float, **options: Any
) -> aioredis.Redis:
    """An asyncio client whose pool holds `pool_size` connections; a caller waits up to
    `pool_wait` seconds for one instead of failing."""
    sized = {"max_connections": pool_size, "timeout": pool_wait}
    if not settings.redis_sentinels:
        pool = aioredis.BlockingConnectionPool.from_url(settings.redis_url, **sized, **options)
        return aioredis.Redis(connection_pool=pool)
    sentinel = async_sentinel.Sentinel(
        settings.sentinel_addresses,
        sentinel_kwargs=sentinel_kwargs(settings),
        **{**options, **primary_kwargs(settings)},
    )
    client: aioredis.Redis = sentinel.master_for(
        _master(settings),
        redis_class=aioredis.Redis,
        connection_pool_class=AsyncBlockingSentinelPool,
        **sized,
    )
    return client


def _broker_url(settings: Settings) -> str:
    """kombu's `sentinel://` URL: one entry per Sentinel, each with REDIS_URL's user, password
    and database (kombu reads the first entry's; the user and password go to the primary)."""
    given = primary_kwargs(settings)
    user, password = given.get("username"), given.get("password")
    login = ""
    if user or password:
        login = f"{quote(user or '', safe='')}:{quote(password or '', safe='')}@"
    db = int(given.get("db", 0))
    return ";".join(
        f"sentinel://{login}{_netloc(host, port)}/{db}"
        for host, port in settings.sentinel_addresses
    )


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _broker_ssl(settings: Settings) -> dict[str, Any] | None:
    """Celery's `broker_use_ssl` for a `rediss://` REDIS_URL through Sentinel: its `ssl_*`
    options, verifying the certificate unless it says otherwise (as redis-py does)."""
    given = primary_kwargs(settings)
    if not given.get("ssl"):
        return None
    options = {k: v for k, v in given.items() if k.startswith("ssl_")}
    options.setdefault("ssl_cert_reqs", "required")
    return options


def broker_config(settings: Settings) -> dict[str, Any]:
    """Celery's broker settings: `broker_url`, `broker_transport`, and what Sentinel adds to the
    transport options (`sentinel_options`) and, for TLS, `broker_use_ssl`."""
    if not settings.redis_sentinels:
        return {"broker_url": settings.redis_url, "broker_transport": PLAIN_TRANSPORT}
    found: dict[str, Any] = {
        "broker_url": _broker_url(settings),
        "broker_transport": SENTINEL_TRANSPORT,
    }
    ssl = _broker_ssl(settings)
    if ssl is not None:
        found["broker_use_ssl"] = ssl
    return found


def sentinel_options(settings: Settings) -> dict[str, Any]:
    """kombu's Sentinel transport options: the master's name and how to reach the Sentinels
    (their password goes in `sentinel_kwargs`, not in the URL). Empty without Sentinel."""
    if not settings.redis_sentinels:
        return {}
    return {"master_name": _master(settings), "sentinel_kwargs": sentinel_kwargs(settings)}
