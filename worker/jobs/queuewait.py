"""How long a message waited on its queue: `leadrouter_queue_wait_seconds{queue}`.

Observed when a task starts (ReliableTask, before the delivery count and the run) as the start
minus the moment the message could first run, `max(ENQUEUED_AT_HEADER, eta)`:

* the header is stamped when the message is written: by `task_message` (the receiver, the
  sweep and backfill, orphans, `dlq replay`) and, for what Celery publishes (beat, follow-up
  routes and notifications, countdown retries), by the `before_task_publish` hook in
  worker/jobs/celery_app.py, which overwrites the copy a retry inherits;
* a countdown retry's `eta` is later than its stamp, so its planned backoff is not counted;
  a held reply or a long retry waits in the delayed set and is stamped with its due time, so
  what counts is beat's release (every second) and the queue after it;
* a message a dead worker left unacknowledged, restored by kombu, counts from its first stamp:
  the lost run and the visibility timeout are in it, as they are in the reply's delay.

A message without the header (queued by an older version) is not observed. The stamp is the
producer's clock and the start the worker's: hosts need synchronised clocks (a negative wait
counts as 0).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from worker.keys import ENQUEUED_AT_HEADER, QUEUES
from worker.metrics import Metrics


def _eta(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def runnable_since(request: Any) -> float | None:
    """When the message could first run (unix seconds); None without a readable stamp."""
    try:
        stamp = float(getattr(request, ENQUEUED_AT_HEADER, None))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(stamp):
        return None
    eta = _eta(getattr(request, "eta", None))
    return stamp if eta is None else max(stamp, eta)


def queue_of(request: Any, default: str) -> str:
    """The queue the message came from (its routing key), one of ours, else `default`."""
    routing = (getattr(request, "delivery_info", None) or {}).get("routing_key")
    return routing if routing in QUEUES else default


def observe_wait(metrics: Metrics, request: Any, default_queue: str) -> float | None:
    """Record the message's wait, if it carries a stamp; return it (seconds)."""
    since = runnable_since(request)
    if since is None:
        return None
    waited = max(0.0, time.time() - since)
    metrics.queue_wait.labels(queue_of(request, default_queue)).observe(waited)
    return waited
