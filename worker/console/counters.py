"""The console's counters: what Redis did not keep per SDR, per day or per minute, kept now.

Each writer is O(1) per event and rides on a call the event makes anyway where it can:

    stats:{day}:assigned   replies assigned, per SDR (worker/routing/assign.py `_finish`, in
                           the pipeline that records the outcome)
    stats:{day}:source     the same replies by how they came: webhook, reconcile, backfill
    stats:{day}:followups  follow-up decisions, `{decision}:{sdr}` (worker/followups/poll.py)
    stats:minute:{minute}  a unix minute's counts:
      webhooks               verified deliveries (the receiver's enqueue Lua call, or its
                             once-a-second stamp for ignored ones: worker/receiver/web.py)
      leadterra:{status}     Leadterra calls that were not 2xx, by status (worker/runtime.py)

Day hashes are kept DAY_TTL (8 days: a week plus today), minute hashes MINUTE_TTL (2 hours); a
panel reads only the kind it shows. Days are UTC, so "today" is the same day for every SDR
(daily caps, counted in each SDR's own zone, are read from their own counters). The readers
turn a hash into plain ints.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from worker.keys import Keys, text

DAY_TTL = 8 * 86400
MINUTE_TTL = 2 * 3600
WEBHOOKS, LEADTERRA = "webhooks", "leadterra:"
ASSIGNED, SOURCE, FOLLOWUPS = "assigned", "source", "followups"


def day_of(moment: float) -> str:
    """The UTC day of a unix time, `YYYY-MM-DD`."""
    return datetime.fromtimestamp(moment, UTC).date().isoformat()


def last_days(now: float, count: int) -> list[str]:
    """The `count` UTC days up to today, oldest first."""
    today = datetime.fromtimestamp(now, UTC).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def minute_of(moment: float) -> int:
    return int(moment // 60)


# -- writers ----------------------------------------------------------------------------------


def count_assignment(pipe: Any, keys: Keys, sdr_id: str, source: str, now: float) -> None:
    """Add one assignment to `pipe` (a pipeline the caller executes)."""
    day = day_of(now)
    for kind, field in ((ASSIGNED, sdr_id), (SOURCE, source)):
        key = keys.stats_day(day, kind)
        pipe.hincrby(key, field, 1)
        pipe.expire(key, DAY_TTL)


def count_followup(client: redis.Redis, keys: Keys, sdr_id: str | None, decision: str) -> None:
    """One follow-up decision for the SDR (`-` when the follow-up names none)."""
    key = keys.stats_day(day_of(time.time()), FOLLOWUPS)
    with client.pipeline(transaction=False) as pipe:
        pipe.hincrby(key, f"{decision}:{sdr_id or '-'}", 1)
        pipe.expire(key, DAY_TTL)
        pipe.execute()


def count_leadterra_failure(client: redis.Redis, keys: Keys, status: str) -> None:
    """One Leadterra call that was not 2xx; never fails the call it counts."""
    key = keys.stats_minute(minute_of(time.time()))
    with contextlib.suppress(redis.RedisError, OSError), client.pipeline(False) as pipe:
        pipe.hincrby(key, LEADTERRA + status, 1)
        pipe.expire(key, MINUTE_TTL)
        pipe.execute()


# -- readers ----------------------------------------------------------------------------------


def _ints(raw: dict[Any, Any]) -> dict[str, int]:
    return {text(k): int(v) for k, v in raw.items()}


def read_days(
    client: redis.Redis, keys: Keys, kind: str, days: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Each day's counts of one kind, in one round trip."""
    wanted = list(days)
    with client.pipeline(transaction=False) as pipe:
        for day in wanted:
            pipe.hgetall(keys.stats_day(day, kind))
        found = pipe.execute()
    return {day: _ints(raw) for day, raw in zip(wanted, found, strict=True)}


def read_minutes(
    client: redis.Redis, keys: Keys, now: float, count: int = 60
) -> list[tuple[int, dict[str, int]]]:
    """The last `count` minutes' counts, oldest first, the current (partial) minute last."""
    last = minute_of(now)
    minutes = list(range(last - count + 1, last + 1))
    with client.pipeline(transaction=False) as pipe:
        for minute in minutes:
            pipe.hgetall(keys.stats_minute(minute))
        found = pipe.execute()
    return [(minute, _ints(raw)) for minute, raw in zip(minutes, found, strict=True)]


def with_prefix(counts: dict[str, int], prefix: str) -> dict[str, int]:
    """The fields that start with `prefix`, keyed by the rest."""
    return {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}
