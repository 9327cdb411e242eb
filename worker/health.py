"""Readiness: Redis answers, and some worker has consumed a task recently.

A worker process can stay alive while it has stopped consuming after a Redis reconnect
(celery#10205), so readiness does not trust the process: beat sends a `canary` task every few
seconds and the worker that runs it stamps `heartbeat` in Redis. Stale means nobody consumes.
A worker also sends one canary when its consumer first comes up, so a fresh deployment is
ready once that message went through the queue, not a canary period later.
"""

from __future__ import annotations

import asyncio
import time

import redis
import redis.asyncio as aioredis

from config.settings import Settings
from worker.keys import Keys, text


def stamp_heartbeat(client: redis.Redis, keys: Keys, worker: str) -> None:
    """Called by the canary task: a worker consumed a message just now."""
    client.set(keys.heartbeat, f"{time.time()}|{worker}", ex=24 * 3600)


def heartbeat_age(raw: bytes | str | None, now: float | None = None) -> float | None:
    if raw is None:
        return None
    try:
        stamped = float(text(raw).split("|", 1)[0])
    except ValueError:
        return None
    return max(0.0, (now or time.time()) - stamped)


async def readiness(client: aioredis.Redis, keys: Keys, settings: Settings) -> tuple[bool, str]:
    """(ready, reason). Not ready when Redis is down or no worker consumed within the bound."""
    try:
        async with asyncio.timeout(5):
            await client.ping()
            raw = await client.get(keys.heartbeat)
    except (redis.RedisError, OSError, TimeoutError) as exc:
        return False, f"redis unreachable ({type(exc).__name__})"
    return judge(raw, settings.ready_heartbeat_seconds)


def readiness_sync(client: redis.Redis, keys: Keys, settings: Settings) -> tuple[bool, str]:
    """`readiness` for the command line and container health checks."""
    try:
        client.ping()
        raw = client.get(keys.heartbeat)
    except (redis.RedisError, OSError) as exc:
        return False, f"redis unreachable ({type(exc).__name__})"
    return judge(raw, settings.ready_heartbeat_seconds)


def judge(raw: bytes | str | None, bound: int) -> tuple[bool, str]:
    age = heartbeat_age(raw)
    if age is None:
        return False, "no worker has consumed a task yet"
    if age > bound:
        return False, f"no worker has consumed a task for {age:.0f} s (bound {bound} s)"
    return True, f"redis up; a worker consumed {age:.1f} s ago"
