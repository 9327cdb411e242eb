"""The Celery app for Celery's own tools, built from Settings when a tool asks for it:

    celery --app worker.jobs.monitor:app flower     docker-compose.yml's `monitoring` profile
    celery --app worker.jobs.monitor:app events     task events in a terminal (CELERY_EVENTS)
    celery --app worker.jobs.monitor:app inspect active_queues

It has the deployment's broker, transport and key prefix (kombu's `global_keyprefix` prefixes
the event channels as well as the queues, so a tool without it sees nothing) and registers no
task. Nothing is built at import: `app` is made on first access (a module `__getattr__`), from
the environment, like every process's Settings. What Flower shows and cannot: docs/celery.md.
"""

from __future__ import annotations

from functools import cache

from celery import Celery

from config.settings import Settings
from worker.jobs.celery_app import create_celery


@cache
def _app() -> Celery:
    return create_celery(Settings())


def __getattr__(name: str) -> Celery:
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
