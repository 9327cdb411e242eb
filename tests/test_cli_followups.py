"""`leadrouter followups ...` through click's CliRunner against a real sandbox process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from leadterra_sandbox.client import SandboxControl
from leadterra_sandbox.process import SandboxProcess
from worker.cli.main import cli
from worker.leadterra.models import iso_ms

pytestmark = pytest.mark.integration

WORKSPACE_KEY = "sk_test_workspace"
SDRS = ("sdr_1", "sdr_2", "sdr_3")
SUBCOMMANDS = ("list", "complete", "skip", "reschedule", "schedule")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    with SandboxProcess.start(
        ["--sdrs", str(len(SDRS)), "--log-level", "WARNING"], log_path=str(log)
    ) as process:
        yield process


@pytest.fixture
def control(sandbox: SandboxProcess) -> SandboxControl:
    sandbox.control.reset()
    return sandbox.control


@pytest.fixture
def run(sandbox: SandboxProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`run("list", "--json")` invokes `leadrouter followups list --json` as an operator would."""
    monkeypatch.chdir(tmp_path)  # a developer's .env must not leak in
    env = {
        "LEADTERRA_BASE_URL": sandbox.api_url,
        "LEADTERRA_API_KEY": WORKSPACE_KEY,
        "LEADTERRA_SDR_API_KEYS": json.dumps({s: f"{WORKSPACE_KEY}_{s}" for s in SDRS}),
        "COLUMNS": "200",  # rich's table width: no wrapped ids
    }
    runner = CliRunner(env=env)

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["followups", *args], prog_name="leadrouter")

    yield invoke


def now(control: SandboxControl) -> datetime:
    return datetime.fromisoformat(control.clock()["now"].replace("Z", "+00:00"))


def seed(control: SandboxControl) -> dict[str, dict[str, Any]]:
    """Due, upcoming and closed follow-ups for sdr_1 and sdr_2: id -> the sandbox's record."""
    moment = now(control)
    past, future = iso_ms(moment - timedelta(hours=1)), iso_ms(moment + timedelta(hours=1))
    control.seed_threads(
        [{"id": f"thr_cli_{n}", "sdrId": sdr} for n, sdr in enumerate(SDRS[:2] * 2, 1)]
    )
    control.seed_followups(
        [
            {"id": "fu_due_1", "threadId": "thr_cli_1", "dueAt": past},
            {"id": "fu_due_2", "threadId": "thr_cli_2", "dueAt": past},
            {"id": "fu_later", "threadId": "thr_cli_3", "dueAt": future},
            {"id": "fu_done", "threadId": "thr_cli_4", "dueAt": past, "status": "completed"},
        ]
    )
    return followups(control)


def followups(control: SandboxControl) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in control.state()["followups"]}


def assert_ok(result: Result) -> None:
    assert result.exit_code == 0, result.output
    assert result.exception is None


def assert_fails(result: Result, message: str) -> None:
    """A clear one-line error on stderr, non-zero exit, and no traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]


def test_list_shows_every_sdrs_due_followups_as_a_table(control, run) -> None:
    records = seed(control)
    result = run("list")
    assert_ok(result)
    assert "2 follow-up(s)" in result.output
    for fid, sdr, thread in (
        ("fu_due_1", "sdr_1", "thr_cli_1"),
        ("fu_due_2", "sdr_2", "thr_cli_2"),
    ):
        [line] = [line for line in result.output.splitlines() if fid in line]
        assert thread in line and sdr in line and "pending" in line
        assert records[fid]["dueAt"] in line
    assert "fu_later" not in result.output  # not due yet
    assert "fu_done" not in result.output  # no longer pending


def test_list_as_json_and_its_filters(control, run) -> None:
    records = seed(control)
    result = run("list", "--json")
    assert_ok(result)
    assert json.loads(result.stdout) == [
        {
            "id": fid,
            "thread": records[fid]["threadId"],
            "sdr": records[fid]["sdrId"],
            "status": "pending",
            "due_at": records[fid]["dueAt"],
        }
        for fid in ("fu_due_1", "fu_due_2")
    ]
    only_sdr_2 = json.loads(run("list", "--json", "--sdr", "sdr_2").stdout)
    assert [row["id"] for row in only_sdr_2] == ["fu_due_2"]
    upcoming = json.loads(run("list", "--json", "--upcoming").stdout)
    assert sorted(row["id"] for row in upcoming) == ["fu_due_1", "fu_due_2", "fu_later"]
    limited = run("list", "--json", "--limit", "1", "--sdr", "sdr_1", "--upcoming")
    assert [row["id"] for row in json.loads(limited.stdout)] == ["fu_due_1"]
    assert run("list", "--limit", "0").exit_code == 2  # click's own usage error


HOSTILE = ["[/]", "[bold red]x[/]", "[link=https://evil.example]x[/link]"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_ids_from_leadterra_with_markup_are_listed_as_they_are(control, run, hostile) -> None:
    """Rich markup in Leadterra's ids is data: the table shows it, JSON carries it unchanged."""
    past = iso_ms(now(control) - timedelta(hours=1))
    control.seed_threads([{"id": f"thr_{hostile}", "sdrId": "sdr_1"}])
    control.seed_followups([{"id": f"fu_{hostile}", "threadId": f"thr_{hostile}", "dueAt": past}])
    result = run("list", "--sdr", "sdr_1")
    assert_ok(result)
    [line] = [line for line in result.output.splitlines() if f"fu_{hostile}" in line]
    assert f"thr_{hostile}" in line
    rows = json.loads(run("list", "--sdr", "sdr_1", "--json").stdout)
    assert [(r["id"], r["thread"]) for r in rows] == [(f"fu_{hostile}", f"thr_{hostile}")]


def test_list_with_nothing_due_is_an_empty_table_or_list(control, run) -> None:
    assert_ok(table := run("list"))
    assert "0 follow-up(s)" in table.output
    assert json.loads(run("list", "--json").stdout) == []


def test_complete_marks_the_followup_completed(control, run) -> None:
    seed(control)
    result = run("complete", "fu_due_2")  # sdr_2's: found by trying each SDR key
    assert_ok(result)
    assert result.stdout.strip() == "completed fu_due_2"
    after = followups(control)
    assert after["fu_due_2"]["status"] == "completed"
    assert after["fu_due_2"]["closedAt"] is not None
    assert after["fu_due_1"]["status"] == "pending"


def test_skip_keeps_the_reason(control, run) -> None:
    seed(control)
    result = run("skip", "fu_due_1", "--reason", "lead asked to wait until Q3", "--sdr", "sdr_1")
    assert_ok(result)
    assert result.stdout.strip() == "skipped fu_due_1"
    after = followups(control)["fu_due_1"]
    assert (after["status"], after["skipReason"]) == ("skipped", "lead asked to wait until Q3")


def test_skip_needs_a_reason(control, run) -> None:
    seed(control)
    result = run("skip", "fu_due_1")
    assert result.exit_code == 2
    assert "--reason" in result.stderr
    assert followups(control)["fu_due_1"]["status"] == "pending"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2031-03-04T15:30:00Z", "2031-03-04T15:30:00.000Z"),
        ("2031-03-04T15:30:00.250+02:00", "2031-03-04T13:30:00.250Z"),
        ("2031-03-04T15:30:00", "2031-03-04T15:30:00.000Z"),  # no zone: UTC
    ],
)
def test_reschedule_moves_the_due_time(control, run, given, stored) -> None:
    seed(control)
    result = run("reschedule", "fu_due_1", "--due-at", given)
    assert_ok(result)
    assert result.stdout.strip() == f"rescheduled fu_due_1 to {stored}"
    after = followups(control)["fu_due_1"]
    assert (after["status"], after["dueAt"]) == ("pending", stored)
    assert [r["toDueAt"] for r in after["reschedules"]] == [stored]
    assert "fu_due_1" not in run("list").output  # no longer due


def test_schedule_at_a_given_time_creates_a_pending_followup(control, run) -> None:
    seed(control)
    before = set(followups(control))
    result = run("schedule", "thr_cli_2", "--due-at", "2031-01-02T09:00:00Z")
    assert_ok(result)
    assert result.stdout.strip() == "scheduled a follow-up on thr_cli_2 at 2031-01-02T09:00:00.000Z"
    [made] = [f for fid, f in followups(control).items() if fid not in before]
    assert (made["threadId"], made["sdrId"], made["status"], made["dueAt"]) == (
        "thr_cli_2",
        "sdr_2",
        "pending",
        "2031-01-02T09:00:00.000Z",
    )


def test_schedule_without_a_time_lets_leadterra_pick_it(control, run) -> None:
    seed(control)
    delay = control.settings(followup_delay_seconds=7200)["followupDelaySeconds"]
    before, moment = set(followups(control)), now(control)
    result = run("schedule", "thr_cli_1", "--sdr", "sdr_1")
    assert_ok(result)
    assert result.stdout.strip() == (
        "scheduled a follow-up on thr_cli_1 (Leadterra's rules pick the time)"
    )
    [made] = [f for fid, f in followups(control).items() if fid not in before]
    assert (made["threadId"], made["sdrId"], made["status"]) == ("thr_cli_1", "sdr_1", "pending")
    due = datetime.fromisoformat(made["dueAt"].replace("Z", "+00:00"))
    assert timedelta(0) <= due - (moment + timedelta(seconds=delay)) < timedelta(seconds=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("complete", "fu_nope"), "no follow-up with id 'fu_nope'"),
        (("skip", "fu_nope", "--reason", "x"), "no follow-up with id 'fu_nope'"),
        (
            ("reschedule", "fu_nope", "--due-at", "2031-01-01T00:00:00Z"),
            "no follow-up with id 'fu_nope'",
        ),
        (("schedule", "thr_nope"), "no thread with id 'thr_nope'"),
        (("complete", "fu_due_2", "--sdr", "sdr_1"), "no follow-up with id 'fu_due_2'"),
        (("complete", "fu_done"), "follow-up fu_done is no longer pending"),
        (("skip", "fu_done", "--reason", "x"), "follow-up fu_done is no longer pending"),
        (
            ("reschedule", "fu_done", "--due-at", "2031-01-01T00:00:00Z"),
            "follow-up fu_done is no longer pending",
        ),
        (
            ("reschedule", "fu_due_1", "--due-at", "next tuesday"),
            "bad date 'next tuesday': use ISO 8601, like 2026-07-05T14:00:00Z",
        ),
        (
            ("schedule", "thr_cli_1", "--due-at", "2031-13-45"),
            "bad date '2031-13-45': use ISO 8601, like 2026-07-05T14:00:00Z",
        ),
        (("list", "--sdr", "sdr_9"), "no key for SDR 'sdr_9' in LEADTERRA_SDR_API_KEYS"),
        (
            ("complete", "fu_due_1", "--sdr", "sdr_9"),
            "no key for SDR 'sdr_9' in LEADTERRA_SDR_API_KEYS",
        ),
    ],
)
def test_errors_are_one_clear_line_and_change_nothing(control, run, args, message) -> None:
    records = seed(control)
    assert_fails(run(*args), message)
    assert followups(control) == records


def test_an_unreachable_leadterra_is_one_clear_line(control, run, sandbox) -> None:
    seed(control)
    control.refuse()
    try:
        result = run("list")
    finally:
        control.end_outage()
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: Leadterra call failed for SDR sdr_1: ")
    assert WORKSPACE_KEY not in result.output


@pytest.mark.parametrize("subcommand", [None, *SUBCOMMANDS])
def test_help_works_on_every_subcommand(run, subcommand) -> None:
    result = run(*([subcommand] if subcommand else []), "--help")
    assert_ok(result)
    assert result.stdout.startswith("Usage: leadrouter followups")
    if subcommand is None:
        for name in SUBCOMMANDS:
            assert name in result.stdout
