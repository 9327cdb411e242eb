"""What `leadrouter web|worker|beat` import: every module loaded stays resident for the life of
the process, so each loads only what it runs (docs/benchmarks.md, "Footprint"). Each check runs
in a fresh interpreter: this one has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from worker.cli.main import LAZY, UNUSED_BY_SERVICES, cli

#: Settings as an entry point builds them (tests.conftest would load test libraries)
SETTINGS = (
    "from config.settings import Settings\n"
    "settings = Settings(_env_file=None, leadterra_api_key='sk_test_workspace',"
    " leadterra_webhook_secret='whsec_test_0123456789', redis_url='redis://127.0.0.1:1/0',"
    " {extra})\n"
)


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    script = (
        f"{code}\nimport json, sys\nprint(json.dumps([k for k, v in sys.modules.items() if v]))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return set(json.loads(run.stdout.splitlines()[-1]))


def tops(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_the_receiver_loads_neither_celery_nor_an_http_client() -> None:
    loaded = loaded_after(
        SETTINGS.format(extra="") + "from worker.cli.processes import run_web\n"
        "from worker.metrics import Metrics\n"
        "from worker.receiver.admin import create_admin_app\n"
        "from worker.receiver.server import serve\n"
        "from worker.receiver.web import create_app, redis_for_web\n"
        "client, metrics = redis_for_web(settings), Metrics()  # as run_web builds them\n"
        "create_app(settings, client=client, metrics=metrics)\n"
        "create_admin_app(settings, client=client, metrics=metrics)"
    )
    assert not tops(loaded) & {"celery", "kombu", "httpx", "leadterra_sandbox"}


def test_the_one_click_routes_load_when_configured() -> None:
    loaded = loaded_after(
        SETTINGS.format(extra="action_secret='a' * 32")
        + "from worker.receiver.web import create_app\n"
        "create_app(settings)"
    )
    assert "worker.oneclick.web_routes" in loaded


def test_beat_loads_no_celery_worker_and_no_http_client() -> None:
    loaded = loaded_after(
        SETTINGS.format(extra="") + "from worker.cli.processes import run_beat\n"
        "from worker.jobs.celery_app import create_celery\n"
        "app = create_celery(settings)\n"
        "app.connection().transport  # loads our kombu transport, as beat's publisher does"
    )
    assert "worker.jobs.broker" in loaded
    assert not {m for m in loaded if m.startswith("celery.worker")}
    assert not tops(loaded) & {"httpx", "prometheus_client", "starlette", "uvicorn"}


@pytest.mark.parametrize("command", ["web", "worker", "beat"])
def test_the_service_commands_leave_unused_optional_libraries_unloaded(command: str) -> None:
    loaded = loaded_after(
        f"import sys\nsys.argv = ['leadrouter', '{command}', '--help']\n"
        "from worker.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import structlog, httpx  # each imports some of them whenever they are installed"
    )
    assert not tops(loaded) & set(UNUSED_BY_SERVICES)


def test_the_other_commands_still_have_rich() -> None:
    loaded = loaded_after(
        "import sys\nsys.argv = ['leadrouter', 'dlq', '--help']\n"
        "from worker.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "rich" in tops(loaded)


def test_every_lazy_command_is_listed_and_found_under_its_name() -> None:
    ctx = click.Context(cli)
    assert set(LAZY) | {"web", "worker", "beat"} == set(cli.list_commands(ctx))
    for name in LAZY:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command)
        assert command.name == name
