"""Flower, started the way docker-compose.yml's `monitoring` profile starts it, sees our tasks
with CELERY_EVENTS on: a webhook's assign from `task-received` on (the receiver writes its
messages itself, so there is no `task-sent`), and beat's canary from `task-sent` (docs/celery.md,
"Monitoring")."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import Service, start_service
from tests.support.webhooks import post_interested
from worker.deadline import wait_http, wait_until
from worker.embedded_redis import free_port
from worker.keys import TASK_ASSIGN, TASK_CANARY

pytest.importorskip("flower", reason="Flower is a dev dependency (pip install -e '.[dev]')")
pytestmark = pytest.mark.integration


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path, CELERY_EVENTS="true")
    yield service
    service.close()


def flower_events(url: str) -> set[tuple[str, str]]:
    """(task, event type) pairs Flower has counted."""
    page = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (s.labels["task"], s.labels["type"])
        for family in text_string_to_metric_families(page)
        if family.name == "flower_events"
        for s in family.samples
        if s.name == "flower_events_total" and s.value > 0
    }


def test_flower_sees_the_webhooks_assign_from_received_and_beats_tasks_from_sent(
    service: Service,
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "celery", "--app", "worker.jobs.monitor:app", "flower"]
    flower = service.children.start("flower", [*argv, f"--port={port}", "--address=127.0.0.1"])
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthcheck", 60, ok=(200,), alive=[flower])
    # Flower subscribes in a thread of its own after it answers: events before that are lost
    # (pub/sub), so the webhook goes once it has counted beat's first tasks
    wait_until(lambda: flower_events(url), 60, 0.5, what="Flower's first events", alive=[flower])

    assert post_interested(service, "rpl_flower_1").status_code == 202
    service.wait_handoffs(1, timeout=60)
    wanted = {
        (TASK_ASSIGN, "task-received"),
        (TASK_ASSIGN, "task-succeeded"),
        (TASK_CANARY, "task-sent"),
        (TASK_CANARY, "task-succeeded"),
    }
    seen = wait_until(
        lambda: (found := flower_events(url)) >= wanted and found,
        60,
        0.5,
        what="Flower's counts of our tasks' events",
        alive=[flower],
    )
    assert (TASK_ASSIGN, "task-sent") not in seen  # written by the receiver, not by Celery
