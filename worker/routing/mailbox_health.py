"""Live mailbox health: each SDR's Gmail, checked with the SDR's own key.

Beat runs `check_mailboxes` every MAILBOX_HEALTH_SECONDS when LEADTERRA_SDR_API_KEYS is set.
Each SDR's state (`healthState` from GET /v1/sdr/gmail/status; `disconnected` when
`connected` is false) goes into a Redis hash that the pick's Lua call reads, so the hot path
never waits on it. Anything but `active` makes the SDR ineligible until the next check. Each
change is logged once, even with two beats: the swap is atomic and only its caller sees the
old value.
"""

from __future__ import annotations

import time

from worker import errors
from worker.keys import text
from worker.logs import get_logger
from worker.runtime import Runtime

log = get_logger("leadrouter.mailbox")

# KEYS: health hash. ARGV: SDR id, new state, TTL. Returns the previous state (or false).
SWAP = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return old
"""


def check_mailboxes(rt: Runtime) -> dict[str, str]:
    """Check every SDR that has its own key; return each one's state."""
    swap = rt.redis.register_script(SWAP)
    ttl = rt.settings.mailbox_health_seconds * 3
    states: dict[str, str] = {}
    for sdr_id in sorted(rt.settings.leadterra_sdr_api_keys):
        started = time.perf_counter()
        try:
            status = rt.for_sdr(sdr_id).gmail_status()
        except errors.ServiceError as exc:
            log.warning(
                "sdr.mailbox_check_failed",
                sdr_id=sdr_id,
                error=str(exc),
                error_type=type(exc).__name__,
            )
            continue
        state = status.health_state if status.connected else "disconnected"
        raw = swap(keys=[rt.keys.mailbox_health], args=[sdr_id, state, ttl])
        previous = None if raw is None else text(raw)
        states[sdr_id] = state
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        if previous == state:
            continue
        if state != "active":
            log.warning(
                "sdr.mailbox_unhealthy",
                sdr_id=sdr_id,
                state=state,
                previous=previous,
                duration_ms=duration_ms,
                outcome="ineligible",
            )
        elif previous is not None:
            log.info(
                "sdr.mailbox_recovered",
                sdr_id=sdr_id,
                state=state,
                previous=previous,
                duration_ms=duration_ms,
                outcome="eligible",
            )
    # An SDR whose key was removed is never checked again: drop its last state, or an unhealthy
    # one would keep it out of the rotation for good (the hash's TTL is renewed every check).
    keyed = rt.settings.leadterra_sdr_api_keys
    stale = [f for f in rt.redis.hkeys(rt.keys.mailbox_health) if text(f) not in keyed]
    if stale:
        rt.redis.hdel(rt.keys.mailbox_health, *stale)
    return states
