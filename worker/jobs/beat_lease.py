"""Beat's schedule in every worker, sent by one process at a time: whoever holds the lease.

Beat sends the periodic tasks: release due waits (every second), recover lost messages, the
readiness canary, the follow-up poll, the reconcile sweep, the SLA watch. It used to be a
process of its own, one per deployment: 50 MiB resident to send a few messages a second, and a
single point of failure unless a second one ran beside it (twice the messages).

Now each worker runs the schedule in a thread (`WORKER_BEAT`, on by default), and so does
`leadrouter beat` where it still runs; each sends only while it holds the lease, a Redis key
`beat:leader` naming it, set with a TTL of `LEASE_TTL_MS` and renewed on every tick (about once
a second). A holder that dies stops renewing; another process takes the lease at its next tick
after the TTL and sends from then on. So any number of workers send the schedule once, and
losing the process that sent it pauses the schedule for `LEASE_TTL_MS` at the most.

A tick that cannot reach Redis sends nothing (the tasks would not be delivered either), and a
holder starved of CPU past the TTL may overlap its successor for a tick: every periodic task is
single-flight or idempotent, as when two beats ran side by side. A new holder sends each task
whose period has passed since its process started at once, then on its period.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery.beat import Scheduler

from worker.logs import get_logger

log = get_logger("leadrouter.beat")
#: how long a holder that stopped renewing keeps the lease
LEASE_TTL_MS = 10_000

# KEYS: the lease. ARGV: this process, the TTL. Returns 1 when this process holds it now.
TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS: the lease. ARGV: this process. Deletes it only if this process holds it.
GIVE_UP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class BeatLease:
    """One process's claim on the lease `key`; `hold()` takes or renews it, once a tick."""

    def __init__(self, client: redis.Redis, key: str, holder: str, ttl_ms: int = LEASE_TTL_MS):
        self.key, self.holder, self.ttl_ms = key, holder, ttl_ms
        self._take = client.register_script(TAKE)
        self._give_up = client.register_script(GIVE_UP)
        self.held = False

    def hold(self) -> bool:
        """Whether this process holds the lease now (taken or renewed for another TTL); logs
        each change: `beat.leading` when it takes the lease, `beat.following` when it lost it."""
        started = time.perf_counter()
        error = ""
        try:
            held = bool(self._take(keys=[self.key], args=[self.holder, self.ttl_ms]))
        except redis.RedisError as exc:
            held, error = False, type(exc).__name__
        if held != self.held:
            self.held = held
            event = "beat.leading" if held else "beat.following"
            took = round((time.perf_counter() - started) * 1000, 1)
            if error:
                log.warning(event, holder=self.holder, error=error, duration_ms=took)
            else:
                log.info(event, holder=self.holder, duration_ms=took)
        return held

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so the next process need not wait."""
        if not self.held:
            return
        self.held = False
        try:
            self._give_up(keys=[self.key], args=[self.holder])
        except redis.RedisError as exc:
            log.warning("beat.release_failed", holder=self.holder, error=type(exc).__name__)
            return
        log.info("beat.released", holder=self.holder)


class LeasedScheduler(Scheduler):
    """Celery's in-memory scheduler, sending only while `lease` is held (set by `leased`)."""

    lease: BeatLease

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.lease.hold():
            return float(self.max_interval or 1)
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        self.lease.release()
        super().close()


def leased(lease: BeatLease) -> type[LeasedScheduler]:
    """A scheduler class bound to `lease`: Celery builds the scheduler from a class."""
    return type("LeasedScheduler", (LeasedScheduler,), {"lease": lease})
