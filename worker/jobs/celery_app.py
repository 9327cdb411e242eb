"""The Celery app, configured from `Settings` so that no accepted reply is lost or doubled.

Each choice and its reason is in docs/celery.md. In short: late acks and reject-on-worker-lost
(a crash puts the message back); prefetch 1 (slow I/O, no hoarding); JSON only; no result
backend; a visibility timeout longer than any countdown (`Settings.max_countdown` is a third of
it, longer waits are held in Redis); kombu's unacked sweep every few seconds instead of ~100 s;
`max_connections` above the concurrency; and our own keys under the deployment's prefix.

The threads pool enforces neither `task_time_limit` nor `reject_on_worker_lost` for an exception
that is not an Exception; both are made good by the task base (worker/jobs/reliable.py): a
deadline on every run (`Settings.max_task_seconds`, worker/budget.py) and a requeue.

Every message our apps publish (beat's, the follow-up routes and notifications, countdown
retries) is stamped with `ENQUEUED_AT_HEADER` by a `before_task_publish` hook, as the receiver's
own messages are (worker/jobs/queuewait.py). `CELERY_EVENTS` turns on task events for Flower and
celery-exporter (docs/celery.md, "Monitoring").
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from celery.signals import before_task_publish

from config.settings import Settings
from worker.jobs.orphans import RECOVER_EVERY
from worker.keys import (
    ENQUEUED_AT_HEADER,
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
from worker.redis_conn import broker_config, sentinel_options

RELEASE_EVERY = 1.0
CANARY_EVERY = 5.0
CANARY_OPTIONS: dict[str, Any] = {"expires": 10, "queue": QUEUE_DEFAULT}
TASK_TIME_LIMIT = 60  # for a pool that enforces it; the threads pool does not (docs/celery.md)


def restore_interval(settings: Settings) -> int:
    """Seconds between kombu's sweeps for messages a dead worker left unacked."""
    return max(1, min(5, settings.visibility_timeout // 3))


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """What beat sends: release due waits, the recovery of lost messages, the canary, the
    follow-up poll, the reconcile sweep (unless RECONCILE_SECONDS is 0), the SLA watch (when
    SLA_MINUTES is set), mailbox checks."""
    schedule: dict[str, Any] = {
        "release-delayed": {
            "task": TASK_RELEASE,
            "schedule": RELEASE_EVERY,
            "options": {"expires": 5, "queue": QUEUE_DEFAULT},
        },
        "recover-orphans": {
            "task": TASK_RECOVER,
            "schedule": RECOVER_EVERY,
            "options": {"expires": RECOVER_EVERY, "queue": QUEUE_DEFAULT},
        },
        "canary": {"task": TASK_CANARY, "schedule": CANARY_EVERY, "options": {**CANARY_OPTIONS}},
        "poll-followups": {
            "task": TASK_POLL,
            "schedule": settings.followup_poll_seconds,
            "options": {"expires": settings.followup_poll_seconds, "queue": QUEUE_FOLLOWUPS},
        },
    }
    if settings.reconcile_seconds:
        schedule["reconcile-replies"] = {
            "task": TASK_RECONCILE,
            "schedule": float(settings.reconcile_seconds),
            "options": {"expires": settings.reconcile_seconds, "queue": QUEUE_DEFAULT},
        }
    if settings.sla_minutes:
        schedule["watch-handoffs"] = {
            "task": TASK_WATCH,
            "schedule": settings.sla_check_seconds,
            "options": {"expires": settings.sla_check_seconds, "queue": QUEUE_DEFAULT},
        }
    if settings.leadterra_sdr_api_keys:
        schedule["check-mailboxes"] = {
            "task": TASK_MAILBOXES,
            "schedule": float(settings.mailbox_health_seconds),
            "options": {"expires": settings.mailbox_health_seconds, "queue": QUEUE_DEFAULT},
        }
    return schedule


def transport_options(settings: Settings) -> dict[str, Any]:
    """kombu's Redis transport: visibility timeout, unacked sweep, connections, key prefix;
    with REDIS_SENTINELS, the master's name and how to ask the Sentinels."""
    return {
        **sentinel_options(settings),
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": restore_interval(settings),
        "unacked_restore_throttle": 1,
        "max_connections": settings.worker_concurrency + 20,
        "socket_keepalive": True,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
        "global_keyprefix": settings.key_prefix,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """Every Celery setting this service sets (the reasons are in docs/celery.md)."""
    return {
        # REDIS_URL, or kombu's sentinel:// (worker/redis_conn.py); either way our transport
        # (kombu's Redis or Sentinel one) and Celery's consumer, with poison dead-lettered
        **broker_config(settings),
        "broker_transport_options": transport_options(settings),
        "worker_consumer": "worker.jobs.consumer:Consumer",
        "broker_connection_retry_on_startup": True,
        "broker_pool_limit": settings.worker_concurrency + 10,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_backend": None,
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": 30.0,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        # CELERY_EVENTS: task events for Flower and celery-exporter (docs/celery.md)
        "worker_send_task_events": settings.celery_events,
        "task_send_sent_event": settings.celery_events,
        "task_time_limit": TASK_TIME_LIMIT,
        "task_default_queue": QUEUE_DEFAULT,
        "task_create_missing_queues": True,
        "task_routes": {
            TASK_ASSIGN: {"queue": QUEUE_ASSIGN},
            TASK_POLL: {"queue": QUEUE_FOLLOWUPS},
            TASK_ROUTE: {"queue": QUEUE_FOLLOWUPS},
            TASK_NOTIFY: {"queue": QUEUE_FOLLOWUPS},
            TASK_COMPLETE: {"queue": QUEUE_FOLLOWUPS},
            TASK_RECONCILE: {"queue": QUEUE_DEFAULT},
            TASK_WATCH: {"queue": QUEUE_DEFAULT},
            TASK_RECOVER: {"queue": QUEUE_DEFAULT},
        },
        "beat_schedule": beat_schedule(settings),
        "enable_utc": True,
        "timezone": "UTC",
    }


def stamp_enqueued(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """`before_task_publish`: stamp our tasks' messages with the time they were published (a
    retry inherits its first message's headers: the stamp is replaced, not kept)."""
    if headers is not None and str(headers.get("task", "")).startswith("leadrouter."):
        headers[ENQUEUED_AT_HEADER] = time.time()


def send_canary(app: Celery) -> None:
    """Send one canary now, as beat does every CANARY_EVERY: a worker sends it when its
    consumer is up, so /readyz turns green as soon as it consumes one, not a period later."""
    app.send_task(TASK_CANARY, **CANARY_OPTIONS)


def create_celery(settings: Settings) -> Celery:
    """A Celery app for this deployment; tasks are registered by `worker.jobs.tasks.register`."""
    app = Celery("leadrouter", set_as_current=False, fixups=[])
    app.conf.update(celery_config(settings))
    # Celery's signals are process-wide: connected once, for our task names only
    before_task_publish.connect(stamp_enqueued, weak=False, dispatch_uid=ENQUEUED_AT_HEADER)
    return app
