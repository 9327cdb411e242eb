"""What the panels read through: a sync Redis client, the keys, the settings, and the roster.

One `Reader` is built per admin app (and per CLI command) and handed to every panel function
(worker/console/panels.py). It only reads: no panel writes to Redis, so looking never changes
what the service does. A roster file that fails validation does not stop the console: the
panels go on with an empty roster and say why (`roster_error`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import redis

from config.settings import ConfigError, Settings
from worker.errors import RosterError
from worker.jobs.deadletter import DeadLetters
from worker.jobs.holds import Holds
from worker.jobs.queueing import Delayed
from worker.keys import Keys
from worker.redis_conn import redis_client
from worker.routing.policy import HoursBook, PolicySource
from worker.routing.rotation import Rotation
from worker.routing.workhours import WorkingHours
from worker.sla.ledger import Ledger

T = TypeVar("T")


def console_redis(settings: Settings) -> redis.Redis:
    """A small thread-safe pool for the panels (they run in Starlette's thread pool)."""
    return redis_client(settings, max_connections=8)


@dataclass
class Reader:
    client: redis.Redis
    keys: Keys
    settings: Settings
    clock: Callable[[], float] = time.time
    _policies: PolicySource | None = field(default=None, init=False, repr=False)
    _roster_error: str | None = field(default=None, init=False, repr=False)
    _hours: HoursBook | None = field(default=None, init=False, repr=False)
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def of(cls, settings: Settings, client: redis.Redis) -> Reader:
        return cls(client, Keys(settings.key_prefix), settings)

    def now(self) -> float:
        return self.clock()

    @property
    def policies(self) -> PolicySource:
        """The routing policy as the workers build it (the roster file, hot-reloaded)."""
        with self._lock:
            if self._policies is None:
                try:
                    self._policies = PolicySource(self.settings, self.keys)
                except RosterError as bad:
                    self._roster_error = str(bad)
                    self._policies = PolicySource(
                        self.settings.model_copy(update={"roster_file": None}), self.keys
                    )
            return self._policies

    @property
    def roster_error(self) -> str | None:
        """Why the roster file could not be loaded at start, if it could not."""
        _ = self.policies
        return self._roster_error

    def cached(self, name: str, seconds: float, compute: Callable[[], T]) -> T:
        """`compute()`, computed again at most every `seconds` (a panel's costly summary)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and now - hit[0] < seconds:
            return cast(T, hit[1])
        value = compute()
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def rotation(self) -> Rotation:
        return Rotation(self.client, self.keys, pick_ttl=1, cache_ttl=1)

    def holds(self) -> Holds:
        return Holds(
            self.client,
            self.keys,
            Delayed(self.client, self.keys),
            self.settings.hold_recheck_seconds,
        )

    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self.client, self.keys)

    def ledger(self) -> Ledger:
        return Ledger(self.client, self.keys, self.settings.dedupe_ttl_seconds)

    def working_hours(self, sdr_id: str) -> WorkingHours | None:
        """The SDR's working hours as the workers see them (`HoursBook`: the roster's, else
        WORKING_HOURS'); none when WORKING_HOURS is invalid (the workers refuse to start)."""
        if self._hours is None:
            try:
                self._hours = HoursBook.parse(self.policies.rosters, self.settings.working_hours)
            except ConfigError:
                self._hours = HoursBook(self.policies.rosters, {})
        return self._hours.for_sdr(sdr_id)
