"""One rate limit for every call to Leadterra, across all worker processes and hosts.

GCRA in one Lua call on Redis's own clock (`TIME`), so hosts with skewed clocks still share one
schedule. A caller reserves the next free slot up to `LOOKAHEAD` seconds ahead and sleeps until
it; further out, it waits a little and asks again. A 429 from Leadterra sets a shared
`pause_until` that every worker honours before its next call. Celery's `rate_limit` is per worker
and is not used.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from worker.errors import RateLimited
from worker.keys import Keys

LOOKAHEAD = 1.0
MAX_BLOCK_SECONDS = 20.0

# KEYS: tat, pause_until. ARGV: interval (s), burst, lookahead (s).
# Returns {granted (0/1), wait seconds as a string}.
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then return {0, tostring(pause - now)} end
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then return {0, tostring(wait)} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, tostring(wait)}
"""

# KEYS: pause_until. ARGV: seconds. Extends the shared pause, never shortens it.
PAUSE = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return tostring(math.max(until_, current))
"""


class RateGate:
    """`acquire()` before each call; `pause(seconds)` after a 429."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        max_rps: float,
        burst: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_block: float = MAX_BLOCK_SECONDS,
    ) -> None:
        self._keys = [keys.rate_tat, keys.rate_pause]
        self._pause_key = keys.rate_pause
        self._interval = 1.0 / max_rps
        self._burst = burst
        self._gcra = client.register_script(GCRA)
        self._pause = client.register_script(PAUSE)
        self._sleep = sleep
        self._max_block = max_block

    def try_acquire(self) -> tuple[bool, float]:
        """Reserve a slot: (True, seconds to sleep first) or (False, seconds until worth asking)."""
        granted, wait = self._gcra(keys=self._keys, args=[self._interval, self._burst, LOOKAHEAD])
        return bool(granted), float(wait)

    def acquire(self, max_block: float | None = None) -> float:
        """Block until this caller may call Leadterra; return the seconds waited.

        Raises RateLimited (retryable) when the wait would pass `max_block` (the gate's own
        bound, or a shorter one: what is left of a task's time budget), so the task is retried
        later instead of holding a worker thread for long.
        """
        bound = self._max_block if max_block is None else min(max_block, self._max_block)
        waited = 0.0
        while True:
            granted, wait = self.try_acquire()
            if granted:
                if wait > 0:
                    self._sleep(wait)
                return waited + wait
            if waited + wait > bound:
                raise RateLimited(
                    "global rate limit or a shared 429 pause", retry_after=wait, status=None
                )
            step = min(wait, LOOKAHEAD)
            self._sleep(step)
            waited += step

    def pause(self, seconds: float) -> None:
        """Every worker waits `seconds` before its next call (after a 429)."""
        self._pause(keys=[self._pause_key], args=[max(0.05, seconds)])
