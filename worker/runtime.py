"""What one worker process holds: settings, one Redis pool, one Leadterra client, and the
services built on them. Built once in the entry point and handed to the tasks.

The client's observer (`CallRecorder`) waits for the global rate limit before each call, never
past the task's deadline (worker/budget.py), and records each call's outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import redis
from pydantic import SecretStr

from config.settings import Settings
from worker import budget
from worker.console.counters import count_leadterra_failure
from worker.followups.notify import Notifier
from worker.jobs.deadletter import DeadLetters
from worker.jobs.holds import Holds
from worker.jobs.queueing import Delayed
from worker.keys import Keys
from worker.leadterra.client import LeadterraClient
from worker.leadterra.ratelimit import RateGate
from worker.logs import get_logger, scrub
from worker.metrics import Metrics
from worker.redis_conn import redis_client
from worker.routing.policy import HoursBook, PolicySource
from worker.routing.rotation import Rotation
from worker.routing.workhours import WorkingHours
from worker.sla.ledger import Ledger

log = get_logger("leadrouter.leadterra")


class CallRecorder:
    """The Leadterra client's observer: the global rate gate before, metrics and 429s after."""

    def __init__(
        self, gate: RateGate, metrics: Metrics, failed: Callable[[str], None] | None = None
    ) -> None:
        self.gate = gate
        self.metrics = metrics
        self.failed = failed  # counts a call that was not 2xx, by status (the console's)

    def before_call(self, endpoint: str) -> None:
        waited = self.gate.acquire(budget.cap(None))  # never past the task's deadline
        if waited:
            self.metrics.rate_limit_wait.inc(waited)

    def after_call(
        self, endpoint: str, status: str, seconds: float, retry_after: float | None
    ) -> None:
        self.metrics.observe_call(endpoint, status, seconds)
        if self.failed is not None and not status.startswith("2"):
            self.failed(status)
        if status == "429":
            wait = retry_after if retry_after is not None else 1.0
            self.gate.pause(wait)
            log.warning("leadterra.rate_limited", endpoint=endpoint, retry_after=wait)
        log.debug(
            "leadterra.call", endpoint=endpoint, status=status, duration_ms=round(seconds * 1000, 1)
        )


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        leadterra: LeadterraClient | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = client or redis_client(settings, settings.worker_concurrency + 10)
        self.metrics = metrics or Metrics()
        self.gate = RateGate(
            self.redis,
            self.keys,
            settings.leadterra_max_rps,
            settings.leadterra_burst,
            max_block=settings.rate_block_seconds,
        )
        self.recorder = CallRecorder(
            self.gate, self.metrics, partial(count_leadterra_failure, self.redis, self.keys)
        )
        self._leadterra = leadterra
        self._client_lock = threading.Lock()
        self.rotation = Rotation(
            self.redis,
            self.keys,
            pick_ttl=settings.dedupe_ttl_seconds,
            cache_ttl=settings.sdr_cache_seconds,
        )
        self.delayed = Delayed(self.redis, self.keys)
        self.dlq = DeadLetters(self.redis, self.keys)
        self.holds = Holds(self.redis, self.keys, self.delayed, settings.hold_recheck_seconds)
        self.policy = PolicySource(settings, self.keys)
        self.ledger = Ledger(self.redis, self.keys, settings.dedupe_ttl_seconds)
        self.hours = HoursBook.parse(self.policy.rosters, settings.working_hours)
        self._notifier: Notifier | None = None

    @property
    def leadterra(self) -> LeadterraClient:
        """The workspace client, made on first use (commands that never call need no key);
        once per process even when many threads ask at once."""
        if self._leadterra is None:
            with self._client_lock:
                if self._leadterra is None:
                    self._leadterra = LeadterraClient.from_settings(
                        self.settings, observer=self.recorder
                    )
        return self._leadterra

    @property
    def notifier(self) -> Notifier:
        if self._notifier is None:
            with self._client_lock:
                if self._notifier is None:
                    self._notifier = Notifier(self.settings)
        return self._notifier

    def working_hours(self, sdr_id: str | None) -> WorkingHours | None:
        """The SDR's working hours: the roster's, else WORKING_HOURS (its own, else
        `default`), or None when neither configures any."""
        return self.hours.for_sdr(sdr_id)

    def slack_user_id(self, sdr_id: str) -> str | None:
        """The SDR's Slack user id from the roster (to mention them in the team's channel)."""
        return self.policy.rosters.current().for_sdr(sdr_id).slack_user_id

    def sdr_key(self, sdr_id: str | None) -> SecretStr | None:
        if sdr_id is None:
            return None
        return self.settings.leadterra_sdr_api_keys.get(sdr_id)

    def for_sdr(self, sdr_id: str | None) -> LeadterraClient:
        """The client that acts as `sdr_id` (its own key), or the main key without a map."""
        key = self.sdr_key(sdr_id)
        return self.leadterra.with_key(key) if key else self.leadterra

    def scrub(self, text: str) -> str:
        """`text` with every secret of these settings, in any escaped form, masked."""
        return scrub(text, self.settings.secret_values())

    def count_delivery(self, task_id: str, retries: int) -> int:
        """How many times this exact message (task id and retry number) has been delivered."""
        key = self.keys.deliveries(task_id, retries)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.settings.visibility_timeout * 4 + 3600)
            count, _ = pipe.execute()
        return int(count)

    def close(self) -> None:
        if self._leadterra is not None:
            self._leadterra.close()
        if self._notifier is not None:
            self._notifier.close()
        self.redis.close()
