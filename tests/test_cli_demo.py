"""`leadrouter demo` and `leadrouter run` without a key: the options reach the demo, `--keep`
and the ADMIN_TOKEN its admin listener will want among them (the demo itself is stubbed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from worker.cli import demo
from worker.cli.main import cli
from worker.embedded_redis import EmbeddedRedis

TOKEN = "cli-demo-admin-token-0123"


@pytest.fixture
def calls(
    redis_server: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []

    def fake_demo(redis_url: str, **options: Any) -> int:
        made.append({"redis_url": redis_url, **options})
        return 0

    monkeypatch.chdir(tmp_path)  # a developer's .env must not leak in
    monkeypatch.setattr(demo, "run_demo", fake_demo)
    return made


def invoke(redis_server: EmbeddedRedis, *args: str, token: str | None = TOKEN) -> int:
    env = {"REDIS_URL": redis_server.url, "LEADTERRA_API_KEY": None, "ADMIN_TOKEN": token}
    result = CliRunner(env=env).invoke(cli, list(args), prog_name="leadrouter")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return int(result.exit_code)


@pytest.mark.parametrize("command", ["demo", "run"])
def test_keep_and_the_admin_token_reach_the_demo(
    command: str, calls: list[dict[str, Any]], redis_server: EmbeddedRedis
) -> None:
    assert invoke(redis_server, command, "--keep", "--replies", "7") == 0
    assert calls == [
        {
            "redis_url": redis_server.url,
            "replies": 7,
            "followups": 60,
            "keep": True,
            "admin_token": TOKEN,
        }
    ]


def test_without_keep_the_demo_exits_after_its_summary(
    calls: list[dict[str, Any]], redis_server: EmbeddedRedis
) -> None:
    assert invoke(redis_server, "demo", token=None) == 0
    assert [(c["keep"], c["admin_token"]) for c in calls] == [(False, None)]


@pytest.mark.parametrize("command", ["demo", "run"])
def test_help_lists_keep(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], prog_name="leadrouter")
    assert result.exit_code == 0 and "--keep" in result.output
