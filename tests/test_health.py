"""Readiness on real processes (worker/health.py): green once a worker consumed a canary."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.service import start_service
from worker.deadline import wait_until
from worker.keys import text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_a_starting_worker_proves_it_consumes_without_waiting_for_beat(tmp_path: Path) -> None:
    """No beat runs here: the canary consumed is the one the worker sent through the broker
    when its consumer came up (worker/cli/processes.py), so /readyz is green within seconds of
    a start, and still only once a message went through the queue."""
    service = start_service(tmp_path, processes=("web",))
    try:
        ready = f"{service.admin_url}/readyz"
        assert httpx.get(ready).status_code == 503
        worker = service.start("worker")
        wait_until(lambda: httpx.get(ready).status_code == 200, 30, 0.1, alive=[worker])
        stamp = service.redis().get(service.keys.heartbeat)
        assert stamp is not None
        assert text(stamp).partition("|")[2].startswith(f"leadrouter-{worker.pid}@")
    finally:
        service.close()
