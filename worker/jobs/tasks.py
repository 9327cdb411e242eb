"""The tasks: thin adapters over plain functions, each run under `ReliableTask`'s policy
(worker/jobs/reliable.py): every run ends done, retried or dead-lettered, within its deadline,
whatever it raises. A task added to `TASKS` gets the same policy; it needs no error handling of
its own.

Each task is a module-level function that receives its task first (`bind=True`), so it reaches
the process's `Runtime` as `task.runtime`. `TASKS` lists them once (name, subject, queue,
function); `register(app, runtime)` puts them on the app when the process starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import structlog
from celery import Celery, Task
from pydantic import BaseModel, ConfigDict, Field

from worker import errors
from worker.drafts.sending import complete_sent_followup
from worker.followups.notify import log_fields
from worker.followups.poll import poll, route
from worker.health import stamp_heartbeat
from worker.intake.sweep import reconcile
from worker.jobs.orphans import recover
from worker.jobs.reliable import ReliableTask, subject_of
from worker.keys import (
    QUEUE_ASSIGN,
    QUEUE_DEFAULT,
    QUEUE_FOLLOWUPS,
    TASK_ASSIGN,
    TASK_CANARY,
    TASK_COMPLETE,
    TASK_MAILBOXES,
    TASK_NOTIFY,
    TASK_POLL,
    TASK_RECONCILE,
    TASK_RECOVER,
    TASK_RELEASE,
    TASK_ROUTE,
    TASK_WATCH,
)
from worker.logs import get_logger
from worker.routing.assign import assign
from worker.routing.mailbox_health import check_mailboxes
from worker.runtime import Runtime
from worker.sla.watch import watch

log = get_logger("leadrouter.tasks")


class ReplyPayload(BaseModel):
    """What the receiver enqueues for one reply."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    email: str | None = None
    campaignId: str | None = None
    classification: str | None = None
    acceptedAt: float | None = None
    #: how it came: `webhook` (the default, so messages queued before sources existed run),
    #: `reconcile` or `backfill`
    source: str = Field("webhook", min_length=1, max_length=20)


def assign_reply(task: ReliableTask, payload: dict[str, Any]) -> str:
    reply = ReplyPayload.model_validate(payload)
    retries = int(task.request.retries or 0)
    structlog.contextvars.bind_contextvars(reply_id=reply.id)
    return assign(task.runtime, reply.model_dump(), attempt=retries + 1, retries=retries)


def poll_followups(task: ReliableTask) -> int:
    return poll(task.runtime, partial(_enqueue_route, task.app)).claimed


def route_followup(task: ReliableTask, note: dict[str, Any]) -> str:
    if not isinstance(note, dict) or not isinstance(note.get("followup"), dict):
        raise errors.PoisonMessage("route_followup needs {followup, thread, sdr}")
    followup = note["followup"]
    structlog.contextvars.bind_contextvars(followup_id=followup.get("id"))
    runtime = task.runtime
    return route(
        runtime,
        note,
        runtime.working_hours,
        partial(_enqueue_notify, task.app),
        runtime.notifier.destinations(),
    )


def deliver_notification(task: ReliableTask, destination: str, note: dict[str, Any]) -> None:
    started = time.perf_counter()
    ids = log_fields(note)  # a follow-up's id, or an SLA note's reply, type and note id
    task.runtime.notifier.deliver(destination, note)
    task.runtime.metrics.notifications.labels(destination, "delivered").inc()
    log.info(
        "notification.delivered",
        destination=destination,
        **ids,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        outcome="delivered",
    )


def complete_followup(task: ReliableTask, payload: dict[str, Any]) -> str:
    """Complete a follow-up whose draft was sent (enqueued by worker/drafts/sending.py); a 409
    is done already, anything else is retried or dead-lettered by the policy."""
    if not isinstance(payload, dict):
        raise errors.PoisonMessage("complete_followup needs {id, sdrId, draftId}")
    structlog.contextvars.bind_contextvars(
        followup_id=payload.get("id"), draft_id=payload.get("draftId")
    )
    return complete_sent_followup(task.runtime, payload)


def release_due(task: ReliableTask) -> int:
    moved = task.runtime.delayed.release_due()
    if moved:
        log.info("delayed.released", count=moved)
    return moved


def canary(task: ReliableTask) -> None:
    stamp_heartbeat(task.runtime.redis, task.runtime.keys, str(task.request.hostname))


def reconcile_replies(task: ReliableTask) -> int:
    return reconcile(task.runtime).enqueued


def recover_orphans(task: ReliableTask) -> int:
    return recover(task.runtime).redelivered


def watch_handoffs(task: ReliableTask) -> dict[str, int]:
    return dict(watch(task.runtime, partial(_enqueue_notify, task.app)).counts)


def check_mailbox_health(task: ReliableTask) -> dict[str, str]:
    return check_mailboxes(task.runtime)


def _enqueue_route(app: Celery, note: dict[str, Any]) -> None:
    app.tasks[TASK_ROUTE].apply_async(  # type: ignore[call-arg]
        args=(note,), argsrepr=f"[{subject_of((note,))}]"
    )


def _enqueue_notify(app: Celery, destination: str, note: dict[str, Any]) -> None:
    app.tasks[TASK_NOTIFY].apply_async(  # type: ignore[call-arg]
        args=(destination, note), argsrepr=f"[{subject_of((destination, note))}]"
    )


class TaskSpec(NamedTuple):
    name: str
    subject: str  # what the task is about, in its log events and dead-letter ids
    queue: str
    function: Callable[..., Any]


TASKS = (
    TaskSpec(TASK_ASSIGN, "reply", QUEUE_ASSIGN, assign_reply),
    TaskSpec(TASK_POLL, "poll", QUEUE_FOLLOWUPS, poll_followups),
    TaskSpec(TASK_ROUTE, "followup", QUEUE_FOLLOWUPS, route_followup),
    TaskSpec(TASK_NOTIFY, "notification", QUEUE_FOLLOWUPS, deliver_notification),
    TaskSpec(TASK_COMPLETE, "followup", QUEUE_FOLLOWUPS, complete_followup),
    TaskSpec(TASK_RELEASE, "release", QUEUE_DEFAULT, release_due),
    TaskSpec(TASK_CANARY, "canary", QUEUE_DEFAULT, canary),
    TaskSpec(TASK_MAILBOXES, "mailboxes", QUEUE_DEFAULT, check_mailbox_health),
    TaskSpec(TASK_RECONCILE, "reconcile", QUEUE_DEFAULT, reconcile_replies),
    TaskSpec(TASK_WATCH, "sla", QUEUE_DEFAULT, watch_handoffs),
    TaskSpec(TASK_RECOVER, "orphans", QUEUE_DEFAULT, recover_orphans),
)


def register(app: Celery, runtime: Runtime) -> dict[str, Task]:  # type: ignore[type-arg]
    """Register every task in `TASKS` on `app`, bound to this process's `runtime`.

    Each becomes a ReliableTask whose `runtime`, `subject` and `queue_name` are set here (Celery
    turns extra task options into attributes of the task's class), and which receives itself as
    its first argument (`bind=True`).
    """
    registered: dict[str, Task] = {}  # type: ignore[type-arg]
    for spec in TASKS:
        task = app.task(
            name=spec.name,
            base=ReliableTask,
            bind=True,
            ignore_result=True,
            runtime=runtime,
            subject=spec.subject,
            queue_name=spec.queue,
        )(spec.function)
        registered[task.name] = task
    return registered
