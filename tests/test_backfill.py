"""`leadrouter backfill` (worker/intake/backfill.py and its command) against the fake Leadterra
and fakeredis: the window, the summary, dry runs, idempotency and the JSON object."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from click.testing import CliRunner, Result
from structlog.testing import capture_logs

from tests.conftest import API_KEY, make_settings
from tests.support.fake_leadterra import REPLIES_PATH, FakeLeadterra
from tests.test_reconcile import KEYS, NOW, ids, iso, load_state, payloads, reply
from worker.cli import backfill_commands
from worker.cli.main import cli
from worker.intake.backfill import backfill
from worker.runtime import Runtime

DAY = 86400.0


def at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


@pytest.fixture
def fake() -> FakeLeadterra:
    """Three days of replies, one an hour, every third not interested; one other campaign."""
    fake = FakeLeadterra(max_calls=200)
    fake.replies = [
        reply(i, NOW - i * 3600, "not_interested" if i % 3 == 0 else "interested")
        for i in range(72)
    ]
    fake.replies[5]["campaignId"] = "camp_2"
    return fake


@pytest.fixture
def rt(fake_redis: fakeredis.FakeRedis, fake: FakeLeadterra) -> Runtime:
    return Runtime(make_settings(), client=fake_redis, leadterra=fake.client())


def test_backfill_enqueues_every_positive_reply_of_the_window_once(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.set(KEYS.seen("rpl_1"), repr(time.time()))  # the webhook brought this one
    first = backfill(rt, at(NOW - 2 * DAY))
    inside = [i for i in range(49) if i % 3]  # 0 .. 48 h old
    assert first.as_dict() == {
        "read": 49,
        "positive": len(inside),
        "already_handled": 1,
        "enqueued": len(inside) - 1,
    }
    assert {p["source"] for p in payloads(fake_redis)} == {"backfill"}
    second = backfill(rt, at(NOW - 2 * DAY))
    assert second.enqueued == 0 and second.already_handled == len(inside)
    assert ids(fake_redis) == sorted(f"rpl_{i}" for i in inside if i != 1)
    assert load_state(rt) == (None, None)  # the sweep's state is not backfill's


def test_until_and_campaign_narrow_the_window(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    summary = backfill(rt, at(NOW - 10 * 3600), at(NOW - 4 * 3600), campaign_id="camp_1")
    assert fake.last.params["campaignId"] == "camp_1"
    assert ids(fake_redis) == ["rpl_10", "rpl_4", "rpl_7", "rpl_8"]  # not rpl_5: camp_2
    assert summary.read == 6


def test_a_dry_run_counts_and_enqueues_nothing(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.set(KEYS.seen("rpl_2"), repr(time.time()))
    summary = backfill(rt, at(NOW - 5 * 3600), dry_run=True)
    assert summary.as_dict() == {"read": 6, "positive": 4, "already_handled": 1, "enqueued": 0}
    assert ids(fake_redis) == []


def test_backfill_reads_no_further_than_since(rt: Runtime, fake: FakeLeadterra) -> None:
    backfill(rt, at(NOW - 3600))
    assert [c.params["page"] for c in fake.to(REPLIES_PATH)] == ["1"]


# -- the command ---------------------------------------------------------------------------


@pytest.fixture
def run(
    fake: FakeLeadterra,
    fake_redis: fakeredis.FakeRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Result]:
    """`run("--since", ...)` invokes `leadrouter backfill` on the fake Leadterra and fakeredis."""
    monkeypatch.chdir(tmp_path)  # a developer's .env must not leak in
    monkeypatch.setattr(backfill_commands, "redis_or_fail", lambda url: fake_redis)
    monkeypatch.setattr(
        backfill_commands,
        "Runtime",
        lambda settings, client: Runtime(settings, client=client, leadterra=fake.client()),
    )
    runner = CliRunner(env={"LEADTERRA_API_KEY": API_KEY, "KEY_PREFIX": "test:", "COLUMNS": "200"})

    # the command's logging setup is process-wide (and caches loggers): leave this process's
    # alone, and catch the events instead of printing them
    monkeypatch.setattr(backfill_commands, "configure_logging", lambda *args: None)

    def invoke(*args: str) -> Result:
        with capture_logs():
            return runner.invoke(cli, ["backfill", *args], prog_name="leadrouter")

    return invoke


def test_the_command_prints_one_json_object_with_the_four_counts(
    run: Callable[..., Result],
) -> None:
    result = run("--since", iso(NOW - 5 * 3600), "--json")
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary == {"read": 6, "positive": 4, "already_handled": 0, "enqueued": 4}
    again = json.loads(run("--since", iso(NOW - 5 * 3600), "--json").stdout)
    assert again == {"read": 6, "positive": 4, "already_handled": 4, "enqueued": 0}


def test_the_command_prints_a_summary_table(run: Callable[..., Result]) -> None:
    result = run("--since", iso(NOW - 5 * 3600), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout and "already_handled" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "bad date"),
        (["--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"], "before"),
    ],
)
def test_bad_dates_get_one_clear_line(
    run: Callable[..., Result], args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 1 and message in result.output
