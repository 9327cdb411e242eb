"""`leadrouter dlq list/replay/drop` through click's CliRunner against a real Redis."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from worker.cli.main import cli
from worker.embedded_redis import EmbeddedRedis
from worker.jobs.deadletter import DeadLetter, DeadLetters
from worker.keys import QUEUE_ASSIGN, Keys

pytestmark = pytest.mark.integration

PREFIX = "clidlq:"
KEYS = Keys(PREFIX)
TASK = "leadrouter.assign_reply"


@pytest.fixture
def store(real_redis: redis.Redis) -> DeadLetters:
    return DeadLetters(real_redis, KEYS)


@pytest.fixture
def run(
    redis_server: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """`run("list", "--json")` invokes `leadrouter dlq list --json` on the test Redis."""
    monkeypatch.chdir(tmp_path)  # a developer's .env must not leak in
    runner = CliRunner(env={"REDIS_URL": redis_server.url, "KEY_PREFIX": PREFIX, "COLUMNS": "200"})

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["dlq", *args], prog_name="leadrouter")

    yield invoke


def entry(
    reply_id: str, at: float, error: str = "assign: answered 422 gmail_not_connected"
) -> DeadLetter:
    return DeadLetter(
        id=f"reply:{reply_id}",
        task=TASK,
        queue=QUEUE_ASSIGN,
        args=[{"id": reply_id, "classification": "interested"}],
        error=error,
        error_type="InvalidRequest",
        attempts=3,
        at=at,
        task_id=f"task-{reply_id}",
    )


def seed(store: DeadLetters) -> list[DeadLetter]:
    made = [entry("rpl_b", 1_780_000_200.0), entry("rpl_a", 1_780_000_100.0)]
    for one in made:
        store.add(one)
    return sorted(made, key=lambda e: e.at)


def queued(client: redis.Redis) -> list[dict[str, Any]]:
    """The task messages on the assign queue: their task name, args and argsrepr."""
    found = []
    for raw in client.lrange(KEYS.queue(QUEUE_ASSIGN), 0, -1):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        headers = message["headers"]
        found.append({"task": headers["task"], "args": args, "argsrepr": headers["argsrepr"]})
    return found


def assert_fails(result: Result, message: str) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]


def test_list_is_a_table_oldest_first(store, run) -> None:
    seed(store)
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "2 dead letter(s)" in result.output
    lines = [line for line in result.output.splitlines() if "reply:rpl_" in line]
    assert [("rpl_a" in line, "rpl_b" in line) for line in lines] == [(True, False), (False, True)]
    assert "assign_reply" in lines[0] and "InvalidRequest" in lines[0]
    assert "gmail_not_connected" in lines[0] and "2026-05-28 20:28:20" in lines[0]


def test_list_as_json(store, run) -> None:
    oldest, newest = seed(store)
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "id": e.id,
            "task": "assign_reply",
            "error_type": "InvalidRequest",
            "error": e.error,
            "attempts": 3,
            "at": at,
        }
        for e, at in ((oldest, "2026-05-28 20:28:20"), (newest, "2026-05-28 20:30:00"))
    ]


def test_list_when_empty(real_redis, run) -> None:
    assert json.loads(run("list", "--json").stdout) == []
    assert "0 dead letter(s)" in run("list").output


def test_replay_one_puts_it_back_on_its_queue(store, real_redis, run) -> None:
    seed(store)
    result = run("replay", "--id", "reply:rpl_a")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "replayed 1 dead letter(s)"
    assert queued(real_redis) == [
        {
            "task": TASK,
            "args": [{"id": "rpl_a", "classification": "interested"}],
            "argsrepr": "[replay reply:rpl_a]",
        }
    ]
    assert [e.id for e in store.list()] == ["reply:rpl_b"]


def test_replay_all_empties_the_list(store, real_redis, run) -> None:
    seed(store)
    result = run("replay", "--all")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "replayed 2 dead letter(s)"
    assert sorted(m["args"][0]["id"] for m in queued(real_redis)) == ["rpl_a", "rpl_b"]
    assert store.count() == 0
    assert real_redis.zcard(KEYS.dlq_index) == 0
    assert run("replay", "--all").stdout.strip() == "replayed 0 dead letter(s)"


def test_drop_deletes_without_replaying(store, real_redis, run) -> None:
    seed(store)
    result = run("drop", "reply:rpl_b")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "dropped reply:rpl_b"
    assert [e.id for e in store.list()] == ["reply:rpl_a"]
    assert real_redis.zcard(KEYS.dlq_index) == 1
    assert queued(real_redis) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", "--id", "reply:nope"), "no dead letter with id 'reply:nope'"),
        (("drop", "reply:nope"), "no dead letter with id 'reply:nope'"),
        (("replay",), "give exactly one of --id ID or --all"),
        (("replay", "--id", "reply:rpl_a", "--all"), "give exactly one of --id ID or --all"),
    ],
)
def test_errors_are_one_clear_line_and_change_nothing(
    store, real_redis, run, args, message
) -> None:
    seed(store)
    assert_fails(run(*args), message)
    assert [e.id for e in store.list()] == ["reply:rpl_a", "reply:rpl_b"]
    assert queued(real_redis) == []


@pytest.mark.parametrize("subcommand", [None, "list", "replay", "drop"])
def test_help_works_on_every_subcommand(run, subcommand) -> None:
    result = run(*([subcommand] if subcommand else []), "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: leadrouter dlq")
