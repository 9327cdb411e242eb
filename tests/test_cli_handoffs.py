"""`leadrouter handoffs list` through click's CliRunner against a real Redis: every state, the
--open and --breached filters, JSON, and a hostile reply id shown as data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from worker.cli.main import cli
from worker.embedded_redis import EmbeddedRedis
from worker.keys import Keys
from worker.sla.ledger import ACTED, ESCALATED, Attempt, Ledger

pytestmark = pytest.mark.integration

PREFIX = "clihandoffs:"


@pytest.fixture
def ledger(real_redis: redis.Redis) -> Ledger:
    return Ledger(real_redis, Keys(PREFIX), ttl=3600)


@pytest.fixture
def run(
    redis_server: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)  # a developer's .env must not leak in
    runner = CliRunner(env={"REDIS_URL": redis_server.url, "KEY_PREFIX": PREFIX, "COLUMNS": "250"})

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["handoffs", "list", *args], prog_name="leadrouter")

    yield invoke


def test_handoffs_list_shows_every_state_and_filters(ledger: Ledger, run: Any) -> None:
    for n in range(4):
        assert ledger.record(f"rpl_{n}", None, "sdr_1", f"thr_{n}", watch=True)
    assert not ledger.record("rpl_0", None, "sdr_2", "thr_x", watch=True)  # made once
    acted = ledger.get("rpl_1")
    acted.state, acted.current.acted_at = ACTED, acted.current.at + 60
    ledger.save(acted)
    escalated = ledger.get("rpl_2")
    escalated.current.breached_at = escalated.current.at + 600
    escalated.attempts.append(Attempt(2, "sdr_2", "thr_2b", escalated.current.at + 601))
    escalated.state = ESCALATED
    ledger.save(escalated)

    everything = json.loads(run("--json").output)
    assert [h["reply_id"] for h in everything] == ["rpl_0", "rpl_1", "rpl_2", "rpl_3"]
    by_id = {h["reply_id"]: h for h in everything}
    assert by_id["rpl_2"]["sdrs"] == ["sdr_1", "sdr_2"] and by_id["rpl_2"]["attempt"] == 2
    assert by_id["rpl_1"]["state"] == "acted" and by_id["rpl_1"]["acted_at"]
    assert [h["reply_id"] for h in json.loads(run("--open", "--json").output)] == [
        "rpl_0",
        "rpl_3",
    ]
    assert [h["reply_id"] for h in json.loads(run("--breached", "--json").output)] == ["rpl_2"]
    table = run()
    assert table.exit_code == 0 and "4 handoff(s)" in table.output
    assert "sdr_1 > sdr_2" in table.output


def test_a_hostile_reply_id_is_shown_as_text(ledger: Ledger, run: Any) -> None:
    ledger.record("[bold]rpl[/bold]\x1b[31m", None, "sdr_1", "thr_1", watch=False)
    shown = run()
    assert shown.exit_code == 0
    assert "[bold]rpl[/bold]" in shown.output and "\x1b" not in shown.output
    assert json.loads(run("--json").output)[0]["state"] == "unwatched"
