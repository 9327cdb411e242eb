"""The one failure policy every task shares: `ReliableTask`.

Every run of every task (the ones in worker/jobs/tasks.py and any added later) ends in exactly
one of three ways, each logged once with the subject's id:

    done            the task returned
    retried         `{subject}.retry`: with backoff (worker/jobs/retry.py), a broker countdown
                    when short, the Redis delayed set when long; at most MAX_RETRIES times
    dead-lettered   `{subject}.dead_lettered`: the dead-letter list, with the error's type name,
                    its scrubbed message and the attempts, for `leadrouter dlq replay`

Never acknowledged and dropped. What decides:

    RetryableError (worker/errors.py), RedisError      retried, then dead-lettered
    PermanentError                                     dead-lettered at once
    ValidationError of the payload, or arguments that  dead-lettered at once as PoisonMessage
      do not fit the task's signature
    any other Exception (the open world)               retried as `Unclassified`, under the
                                                       original's type name, then dead-lettered
    MemoryError, and BaseExceptions that are not       the message is requeued (Celery's Reject):
      Exceptions (SystemExit, KeyboardInterrupt...)    delivered again, and dead-lettered as
                                                       poison after MAX_DELIVERIES deliveries

The last row is the redelivery and poison path a killed worker takes. Celery's thread pool has
no working path of its own for these: it wraps them in WorkerLostError and hands that to a
callback that cannot unpack it, so the message would sit unacknowledged, silently, until
kombu's visibility sweep. A message delivered more than MAX_DELIVERIES times (kombu marks
what it restores as redelivered; only those are counted) is dead-lettered before it runs.

Messages are scrubbed of every secret in every escaped form (`worker.logs.scrub`) before they
reach a log line or a dead letter, and cut to `MAX_ERROR_TEXT`; an exception whose `str()`
itself fails is described by its type. When the decision itself cannot be recorded (Redis
refuses the dead letter or the delayed entry), the message is requeued rather than acked.

Each run has a deadline, `Settings.max_task_seconds` (below a third of VISIBILITY_TIMEOUT), set
in worker/budget.py: every Leadterra call and rate-limit wait ends by it, and one that would
start after it raises OutOfTime (retried). A run that still ends past it (code that waits on
nothing of ours) is logged as `{subject}.overran`.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any, ClassVar

import structlog
from celery import Task
from celery.exceptions import Ignore, Reject, Retry
from pydantic import ValidationError
from redis.exceptions import RedisError

from worker import budget, errors
from worker.jobs.deadletter import DeadLetter
from worker.jobs.queueing import source_of, task_message
from worker.jobs.queuewait import observe_wait
from worker.jobs.retry import backoff
from worker.keys import QUEUE_DEFAULT
from worker.logs import get_logger
from worker.runtime import Runtime

log = get_logger("leadrouter.tasks")
CELERY_CONTROL = (Retry, Reject, Ignore)  # Celery's own signals pass through untouched
MAX_ERROR_TEXT = 500
OVERRUN_GRACE = 1.0
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def type_name(exc: BaseException) -> str:
    """`KeyError` for a built-in, `module.Qualified` for anything else."""
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def message_of(exc: BaseException) -> str:
    """`str(exc)` cut to MAX_ERROR_TEXT; an exception whose `str()` fails is described so."""
    try:
        text = str(exc)
    except Exception:
        text = "(its message cannot be rendered)"
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 1] + "\u2026"
    return text or "(no message)"


def origin(trace: TracebackType | None) -> str | None:
    """Where an exception was raised: the innermost frame, as `path:line in function`."""
    if trace is None:
        return None
    while trace.tb_next is not None:
        trace = trace.tb_next
    code = trace.tb_frame.f_code
    path = (
        os.path.relpath(code.co_filename, _ROOT)
        if code.co_filename.startswith(_ROOT)
        else code.co_filename
    )
    return f"{path}:{trace.tb_lineno} in {code.co_name}"


def _signature_mismatch(exc: TypeError) -> bool:
    """Whether the TypeError is the call itself refusing the arguments (no frame of the task
    function ever ran), rather than one raised somewhere inside it."""
    return exc.__traceback__ is not None and exc.__traceback__.tb_next is None


class ReliableTask(Task):  # type: ignore[type-arg]
    """Base of every task: delivery counting, log context, deadline, retry and dead-letter
    policy (see the module docstring).

    `register()` sets `runtime`, `subject` and `queue_name` on each task's own class.
    """

    runtime: ClassVar[Runtime]
    subject: ClassVar[str] = "task"
    queue_name: ClassVar[str] = QUEUE_DEFAULT
    max_retries = None  # the policy below decides, from Settings
    acks_late = True

    def subject_id(self, args: tuple[Any, ...]) -> str:
        """The id of what the task is about (reply, follow-up...), for logs and dead letters."""
        if not args:  # a periodic task: one dead letter per task, replaced, not one per run
            return self.name
        found = subject_of(args)
        return found if found is not None else str(self.request.id)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        retries = int(self.request.retries or 0)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            task_id=self.request.id, task=self.name, attempt=retries + 1
        )
        try:
            observe_wait(self.runtime.metrics, self.request, self.queue_name)
            return self._run_once(args, kwargs, retries)
        except CELERY_CONTROL:
            raise
        except Exception as failed:  # the decision could not be recorded: never ack it
            raise self._requeue(args, failed, "its outcome could not be recorded") from None

    def _run_once(self, args: tuple[Any, ...], kwargs: dict[str, Any], retries: int) -> Any:
        rt = self.runtime
        deliveries = 1
        if (self.request.delivery_info or {}).get("redelivered"):
            # kombu marks what it restores from a dead worker; only those are counted, so a
            # first delivery costs no Redis round trip
            deliveries = rt.count_delivery(str(self.request.id), retries) + 1
        if deliveries > rt.settings.max_deliveries:
            poison = errors.PoisonMessage(f"delivered {deliveries} times without finishing")
            return self._dead_letter(args, poison, retries + 1)
        started = time.monotonic()
        try:
            with budget.deadline_in(rt.settings.max_task_seconds):
                return self.run(*args, **kwargs)
        except CELERY_CONTROL:
            raise
        except MemoryError as exc:
            raise self._requeue(args, exc, "the worker ran out of memory") from None
        except Exception as exc:
            return self._settle(args, exc, retries)
        except BaseException as exc:
            raise self._requeue(args, exc, "interrupted") from None
        finally:
            self._note_overrun(args, started)

    def _settle(self, args: tuple[Any, ...], exc: Exception, retries: int) -> Any:
        """Retry or dead-letter what the task raised (the table in the module docstring)."""
        if isinstance(exc, errors.RetryableError):
            return self._retry(args, exc, retries)
        if isinstance(exc, errors.PermanentError):
            return self._dead_letter(args, exc, retries + 1)
        if isinstance(exc, ValidationError):
            fields = ",".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
            poison = errors.PoisonMessage(f"payload does not decode (fields: {fields or '?'})")
            return self._dead_letter(args, poison, retries + 1)
        if isinstance(exc, RedisError):
            # Redis hiccup: let the broker's retry carry it; if Redis is down the message stays
            # unacked and comes back after the visibility timeout.
            failure = errors.TransportFailure(f"redis: {type(exc).__name__}")
            return self._retry(args, failure, retries)
        if isinstance(exc, TypeError) and _signature_mismatch(exc):
            poison = errors.PoisonMessage(f"arguments do not fit the task: {message_of(exc)}")
            return self._dead_letter(args, poison, retries + 1)
        unknown = errors.Unclassified(
            self.runtime.scrub(message_of(exc)),
            error_type=self.runtime.scrub(type_name(exc)),
            where=origin(exc.__traceback__),
        )
        return self._retry(args, unknown, retries)

    def _described(self, exc: Exception) -> dict[str, Any]:
        """The error's fields for a log event or a dead letter: type name, scrubbed message,
        and where an unclassified one was raised."""
        if isinstance(exc, errors.Unclassified):
            return {"error": str(exc), "error_type": exc.error_type, "error_at": exc.where}
        return {"error": self.runtime.scrub(message_of(exc)), "error_type": type(exc).__name__}

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
            **self._described(exc),
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
        due = time.time() + delay
        message = task_message(
            self.name,
            list(args),
            queue=self.queue_name,
            task_id=str(self.request.id),
            retries=retries + 1,
            argsrepr=f"[{self.subject_id(args)}]",
            enqueued_at=due,
        )
        rt.delayed.add(self.queue_name, message, due)
        return None

    def _dead_letter(
        self, args: tuple[Any, ...], exc: Exception, attempts: int, reason: str = "permanent"
    ) -> None:
        subject_id = self.subject_id(args)
        described = self._described(exc)
        entry = DeadLetter(
            id=f"{self.subject}:{subject_id}",
            task=self.name,
            queue=self.queue_name,
            args=list(args),
            error=described["error"],
            error_type=described["error_type"],
            attempts=attempts,
            task_id=str(self.request.id),
        )
        self.runtime.dlq.add(entry)
        if self.subject == "reply":
            first = args[0] if args and isinstance(args[0], dict) else {}
            self.runtime.metrics.assignments.labels("dead_lettered", source_of(first)).inc()
        fields = {
            f"{self.subject}_id": subject_id,
            **described,
            "attempts": attempts,
            "reason": reason,
            "outcome": "dead_lettered",
        }
        if isinstance(exc, errors.AuthError):
            log.critical("leadterra.auth_failed", **fields)
        log.error(f"{self.subject}.dead_lettered", **fields)
        return None

    def _requeue(self, args: tuple[Any, ...], exc: BaseException, why: str) -> Reject:
        """Log the requeue and return Celery's Reject that puts the message back, marked
        redelivered, so the delivery count (and poison after MAX_DELIVERIES) applies."""
        log.error(
            f"{self.subject}.requeued",
            **{f"{self.subject}_id": self.subject_id(args)},
            error=self.runtime.scrub(message_of(exc)),
            error_type=self.runtime.scrub(type_name(exc)),
            error_at=origin(exc.__traceback__),
            reason=why,
            max_deliveries=self.runtime.settings.max_deliveries,
            outcome="requeued",
        )
        return Reject("requeued: delivered again, poison after MAX_DELIVERIES", requeue=True)

    def _note_overrun(self, args: tuple[Any, ...], started: float) -> None:
        took = time.monotonic() - started
        limit = self.runtime.settings.max_task_seconds
        if took > limit + OVERRUN_GRACE:
            log.warning(
                f"{self.subject}.overran",
                **{f"{self.subject}_id": self.subject_id(args)},
                duration_s=round(took, 1),
                deadline_s=round(limit, 1),
            )


# -- the tasks: thin adapters over plain functions; `task` is the bound ReliableTask ----------
