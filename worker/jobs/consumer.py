"""Celery's consumer, with what it cannot read dead-lettered (worker/jobs/broker.py says why).

Its own module because it imports Celery's worker: beat, which loads our transport to publish,
does not need that resident (docs/benchmarks.md, "Footprint").
"""

from __future__ import annotations

import json
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from worker.jobs.broker import poison_entry, poison_store
from worker.logs import get_logger

log = get_logger("leadrouter.broker")


class Consumer(CeleryConsumer):
    """Celery's consumer, but what it cannot read is dead-lettered before it is dropped."""

    def _dead_letter(self, message: Any, error: Exception, task: str = "") -> None:
        try:
            raw = (
                message.body
                if isinstance(message.body, bytes | str)
                else json.dumps(message.body, default=str)
            )
        except Exception:  # whatever it is, keep what we can
            raw = repr(message)
        queue = (getattr(message, "delivery_info", None) or {}).get("routing_key", "?")
        prefix = self.app.conf.broker_transport_options.get("global_keyprefix", "")
        channel = getattr(message, "channel", None)
        if channel is None and self.connection is not None:
            channel = self.connection.default_channel
        store = poison_store(channel, prefix)
        entry = poison_entry(str(queue), raw, error, task)
        store.add(entry)
        log.error(
            "task.poison",
            queue=queue,
            entry_id=entry.id,
            task=task or None,
            error=entry.error,
            outcome="dead_lettered",
        )

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._dead_letter(message, exc)
        message.ack()

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._dead_letter(message, ValueError("not a task message"))
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._dead_letter(message, exc, str((message.headers or {}).get("task", "")))
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._dead_letter(message, exc, str((message.headers or {}).get("task", "")))
        super().on_invalid_task(body, message, exc)
