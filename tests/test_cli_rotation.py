"""`leadrouter rotation` and `rotation simulate` through click's CliRunner against a real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from tests.conftest import make_settings
from worker.cli.main import cli
from worker.embedded_redis import EmbeddedRedis
from worker.keys import Keys
from worker.leadterra.models import Sdr
from worker.routing.policy import PolicySource
from worker.routing.roster import parse_roster
from worker.routing.rotation import Policy, Rotation

pytestmark = pytest.mark.integration

PREFIX = "clirot:"
KEYS = Keys(PREFIX)
SDRS = [Sdr(id=f"sdr_{i}", gmail_connected=True) for i in (1, 2, 3)]
EQUAL = "[sdr.sdr_1]\nweight = 1\n\n[sdr.sdr_2]\nweight = 1\n\n[sdr.sdr_3]\nweight = 1\n"
THREE_ONE_ONE = "[sdr.sdr_1]\nweight = 3\n\n[sdr.sdr_2]\nweight = 1\n\n[sdr.sdr_3]\nweight = 1\n"


@pytest.fixture
def run(redis_server: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`run("simulate", "--roster", path)` invokes `leadrouter rotation simulate ...`."""
    monkeypatch.chdir(tmp_path)  # a developer's .env must not leak in
    runner = CliRunner(env={"REDIS_URL": redis_server.url, "KEY_PREFIX": PREFIX, "COLUMNS": "200"})

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["rotation", *args], prog_name="leadrouter")

    return invoke


@pytest.fixture
def rotation(real_redis: redis.Redis) -> Iterator[Rotation]:
    yield Rotation(real_redis, KEYS, pick_ttl=3600, cache_ttl=3600)


def roster_file(tmp_path: Path, text: str, name: str = "roster.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def make_picks(rotation: Rotation, tmp_path: Path, count: int, roster: str = EQUAL) -> None:
    """`count` real picks through the Lua call, under `roster`, recorded in the decision stream."""
    source = PolicySource(
        make_settings(roster_file=roster_file(tmp_path, roster, "live.toml"), key_prefix=PREFIX),
        KEYS,
    )
    for i in range(count):
        policy = source.policy(datetime.now(UTC), f"buyer{i}@acme{i}.test")
        rotation.pick(f"rpl_{i}", policy, lambda: SDRS)


def cells(output: str) -> dict[str, list[str]]:
    """The table's rows by their first SDR-looking cell: the other cells, stripped."""
    rows = {}
    for line in output.splitlines():
        parts = [part.strip() for part in line.split("│")[1:-1]]
        ids = [part for part in parts if part.startswith("sdr_")]
        if ids:
            rows[ids[0]] = [part for part in parts if part != ids[0]]
    return rows


def dump(client: redis.Redis) -> dict[bytes, tuple[bytes, bytes | None, bool]]:
    """Every key's type, serialized value and whether it expires."""
    return {
        key: (client.type(key), client.dump(key), client.ttl(key) >= 0)
        for key in sorted(client.keys("*"))
    }


# -- leadrouter rotation ---------------------------------------------------------------------


def test_rotation_shows_positions_picks_and_credits(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 7)
    result = run()
    assert result.exit_code == 0, result.output
    assert "Rotation" in result.output
    for column in ("position", "id", "picks", "credit"):
        assert column in result.output
    rows = cells(result.output)  # position, picks, credit
    credits = {s: v["credit"] for s, v in rotation.state().items()}
    order = sorted(credits, key=lambda s: -credits[s])
    assert set(rows) == {"sdr_1", "sdr_2", "sdr_3"}
    # 7 picks round 3 SDRs: sdr_1 has had 3, the others 2
    assert {s: row[1] for s, row in rows.items()} == {"sdr_1": "3", "sdr_2": "2", "sdr_3": "2"}
    assert [rows[s][0] for s in order] == ["1", "2", "3"]
    for sdr, row in rows.items():
        assert float(row[2]) == pytest.approx(credits[sdr], abs=1e-3)


def test_rotation_json_matches_the_live_state(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 7)
    result = run("--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    state = rotation.state()
    assert [row["position"] for row in rows] == [1, 2, 3]
    assert rows[0]["id"] == "sdr_2"  # the highest credit is picked next
    assert {row["id"]: row["picks"] for row in rows} == {"sdr_1": 3, "sdr_2": 2, "sdr_3": 2}
    assert {row["id"]: row["credit"] for row in rows} == {s: v["credit"] for s, v in state.items()}
    credits = [row["credit"] for row in rows]
    assert credits == sorted(credits, reverse=True)
    assert rotation.pick("rpl_next", Policy(), lambda: SDRS).sdr_id == rows[0]["id"]


def test_rotation_on_an_empty_redis_is_an_empty_table(run, real_redis) -> None:
    result = run("--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_rotation_changes_no_live_state(run, rotation, real_redis, tmp_path) -> None:
    make_picks(rotation, tmp_path, 5)
    before = dump(real_redis)
    assert run().exit_code == 0
    assert run("--json").exit_code == 0
    assert dump(real_redis) == before


# -- leadrouter rotation simulate --------------------------------------------------------------


def test_simulate_without_decisions_is_a_clear_error(run, real_redis, tmp_path) -> None:
    result = run("simulate", "--roster", str(roster_file(tmp_path, THREE_ONE_ONE)))
    assert result.exit_code != 0
    assert "no recorded decisions" in result.stderr
    assert "Traceback" not in result.output


def test_simulate_compares_old_and_new_counts_and_shares(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 30)
    path = roster_file(tmp_path, THREE_ONE_ONE, "new.toml")
    result = run("simulate", "--roster", str(path))
    assert result.exit_code == 0, result.output
    out = result.output
    digest = parse_roster(THREE_ONE_ONE).digest
    assert f"30 decisions replayed through new.toml (roster {digest})" in " ".join(out.split())
    rows = cells(out)  # old, old_share, new, new_share, ideal
    assert rows == {
        "sdr_1": ["10", "33.3", "18", "60", "18"],
        "sdr_2": ["10", "33.3", "6", "20", "6"],
        "sdr_3": ["10", "33.3", "6", "20", "6"],
    }
    worst = [line for line in out.splitlines() if line.startswith("worst deviation")]
    # 30 picks at 3:1:1 land exactly on the weights: nobody deviates (and no "-0.0")
    assert worst == ["worst deviation from the weights: - +0.0 picks; 0 sticky, 0 would be held"]


def test_simulate_names_the_sdr_furthest_from_its_weight(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 7)
    result = run("simulate", "--roster", str(roster_file(tmp_path, THREE_ONE_ONE, "new.toml")))
    assert result.exit_code == 0, result.output
    # 7 picks at 3:1:1 (ideal 4.2, 1.4, 1.4) go 4, 2, 1: sdr_2 is 0.6 picks over its share
    assert {s: row[2] for s, row in cells(result.output).items()} == {
        "sdr_1": "4",
        "sdr_2": "2",
        "sdr_3": "1",
    }
    assert result.output.splitlines()[-1] == (
        "worst deviation from the weights: sdr_2 +0.6 picks; 0 sticky, 0 would be held"
    )


def test_simulate_json_gives_the_rows(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 30)
    path = roster_file(tmp_path, THREE_ONE_ONE, "new.toml")
    result = run("simulate", "--roster", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"sdr": "sdr_1", "old": 10, "old_share": 33.3, "new": 18, "new_share": 60.0, "ideal": 18.0},
        {"sdr": "sdr_2", "old": 10, "old_share": 33.3, "new": 6, "new_share": 20.0, "ideal": 6.0},
        {"sdr": "sdr_3", "old": 10, "old_share": 33.3, "new": 6, "new_share": 20.0, "ideal": 6.0},
    ]


def test_simulate_replays_a_paused_sdr_out_of_the_new_roster(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 30)
    path = roster_file(tmp_path, "[sdr.sdr_3]\npaused = true\n", "paused.toml")
    result = run("simulate", "--roster", str(path), "--json")
    assert result.exit_code == 0, result.output
    new = {row["sdr"]: row["new"] for row in json.loads(result.stdout)}
    assert new == {"sdr_1": 15, "sdr_2": 15, "sdr_3": 0}


def test_simulate_honours_the_limit(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 30)
    path = roster_file(tmp_path, EQUAL, "same.toml")
    result = run("simulate", "--roster", str(path), "--limit", "9", "--json")
    assert result.exit_code == 0, result.output
    assert sum(row["old"] for row in json.loads(result.stdout)) == 9


def test_simulate_changes_no_live_state(run, rotation, real_redis, tmp_path) -> None:
    make_picks(rotation, tmp_path, 30)
    before = dump(real_redis)
    assert before  # there is live state to protect
    path = roster_file(tmp_path, THREE_ONE_ONE, "new.toml")
    assert run("simulate", "--roster", str(path)).exit_code == 0
    assert run("simulate", "--roster", str(path), "--json").exit_code == 0
    assert dump(real_redis) == before


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[sdr.sdr_1]\nweight = 3\n\n[sdr.sdr_2]\nweight = -1\n", "(line 5): sdr.sdr_2.weight: "),
        ("[sdr.sdr_1]\nwieght = 3\n", "(line 2): sdr.sdr_1.wieght: "),
        ('[defaults]\ntimezone = "Nowhere/Land"\n', "(line 2): defaults.timezone: "),
    ],
)
def test_simulate_with_a_bad_roster_is_one_line_naming_line_and_field(
    run, rotation, real_redis, tmp_path, text: str, where: str
) -> None:
    make_picks(rotation, tmp_path, 3)
    before = dump(real_redis)
    path = roster_file(tmp_path, text, "bad.toml")
    result = run("simulate", "--roster", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: ROSTER_FILE {path} {where}")
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert dump(real_redis) == before


def test_simulate_with_a_missing_roster_says_so(run, rotation, tmp_path) -> None:
    missing = tmp_path / "missing.toml"
    result = run("simulate", "--roster", str(missing))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: ROSTER_FILE: cannot read {missing}")
    assert result.stderr.count("\n") == 1


def test_simulate_needs_a_roster(run) -> None:
    result = run("simulate")
    assert result.exit_code == 2
    assert "--roster" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--help"], "simulate"),
        (["simulate", "--help"], "--roster"),
    ],
)
def test_help_works(run, args: list[str], says: str) -> None:
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert says in result.output
    assert "Usage: leadrouter rotation" in result.output


# -- values are data, not Rich markup ---------------------------------------------------------


@pytest.mark.parametrize(
    "sdr", ["[/]", "sdr_[bold red]x[/]", "[link=https://evil.example]x[/link]"]
)
def test_sdr_ids_with_markup_are_shown_as_they_are(run, real_redis, sdr: str) -> None:
    real_redis.hset(KEYS.rotation_count, mapping={sdr: 2, "sdr_1": 1})
    real_redis.hset(KEYS.rotation_credit, mapping={sdr: 0.5, "sdr_1": -0.5})
    result = run()
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if sdr in line]
    assert "0.5" in line
    assert [row["id"] for row in json.loads(run("--json").stdout)] == [sdr, "sdr_1"]


def test_a_roster_file_name_with_markup_is_shown_as_it_is(run, rotation, tmp_path) -> None:
    make_picks(rotation, tmp_path, 6)
    path = roster_file(tmp_path, EQUAL, "[b]new[i].toml")  # no "/" in a name
    result = run("simulate", "--roster", str(path))
    assert result.exit_code == 0, result.output
    assert "replayed through [b]new[i].toml" in " ".join(result.output.split())
