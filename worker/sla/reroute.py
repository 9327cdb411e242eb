"""A re-route: the reply goes to another SDR with `forceForward`, at most once per attempt.

The order is what makes "at most once" hold with two beats, concurrent workers and a worker
killed mid-step:

1. claim `sla:claim:{reply}:{attempt}` (SET NX): whoever finds it taken does not call, and the
   watch escalates the reply (a claim with no recorded outcome means the outcome is unknown);
2. re-read the current SDR's inbox: a thread that is no longer `new` was just acted on, and the
   claim is given back;
3. pick among the SDRs who never had the reply (the rotation's pick for this attempt, which
   moves the rotation like any pick);
4. call `POST /v1/replies/{id}/assign` with `forceForward: true`. A refusal (4xx) means nothing
   happened, and a 429 that nothing happened yet (the claim is given back); any other failure
   (timeout, 5xx, a 2xx we cannot read) leaves the outcome unknown, and the call is never made
   again: the reply is escalated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from worker import errors
from worker.runtime import Runtime
from worker.sla.ledger import Attempt, Handoff

#: why a re-route did not happen; each but `acted` and `unread` escalates the reply
REROUTED, ACTED, UNREAD = "rerouted", "acted", "unread"
CLAIMED_BEFORE, NOBODY_ELIGIBLE, REFUSED, OUTCOME_UNKNOWN = (
    "claimed_before",
    "nobody_else_eligible",
    "refused",
    "outcome_unknown",
)


@dataclass(frozen=True)
class Rerouted:
    outcome: str
    attempt: Attempt | None = None
    error: str | None = None


def reroute(rt: Runtime, handoff: Handoff, still_new: Callable[[], bool | None]) -> Rerouted:
    """Hand the reply to the next SDR (see the module docstring); `still_new()` re-reads the
    current thread: True (still `new`), False (acted on), None (the read failed)."""
    current = handoff.current
    attempt = current.attempt + 1
    claim = rt.keys.sla_claim(handoff.reply_id, attempt)
    if not rt.redis.set(claim, repr(time.time()), nx=True, ex=rt.settings.dedupe_ttl_seconds):
        return Rerouted(CLAIMED_BEFORE)
    status = still_new()
    if status is not True:
        rt.redis.delete(claim)  # nothing was called: the next check may try again
        return Rerouted(ACTED if status is False else UNREAD)
    never = {a.sdr_id for a in handoff.attempts}
    policy = rt.policy.policy(datetime.now(UTC), handoff.email)
    try:
        pick = rt.rotation.pick(
            handoff.reply_id, policy, rt.leadterra.list_sdrs, attempt=attempt, never=never
        )
    except errors.NoEligibleSdr:
        return Rerouted(NOBODY_ELIGIBLE)
    sdr_id = str(pick.sdr_id)
    try:
        answer = rt.leadterra.assign_reply(
            handoff.reply_id,
            sdr_id,
            category=rt.settings.assign_category,
            skip_icp_check=rt.settings.assign_skip_icp_check,
            force_forward=True,
        )
    except errors.RateLimited:  # a 429, or our own limit: Leadterra did nothing yet
        rt.redis.delete(claim)
        return Rerouted(UNREAD, error="rate limited: tried again at the next check")
    except errors.UnexpectedAnswer as unknown:  # a 2xx we cannot read: it may have happened
        return Rerouted(OUTCOME_UNKNOWN, error=rt.scrub(f"{type(unknown).__name__}: {unknown}"))
    except errors.PermanentError as refused:
        return Rerouted(REFUSED, error=rt.scrub(f"{type(refused).__name__}: {refused}"))
    except errors.ServiceError as unknown:
        return Rerouted(OUTCOME_UNKNOWN, error=rt.scrub(f"{type(unknown).__name__}: {unknown}"))
    if answer.already_assigned or answer.result is None:  # a 409 to forceForward: not documented
        return Rerouted(OUTCOME_UNKNOWN, error="409 to a forceForward assign")
    thread_id = answer.result.thread_id
    return Rerouted(REROUTED, Attempt(attempt, sdr_id, thread_id, time.time()))
