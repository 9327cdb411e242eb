"""worker/jobs/monitor.py: the app Celery's tools load, built from the environment on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.service import ROOT


def test_the_tools_app_has_the_deployments_key_prefix_and_broker() -> None:
    code = (
        "from worker.jobs import monitor; c = monitor.app.conf; "
        "print(c.broker_transport_options['global_keyprefix'], c.broker_url, "
        "c.worker_send_task_events)"
    )
    env = {"KEY_PREFIX": "acme:", "REDIS_URL": "redis://cache:6380/2", "CELERY_EVENTS": "true"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "tests",  # no .env there
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.split() == ["acme:", "redis://cache:6380/2", "True"]


def test_nothing_is_built_at_import_and_other_names_are_missing() -> None:
    from worker.jobs import monitor

    assert "app" not in vars(monitor)
    with pytest.raises(AttributeError):
        monitor.celery  # noqa: B018 - the attribute lookup is the test
