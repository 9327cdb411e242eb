"""A live web's /metrics, after a real reply went through a real worker, passes
`promtool check metrics` (Prometheus's own naming lint) and carries the gauges the alert rules
read (deploy/prometheus/alerts.yml)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.prometheus import needs_promtool
from tests.support.service import Service, start_service
from tests.support.webhooks import post_interested
from worker.deadline import wait_until

pytestmark = [
    pytest.mark.integration,
    needs_promtool,
]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path, METRICS_FLUSH_SECONDS="0.3")
    yield service
    service.close()


def samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def test_a_live_metrics_page_passes_promtool(service: Service) -> None:
    assert post_interested(service, "rpl_live_1").status_code == 202
    service.wait_handoffs(1, timeout=60)
    waited = ("leadrouter_queue_wait_seconds_count", (("queue", "assign"),))

    def page_when_complete() -> str | None:
        page = httpx.get(f"{service.admin_url}/metrics", timeout=5).text
        found = samples(page)
        ready = found.get(("leadrouter_ready", ())) == 1.0
        return page if ready and found.get(waited, 0) >= 1 else None

    page = wait_until(page_when_complete, 60, 0.3, what="the assign's wait and readiness")
    found = samples(page)
    assert found[("leadrouter_sdrs_at_work", ())] >= 1  # no hours set: always at work
    assert found[("leadrouter_queue_wait_seconds_count", (("queue", "default"),))] >= 1  # beat's
    assert any(name == "leadrouter_info" for name, _ in found)

    lint = subprocess.run(
        ["promtool", "check", "metrics"],
        input=page,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
