"""The time budget of the work in hand: one deadline in a contextvar, honoured by every wait.

    with budget.deadline_in(settings.max_task_seconds):       # ReliableTask, per task run
        with budget.deadline_in(settings.leadterra_call_seconds) as at:   # the client, per call
            ...   # every socket wait is capped by what is left (worker/leadterra/transport.py)

The tighter deadline wins: a call inside a task ends by the task's deadline even when its own
is later. `remaining()` says what is left (None without a deadline), `cap()` shortens a
timeout to it, and `check()` raises `OutOfTime` (retryable) once it has passed. Celery's
thread pool ignores `task_time_limit`, so this is what bounds a task run: code that waits on
the network asks here first. A contextvar is per thread and per context, so a thread started
for the work carries the deadline only when run in a copy of the context
(`contextvars.copy_context().run`, as the follow-up poll does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from worker.errors import OutOfTime

_deadline: ContextVar[float | None] = ContextVar("leadrouter_deadline", default=None)


def deadline() -> float | None:
    """The deadline in force, as a `time.monotonic()` value, or None."""
    return _deadline.get()


@contextmanager
def deadline_in(seconds: float) -> Iterator[float]:
    """Within the block, the deadline is `seconds` from now, or the one in force if earlier."""
    at = time.monotonic() + seconds
    current = _deadline.get()
    if current is not None:
        at = min(at, current)
    token = _deadline.set(at)
    try:
        yield at
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline in force (0 or less once passed), or None."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


def cap(timeout: float | None) -> float | None:
    """`timeout` shortened to what is left of the deadline (never below 0)."""
    left = remaining()
    if left is None:
        return timeout
    left = max(0.0, left)
    return left if timeout is None else min(timeout, left)


def check(what: str) -> None:
    """Raise OutOfTime when the deadline in force has passed; `what` names the step refused."""
    left = remaining()
    if left is not None and left <= 0:
        raise OutOfTime(f"{what}: the time budget ran out {-left:.1f} s ago")
