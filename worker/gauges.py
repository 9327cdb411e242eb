"""Gauges the web process computes when Prometheus scrapes /metrics (worker/metrics.py `render`).

They are computed where they are read, not flushed by the workers: /metrics sums every
process's snapshot, so a gauge flushed by three workers would read three times its value, and
one computed by a worker would be as old as its last flush. From Redis, in one pipeline:

    leadrouter_queue_messages{queue}     task messages waiting on each Celery queue
    leadrouter_delayed_messages          messages waiting in Redis for their time (long retries,
                                         held replies' rechecks)
    leadrouter_dead_letters              entries in the dead-letter list
    leadrouter_held_replies              replies held because no SDR is eligible, and the age of
    leadrouter_oldest_held_reply_age_seconds   the oldest
    leadrouter_last_webhook_received_timestamp_seconds     unix times; absent before the first
    leadrouter_reconcile_last_success_timestamp_seconds    verified webhook, or complete sweep
    leadrouter_redis_up                  1 when Redis answered the scrape
    leadrouter_ready                     1 when /readyz would answer 200 (worker/health.py)

and from the web's own Settings (`Scrape`, handed over by worker/receiver/web.py `create_app`):

    leadrouter_sdrs_at_work              SDRs inside their working hours now, each in their own
                                         zone (PromQL cannot read the roster; promtool's lint
                                         reads "hours" in a name as a unit, hence not
                                         `_in_working_hours`)
    leadrouter_info{intake,version}      1; the INTAKE mode and the version, for rules and panels

The SDRs counted are those of the cached `GET /v1/sdrs` while it is fresh, the rotation's current
members, and those ROSTER_FILE or WORKING_HOURS name; before any is known, the default hours
stand for one. An SDR without working hours counts as always at work. The web reads ROSTER_FILE
for this (reloaded when it changes, like the worker); a roster or WORKING_HOURS it cannot read
leaves the gauge out (`metrics.hours_unreadable`), and the alert rules read an absent gauge as
"someone is at work".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import redis.asyncio as aioredis

from config.settings import ConfigError, Settings
from worker.health import judge
from worker.keys import QUEUES, Keys, text
from worker.logs import get_logger
from worker.routing.policy import HoursBook, RosterSource

log = get_logger("leadrouter.metrics")
Sample = tuple[str, dict[str, str], float]
DEFAULT_READY_SECONDS: int = Settings.model_fields["ready_heartbeat_seconds"].default


def _version() -> str:
    try:
        return metadata.version("leadterra-router")
    except metadata.PackageNotFoundError:
        return "unknown"


class Scrape:
    """What the scrape-time gauges need from the web process's Settings (none: defaults, and
    no working-hours or info gauge)."""

    def __init__(
        self, settings: Settings | None = None, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.ready_after = settings.ready_heartbeat_seconds if settings else DEFAULT_READY_SECONDS
        self.version = _version()
        self._book: HoursBook | None = None

    def hours(self) -> HoursBook | None:
        """The working hours, built on first use; None (logged) while they cannot be read."""
        if self.settings is None:
            return None
        if self._book is None:
            try:
                rosters = RosterSource(self.settings.roster_file)
                self._book = HoursBook.parse(rosters, self.settings.working_hours)
            except ConfigError as bad:
                log.error("metrics.hours_unreadable", error=str(bad), outcome="gauge_left_out")
                return None
        return self._book

    def settings_gauges(self) -> list[Sample]:
        if self.settings is None:
            return []
        labels = {"intake": self.settings.intake, "version": self.version}
        return [("leadrouter_info", labels, 1.0)]

    def at_work(self, cached: bytes | str | None, members: list[Any]) -> list[Sample]:
        """`leadrouter_sdrs_at_work` from the SDR cache and the rotation's members."""
        book = self.hours()
        if book is None:
            return []
        ids = {text(m) for m in members} | book.named()
        if cached:
            ids |= {str(entry[0]) for entry in json.loads(cached)}
        now = self.clock()
        count = book.at_work(ids, now) if ids else book.at_work([""], now)
        return [("leadrouter_sdrs_at_work", {}, float(count))]

    def down(self) -> list[Sample]:
        """What is still known with Redis down."""
        return [
            ("leadrouter_redis_up", {}, 0.0),
            ("leadrouter_ready", {}, 0.0),
            *self.settings_gauges(),
        ]


async def read_gauges(client: aioredis.Redis, keys: Keys, scrape: Scrape) -> list[Sample]:
    """Every scrape-time gauge, with one pipeline to Redis."""
    async with client.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            pipe.llen(keys.queue(queue))
        pipe.hlen(keys.dlq)
        pipe.zcard(keys.delayed)
        pipe.hlen(keys.held)
        pipe.hvals(keys.held)
        pipe.get(keys.last_webhook)
        pipe.get(keys.reconcile_last_success)
        pipe.get(keys.heartbeat)
        pipe.get(keys.sdr_cache)
        pipe.hkeys(keys.rotation_credit)
        results = await pipe.execute()
    depths = dict(zip(QUEUES, results[: len(QUEUES)], strict=True))
    dlq, delayed, held, held_values, last_webhook, last_sweep, heartbeat, cached, members = results[
        len(QUEUES) :
    ]
    oldest = min((json.loads(v)["since"] for v in held_values), default=None)
    gauges: list[Sample] = [
        ("leadrouter_queue_messages", {"queue": q}, float(n)) for q, n in depths.items()
    ]
    gauges += [
        ("leadrouter_redis_up", {}, 1.0),
        ("leadrouter_ready", {}, 1.0 if judge(heartbeat, scrape.ready_after)[0] else 0.0),
        ("leadrouter_dead_letters", {}, float(dlq)),
        ("leadrouter_delayed_messages", {}, float(delayed)),
        ("leadrouter_held_replies", {}, float(held)),
        (
            "leadrouter_oldest_held_reply_age_seconds",
            {},
            max(0.0, time.time() - oldest) if oldest else 0.0,
        ),
    ]
    # absent until the first webhook or complete sweep: alert on absent() or on the age
    for name, stamp in (
        ("leadrouter_last_webhook_received_timestamp_seconds", last_webhook),
        ("leadrouter_reconcile_last_success_timestamp_seconds", last_sweep),
    ):
        if stamp is not None:
            gauges.append((name, {}, float(stamp)))
    return gauges + scrape.at_work(cached, members) + scrape.settings_gauges()


GAUGE_DOCS = {
    "leadrouter_queue_messages": "Task messages waiting on each Celery queue.",
    "leadrouter_redis_up": "1 when Redis answered the scrape.",
    "leadrouter_ready": "1 when /readyz would answer 200: Redis answers and a worker consumed "
    "the canary within READY_HEARTBEAT_SECONDS.",
    "leadrouter_dead_letters": "Entries in the dead-letter list.",
    "leadrouter_delayed_messages": "Messages waiting in Redis for their retry or recheck time.",
    "leadrouter_held_replies": "Replies held because no SDR is eligible.",
    "leadrouter_oldest_held_reply_age_seconds": "Age of the oldest held reply.",
    "leadrouter_last_webhook_received_timestamp_seconds": "Unix time of the last verified "
    "webhook (absent before the first).",
    "leadrouter_reconcile_last_success_timestamp_seconds": "Unix time of the last complete "
    "reconcile sweep (absent before the first).",
    "leadrouter_sdrs_at_work": "SDRs inside their working hours now, each in their "
    "own time zone (an SDR without working hours counts as always at work).",
    "leadrouter_info": "Always 1: the INTAKE mode and the version as labels.",
}
