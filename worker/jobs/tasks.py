"""Thin tasks over plain functions, and the one retry policy they all share.

`ReliableTask.__call__` is the policy: it counts redeliveries (a message that keeps killing
its worker is dead-lettered after `MAX_DELIVERIES` deliveries), binds the log context, and
turns what the task raises into the next step: a retryable error is retried with backoff (a
broker countdown when short, the Redis delayed set when long), a permanent one or used-up
retries go to the dead-letter list, and a payload that does not decode is dead-lettered as
poison.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import structlog
from celery import Celery, Task
from celery.exceptions import Retry
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import RedisError

from worker import errors
from worker.followups.poll import poll, route
from worker.health import stamp_heartbeat
from worker.jobs.celery_app import (
    TASK_ASSIGN,
    TASK_CANARY,
    TASK_MAILBOXES,
    TASK_NOTIFY,
    TASK_POLL,
    TASK_RELEASE,
    TASK_ROUTE,
)
from worker.jobs.deadletter import DeadLetter
from worker.jobs.queueing import task_message
from worker.jobs.retry import backoff
from worker.keys import QUEUE_ASSIGN, QUEUE_DEFAULT, QUEUE_FOLLOWUPS
from worker.logs import get_logger
from worker.routing.assign import assign
from worker.routing.mailbox import check_mailboxes
from worker.runtime import Runtime

log = get_logger("leadrouter.tasks")


class ReplyPayload(BaseModel):
    """What the receiver enqueues for one reply."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    email: str | None = None
    campaignId: str | None = None
    classification: str | None = None
    acceptedAt: float | None = None


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
    """Base of every task: delivery counting, log context, retry and dead-letter policy."""

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


def register(app: Celery, runtime: Runtime) -> dict[str, Task]:  # type: ignore[type-arg]
    """Register every task on `app`, bound to this process's `runtime`."""

    def base(subject: str, queue: str) -> type[ReliableTask]:
        return type(
            f"{subject.title()}Task",
            (ReliableTask,),
            {"runtime": runtime, "subject": subject, "queue_name": queue},
        )

    def task(name: str, subject: str, queue: str) -> Callable[[Callable[..., Any]], Task]:  # type: ignore[type-arg]
        return app.task(
            name=name,
            base=base(subject, queue),
            bind=False,
            ignore_result=True,
        )

    @task(TASK_ASSIGN, "reply", QUEUE_ASSIGN)
    def assign_reply(payload: dict[str, Any]) -> str:
        reply = ReplyPayload.model_validate(payload)
        request = assign_reply.request
        retries = int(request.retries or 0)
        structlog.contextvars.bind_contextvars(reply_id=reply.id)
        return assign(runtime, reply.model_dump(), attempt=retries + 1, retries=retries)

    def enqueue_route(note: dict[str, Any]) -> None:
        route_followup.apply_async(  # type: ignore[call-arg]
            args=(note,), argsrepr=f"[{subject_of((note,))}]"
        )

    def enqueue_notify(destination: str, note: dict[str, Any]) -> None:
        deliver_notification.apply_async(  # type: ignore[call-arg]
            args=(destination, note), argsrepr=f"[{subject_of((destination, note))}]"
        )

    @task(TASK_POLL, "poll", QUEUE_FOLLOWUPS)
    def poll_followups() -> int:
        return poll(runtime, enqueue_route).claimed

    @task(TASK_ROUTE, "followup", QUEUE_FOLLOWUPS)
    def route_followup(note: dict[str, Any]) -> str:
        if not isinstance(note, dict) or not isinstance(note.get("followup"), dict):
            raise errors.PoisonMessage("route_followup needs {followup, thread, sdr}")
        followup = note["followup"]
        structlog.contextvars.bind_contextvars(followup_id=followup.get("id"))
        return route(
            runtime, note, runtime.working_hours, enqueue_notify, runtime.notifier.destinations()
        )

    @task(TASK_NOTIFY, "notification", QUEUE_FOLLOWUPS)
    def deliver_notification(destination: str, note: dict[str, Any]) -> None:
        started = time.perf_counter()
        followup = note["followup"]
        runtime.notifier.deliver(destination, note)
        runtime.metrics.notifications.labels(destination, "delivered").inc()
        log.info(
            "notification.delivered",
            destination=destination,
            followup_id=followup.get("id"),
            sdr_id=note.get("sdr"),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            outcome="delivered",
        )

    @task(TASK_RELEASE, "release", QUEUE_DEFAULT)
    def release_due() -> int:
        moved = runtime.delayed.release_due()
        if moved:
            log.info("delayed.released", count=moved)
        return moved

    @task(TASK_CANARY, "canary", QUEUE_DEFAULT)
    def canary() -> None:
        stamp_heartbeat(runtime.redis, runtime.keys, str(canary.request.hostname))

    @task(TASK_MAILBOXES, "mailboxes", QUEUE_DEFAULT)
    def check_mailbox_health() -> dict[str, str]:
        return check_mailboxes(runtime)

    every = (
        assign_reply,
        poll_followups,
        route_followup,
        deliver_notification,
        release_due,
        canary,
        check_mailbox_health,
    )
    return {t.name: t for t in every}
