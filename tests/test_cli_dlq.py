"""`leadrouter dlq list/replay/drop` through click's CliRunner against a real Redis: every
entry (5,000 of them), values shown as data, held replies released."""

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


# -- every entry, not the first 1,000 ----------------------------------------------------------

MANY = 5_000


@pytest.fixture
def many(store: DeadLetters) -> list[DeadLetter]:
    """5,000 dead letters, written in one pipelined transaction."""
    made = [entry(f"rpl_{n:05d}", 1_780_000_000.0 + n) for n in range(MANY)]
    store.add_many(made)
    return made


def test_list_shows_all_5000_entries(many, run) -> None:
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.stdout)] == [e.id for e in many]
    table = run("list")
    assert f"{MANY} dead letter(s)" in table.output
    assert "reply:rpl_04999" in table.output


@pytest.mark.parametrize("limit", [1, 999, 1001])
def test_list_with_a_limit_shows_the_oldest_and_says_how_many_there_are(
    many, run, limit: int
) -> None:
    rows = json.loads(run("list", "--limit", str(limit), "--json").stdout)
    assert [row["id"] for row in rows] == [e.id for e in many[:limit]]
    assert f"{limit} of {MANY} dead letter(s)" in run("list", "--limit", str(limit)).output


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_a_bad_limit_is_refused(store, run, limit: str) -> None:
    result = run("list", "--limit", limit)
    assert result.exit_code == 2
    assert "--limit" in result.output


def test_replay_all_replays_all_5000_oldest_first_and_says_so(many, store, real_redis, run) -> None:
    result = run("replay", "--all")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"replayed {MANY} dead letter(s)"
    assert store.count() == 0 and real_redis.zcard(KEYS.dlq_index) == 0
    raw = real_redis.lrange(KEYS.queue(QUEUE_ASSIGN), 0, -1)
    taken = [json.loads(m)["headers"]["argsrepr"] for m in reversed(raw)]  # as a worker pops
    assert taken == [f"[replay {e.id}]" for e in many]


# -- held replies ----------------------------------------------------------------------------


def test_drop_releases_a_held_reply(store, real_redis, run) -> None:
    seed(store)
    real_redis.hset(KEYS.held, "rpl_b", json.dumps({"since": 1.0, "reason": "no_eligible_sdr"}))
    assert run("drop", "reply:rpl_b").exit_code == 0
    assert real_redis.hlen(KEYS.held) == 0


# -- values are data, not Rich markup ---------------------------------------------------------

HOSTILE = ["[/]", "[bold red]x[/]", "[link=https://evil.example]x[/link]", "rpl_[/b]"]


@pytest.mark.parametrize("reply_id", HOSTILE)
def test_ids_and_errors_with_markup_list_replay_and_drop_as_they_are(
    store, real_redis, run, reply_id: str
) -> None:
    store.add(entry(reply_id, 1_780_000_100.0, error=f"answered 422 [red]{reply_id}[/red]"))
    store.add(entry(f"{reply_id}2", 1_780_000_200.0))
    table = run("list")
    assert table.exit_code == 0, table.output
    assert f"reply:{reply_id}" in table.output
    assert f"answered 422 [red]{reply_id}[/red]" in table.output
    listed = json.loads(run("list", "--json").stdout)
    assert [row["id"] for row in listed] == [f"reply:{reply_id}", f"reply:{reply_id}2"]
    assert run("replay", "--id", f"reply:{reply_id}").exit_code == 0
    dropped = run("drop", f"reply:{reply_id}2")
    assert dropped.stdout.strip() == f"dropped reply:{reply_id}2"
    assert [m["args"][0]["id"] for m in queued(real_redis)] == [reply_id]
