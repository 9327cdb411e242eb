"""When to try again: the one backoff rule every task shares.

Exponential from `RETRY_BACKOFF_BASE`, capped at `RETRY_BACKOFF_MAX`, with "equal jitter" (half
fixed, half random) so retries spread out but never come back at once. A server's Retry-After
wins over the backoff. Where the wait lands (the broker's countdown or Redis) is the task
base's business: see `worker/jobs/reliable.py`.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff(
    retries: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `retries + 2`, given `retries` retries so far."""
    pick: Callable[[float, float], float] = (rng or random).uniform
    if retry_after is not None:
        return retry_after + pick(0.0, min(1.0, 0.1 * retry_after + 0.05))
    ceiling = min(cap, base * 2.0 ** min(retries, 30))
    return ceiling / 2 + pick(0.0, ceiling / 2)
