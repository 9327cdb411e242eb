"""The backtest: the Python rotation agrees with the Lua one, and replays touch nothing."""

from __future__ import annotations

import random

import pytest

from worker.keys import Keys
from worker.leadterra.models import Sdr
from worker.routing.roster import parse_roster
from worker.routing.rotation import Policy, Rotation
from worker.routing.simulate import Swrr, read_decisions, simulate

KEYS = Keys("test:")


@pytest.mark.parametrize("seed", range(6))
def test_the_python_rotation_agrees_with_the_lua_one_pick_for_pick(fake_redis, seed) -> None:
    rng = random.Random(seed)
    rotation = Rotation(fake_redis, KEYS, pick_ttl=3600, cache_ttl=3600)
    ids = [f"s{i}" for i in range(6)]
    weights = {i: rng.randint(1, 5) for i in ids}
    mirror = Swrr()
    for n in range(400):
        if n % 25 == 0:  # SDRs leave and come back along the way
            connected = [i for i in ids if rng.random() < 0.7] or ids[:1]
            rotation.store_roster([Sdr(id=i, gmail_connected=i in connected) for i in ids])
        lua = rotation.pick(f"r{n}", Policy(weights=weights), lambda: []).sdr_id
        python = mirror.pick([(i, weights[i]) for i in sorted(connected)])
        assert lua == python, (n, connected)


def record(fake_redis, picks: int, roster_text: str = "") -> list:
    rotation = Rotation(fake_redis, KEYS, pick_ttl=3600, cache_ttl=3600)
    roster = parse_roster(roster_text)
    team = [Sdr(id=i, gmail_connected=i != "d") for i in ("a", "b", "c", "d")]
    rotation.store_roster(team)
    weights = {s: e.weight for s, e in roster.entries.items()}
    for n in range(picks):
        rotation.pick(f"r{n}", Policy(weights=weights, roster_hash=roster.digest), lambda: team)
    return read_decisions(fake_redis, KEYS)


def test_replaying_under_the_same_roster_reproduces_every_decision(fake_redis) -> None:
    roster = "[sdr.a]\nweight = 3\n[sdr.b]\nweight = 2\n"
    decisions = record(fake_redis, 120, roster)
    assert len(decisions) == 120
    result = simulate(decisions, parse_roster(roster))
    assert result.new == result.old
    assert decisions[0].excluded == {"d": "not_connected"}


def test_a_new_roster_is_tried_without_touching_live_state(fake_redis) -> None:
    decisions = record(fake_redis, 300)
    before = {k: fake_redis.dump(k) for k in fake_redis.keys("*")}
    result = simulate(decisions, parse_roster("[sdr.a]\nweight = 4\n[sdr.c]\npaused = true\n"))
    assert {k: fake_redis.dump(k) for k in fake_redis.keys("*")} == before
    assert result.old == {"a": 100, "b": 100, "c": 100}
    assert result.new == {"a": 240, "b": 60}
    assert "d" not in result.new  # not connected then: the roster cannot change that
    worst, gap = result.worst_deviation()
    assert abs(gap) < 1
    assert [r["sdr"] for r in result.rows()] == ["a", "b", "c"]


def test_a_roster_that_leaves_nobody_counts_the_held(fake_redis) -> None:
    decisions = record(fake_redis, 10)
    paused = "\n".join(f"[sdr.{s}]\npaused = true" for s in "abc")
    result = simulate(decisions, parse_roster(paused))
    assert result.held == 10
    assert sum(result.new.values()) == 0
