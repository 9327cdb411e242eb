"""The one failure policy every task shares: `ReliableTask`.

`ReliableTask.__call__` counts redeliveries (a message that keeps killing its worker is
dead-lettered after `MAX_DELIVERIES` deliveries), binds the log context, and turns what the task
raises into the next step: a retryable error is retried with backoff (a broker countdown when
short, the Redis delayed set when long), a permanent one or used-up retries go to the
dead-letter list, and a payload that does not decode is dead-lettered as poison.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import structlog
from celery import Task
from celery.exceptions import Retry
from pydantic import ValidationError
from redis.exceptions import RedisError

from worker import errors
from worker.jobs.deadletter import DeadLetter
from worker.jobs.queueing import task_message
from worker.jobs.retry import backoff
from worker.keys import QUEUE_DEFAULT
from worker.logs import get_logger
from worker.runtime import Runtime

log = get_logger("leadrouter.tasks")


def subject_of(args: tuple[Any, ...]) -> str | None:
    """A reply's id, a follow-up's `id:dueAt`, or a notification's `destination:id:dueAt`."""
    first = args[0] if args else None
    if isinstance(first, str) and len(args) > 1:  # deliver_notification(destination, note)
        inner = subject_of(args[1:])
        return f"{first}:{inner}" if inner else None
    if not isinstance(first, dict):
        return None
    followup = first.get("followup")
    if isinstance(followup, dict) and isinstance(followup.get("id"), str):
        return f"{followup['id']}:{followup.get('dueAt')}"
    return str(first["id"]) if isinstance(first.get("id"), str) else None


class ReliableTask(Task):  # type: ignore[type-arg]
    """Base of every task: delivery counting, log context, retry and dead-letter policy.

    `register()` sets `runtime`, `subject` and `queue_name` on each task's own class.
    """

    runtime: ClassVar[Runtime]
    subject: ClassVar[str] = "task"
    queue_name: ClassVar[str] = QUEUE_DEFAULT
    max_retries = None  # the policy below decides, from Settings
    acks_late = True

    def subject_id(self, args: tuple[Any, ...]) -> str:
        """The id of what the task is about (reply, follow-up...), for logs and dead letters."""
        found = subject_of(args)
        return found if found is not None else str(self.request.id)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        rt = self.runtime
        retries = int(self.request.retries or 0)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            task_id=self.request.id, task=self.name, attempt=retries + 1
        )
        deliveries = 1
        if (self.request.delivery_info or {}).get("redelivered"):
            # kombu marks what it restores from a dead worker; only those are counted, so a
            # first delivery costs no Redis round trip
            deliveries = rt.count_delivery(str(self.request.id), retries) + 1
        if deliveries > rt.settings.max_deliveries:
            poison = errors.PoisonMessage(f"delivered {deliveries} times without finishing")
            return self._dead_letter(args, poison, retries + 1)
        try:
            return self.run(*args, **kwargs)
        except Retry:
            raise
        except errors.RetryableError as exc:
            return self._retry(args, exc, retries)
        except errors.PermanentError as exc:
            return self._dead_letter(args, exc, retries + 1)
        except ValidationError as exc:
            fields = ",".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
            poison = errors.PoisonMessage(f"payload does not decode (fields: {fields or '?'})")
            return self._dead_letter(args, poison, retries + 1)
        except RedisError as exc:
            # Redis hiccup: let the broker's retry carry it; if Redis is down the message stays
            # unacked and comes back after the visibility timeout.
            return self._retry(
                args, errors.TransportFailure(f"redis: {type(exc).__name__}"), retries
            )
        except TypeError as exc:
            poison = errors.PoisonMessage(f"arguments do not fit the task: {exc}")
            return self._dead_letter(args, poison, retries + 1)

    def _retry(self, args: tuple[Any, ...], exc: errors.RetryableError, retries: int) -> None:
        rt, settings = self.runtime, self.runtime.settings
        if retries >= settings.max_retries:
            return self._dead_letter(args, exc, retries + 1, reason="retries used up")
        delay = backoff(
            retries,
            base=settings.retry_backoff_base,
            cap=settings.retry_backoff_max,
            retry_after=exc.retry_after,
        )
        where = "countdown" if delay <= settings.max_countdown else "redis"
        log.info(
            f"{self.subject}.retry",
            **{f"{self.subject}_id": self.subject_id(args)},
            error=str(exc),
            error_type=type(exc).__name__,
            delay_s=round(delay, 2),
            held_in=where,
            outcome="retry",
        )
        if where == "countdown":
            raise self.retry(  # type: ignore[call-arg]
                args=tuple(args),
                kwargs={},
                countdown=delay,
                exc=exc,
                argsrepr=f"[{self.subject_id(args)}]",
            )
        message = task_message(
            self.name,
            list(args),
            queue=self.queue_name,
            task_id=str(self.request.id),
            retries=retries + 1,
            argsrepr=f"[{self.subject_id(args)}]",
        )
        rt.delayed.add(self.queue_name, message, time.time() + delay)
        return None

    def _dead_letter(
        self, args: tuple[Any, ...], exc: Exception, attempts: int, reason: str = "permanent"
    ) -> None:
        subject_id = self.subject_id(args)
        entry = DeadLetter(
            id=f"{self.subject}:{subject_id}",
            task=self.name,
            queue=self.queue_name,
            args=list(args),
            error=str(exc),
            error_type=type(exc).__name__,
            attempts=attempts,
            task_id=str(self.request.id),
        )
        self.runtime.dlq.add(entry)
        if self.subject == "reply":
            self.runtime.metrics.assignments.labels("dead_lettered").inc()
        fields = {
            f"{self.subject}_id": subject_id,
            "error": str(exc),
            "error_type": type(exc).__name__,
            "attempts": attempts,
            "reason": reason,
            "outcome": "dead_lettered",
        }
        if isinstance(exc, errors.AuthError):
            log.critical("leadterra.auth_failed", **fields)
        log.error(f"{self.subject}.dead_lettered", **fields)
        return None


# -- the tasks: thin adapters over plain functions; `task` is the bound ReliableTask ----------
