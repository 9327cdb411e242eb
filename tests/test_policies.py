"""Routing policies through the real Lua pick: weights, caps, availability, sticky accounts."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest

from tests.conftest import make_settings
from worker.errors import NoEligibleSdr
from worker.keys import Keys
from worker.leadterra.models import Sdr
from worker.routing.policy import PolicySource
from worker.routing.rotation import Policy, Rotation

KEYS = Keys("test:")
DAY0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def sdrs(*ids: str, disconnected: tuple[str, ...] = ()) -> list[Sdr]:
    return [Sdr(id=i, gmail_connected=i not in disconnected) for i in ids]


@pytest.fixture
def rotation(fake_redis: fakeredis.FakeRedis) -> Rotation:
    return Rotation(fake_redis, KEYS, pick_ttl=86400, cache_ttl=3600)


class Picker:
    """Picks through the Lua call with a roster (a PolicySource on a file) and a moving clock."""

    def __init__(self, rotation: Rotation, tmp_path: Path, roster: str = "", **settings):
        path = tmp_path / "roster.toml"
        path.write_text(roster)
        self.source = PolicySource(make_settings(roster_file=path, **settings), KEYS)
        self.rotation = rotation
        self.now = DAY0
        self.n = 0

    def pick(self, roster: list[Sdr], email: str | None = None):
        self.n += 1
        policy = self.source.policy(self.now, email)
        return self.rotation.pick(f"rpl_{self.n}", policy, lambda: roster)

    def picks(self, roster: list[Sdr], count: int) -> list[str]:
        self.rotation.store_roster(roster)
        return [str(self.pick(roster).sdr_id) for _ in range(count)]


def test_weights_3_2_1_give_shares_within_one_percent_over_3000(rotation, tmp_path) -> None:
    picker = Picker(rotation, tmp_path, "[sdr.a]\nweight = 3\n[sdr.b]\nweight = 2\n")
    counts = Counter(picker.picks(sdrs("a", "b", "c"), 3000))
    for sdr, weight in {"a": 3, "b": 2, "c": 1}.items():
        assert abs(counts[sdr] / 3000 - weight / 6) <= 0.01, counts


def test_weight_two_against_one_interleaves_instead_of_running(rotation, tmp_path) -> None:
    picker = Picker(rotation, tmp_path, "[sdr.a]\nweight = 2\n")
    sequence = "".join(picker.picks(sdrs("a", "b"), 30)).upper()
    assert sequence.count("A") == 20
    assert "BB" not in sequence
    assert "AAA" not in sequence


@pytest.mark.parametrize("seed", range(8))
def test_no_sdr_ever_goes_two_picks_beyond_its_ideal_share(rotation, tmp_path, seed) -> None:
    rng = random.Random(seed)
    ids = [f"s{i}" for i in range(rng.randint(2, 6))]
    weights = {i: rng.randint(1, 9) for i in ids}
    roster = "".join(f"[sdr.{i}]\nweight = {w}\n" for i, w in weights.items())
    picker = Picker(rotation, tmp_path, roster)
    picker.rotation.store_roster(sdrs(*ids))
    total = sum(weights.values())
    counts: Counter[str] = Counter()
    for step in range(1, 1501):
        counts[str(picker.pick(sdrs(*ids)).sdr_id)] += 1
        for sdr in ids:
            assert counts[sdr] - step * weights[sdr] / total < 2, (step, sdr, weights)
            assert step * weights[sdr] / total - counts[sdr] < 2, (step, sdr, weights)


def test_a_capped_sdr_is_skipped_and_the_others_keep_their_shares(rotation, tmp_path) -> None:
    picker = Picker(
        rotation, tmp_path, "[sdr.a]\ndaily_cap = 5\n[sdr.b]\nweight = 2\n[sdr.c]\nweight = 1\n"
    )
    chosen = picker.picks(sdrs("a", "b", "c"), 65)
    counts = Counter(chosen)
    assert counts["a"] == 5
    assert counts["b"] == 40 and counts["c"] == 20
    last = picker.pick(sdrs("a", "b", "c"))
    assert last.excluded == {"a": "cap"}


def test_the_daily_cap_restarts_on_the_sdrs_own_midnight(rotation, tmp_path) -> None:
    roster = '[sdr.a]\ndaily_cap = 2\ntimezone = "Pacific/Auckland"\n'
    picker = Picker(rotation, tmp_path, roster)
    picker.now = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)  # 23:30 in Auckland
    picker.picks(sdrs("a", "b"), 6)
    assert picker.pick(sdrs("a", "b")).excluded == {"a": "cap"}
    picker.now += timedelta(hours=1)  # 00:30 in Auckland, still March 1 in UTC
    assert "a" not in picker.pick(sdrs("a", "b")).excluded


def test_paused_away_and_disconnected_are_out_with_their_reasons(rotation, tmp_path) -> None:
    roster = (
        "[sdr.a]\npaused = true\n[sdr.b]\naway = [ { start = 2026-02-27, end = 2026-03-02 } ]\n"
    )
    picker = Picker(rotation, tmp_path, roster)
    everyone = sdrs("a", "b", "c", "d", disconnected=("c",))
    picker.rotation.store_roster(everyone)
    result = picker.pick(everyone)
    assert result.sdr_id == "d"
    assert result.excluded == {"a": "paused", "b": "away", "c": "not_connected"}
    picker.now = datetime(2026, 3, 3, 12, tzinfo=UTC)  # b is back
    assert "b" not in picker.pick(everyone).excluded


def test_when_nobody_is_eligible_the_reasons_come_back(rotation, tmp_path) -> None:
    picker = Picker(rotation, tmp_path, "[sdr.a]\npaused = true\n")
    with pytest.raises(NoEligibleSdr) as caught:
        picker.pick(sdrs("a", "b", disconnected=("b",)))
    assert caught.value.excluded == {"a": "paused", "b": "not_connected"}


def test_a_scripted_month_stays_fair_day_by_day(rotation, tmp_path) -> None:
    """d joins on day 10; b is away on days 15-20; 60 replies a day."""
    roster = "[sdr.b]\naway = [ { start = 2026-03-15, end = 2026-03-20 } ]\n"
    picker = Picker(rotation, tmp_path, roster)
    worst = 0.0
    for day in range(1, 31):
        picker.now = DAY0 + timedelta(days=day - 1)
        present = ["a", "b", "c"] + (["d"] if day >= 10 else [])
        counts = Counter(picker.picks(sdrs(*present), 60))
        eligible = [s for s in present if not (s == "b" and 15 <= day <= 20)]
        assert set(counts) == set(eligible), (day, counts)
        for sdr in eligible:
            worst = max(worst, abs(counts[sdr] - 60 / len(eligible)))
        if day in (10, 21):  # the newcomer, and the returner: their share, not a flood
            joiner = "d" if day == 10 else "b"
            assert counts[joiner] <= 60 / len(eligible) + 1, (day, counts)
    assert worst <= 1, worst


def test_a_sticky_account_returns_to_its_sdr_without_moving_the_rotation(rotation, tmp_path):
    picker = Picker(rotation, tmp_path, "", sticky_by="domain")
    team = sdrs("a", "b", "c")
    picker.rotation.store_roster(team)
    first = picker.pick(team, "ceo@acme.io")
    credits = picker.rotation.state()
    again = picker.pick(team, "cto@ACME.io")
    assert (again.sdr_id, again.rule) == (first.sdr_id, "sticky")
    after = picker.rotation.state()
    assert {s: v.get("credit") for s, v in after.items()} == {
        s: v.get("credit") for s, v in credits.items()
    }
    assert after[str(first.sdr_id)]["count"] == 2  # it still counts as the SDR's reply


def test_free_mail_never_makes_an_account(rotation, tmp_path) -> None:
    picker = Picker(rotation, tmp_path, "", sticky_by="domain")
    team = sdrs("a", "b", "c")
    picker.rotation.store_roster(team)
    chosen = {str(picker.pick(team, f"person{i}@gmail.com").sdr_id) for i in range(3)}
    assert chosen == {"a", "b", "c"}


def test_sticky_picks_count_toward_the_daily_cap(rotation, tmp_path) -> None:
    picker = Picker(rotation, tmp_path, "[sdr.a]\ndaily_cap = 2\n", sticky_by="email")
    team = sdrs("a", "b")
    picker.rotation.store_roster(team)
    assert picker.pick(team, "x@acme.io").sdr_id == "a"
    assert picker.pick(team, "x@acme.io").rule == "sticky"
    third = picker.pick(team, "x@acme.io")
    assert third.sdr_id == "b"
    assert third.rule == "rotation:owner_cap"


def test_an_ineligible_owner_sends_the_reply_through_the_rotation(rotation, tmp_path) -> None:
    path = tmp_path / "roster.toml"
    picker = Picker(rotation, tmp_path, "", sticky_by="domain")
    team = sdrs("a", "b")
    picker.rotation.store_roster(team)
    owner = picker.pick(team, "x@acme.io").sdr_id
    path.write_text(f"[sdr.{owner}]\npaused = true\n")
    picker.source = PolicySource(make_settings(roster_file=path, sticky_by="domain"), KEYS)
    result = picker.pick(team, "y@acme.io")
    assert result.sdr_id != owner
    assert result.rule == "rotation:owner_paused"


def test_the_decision_record_names_the_roster_in_force(rotation, tmp_path, fake_redis) -> None:
    picker = Picker(rotation, tmp_path, "[sdr.a]\nweight = 2\n[sdr.b]\npaused = true\n")
    picker.picks(sdrs("a", "b", "c"), 3)
    entries = fake_redis.xrange(KEYS.decisions)
    assert len(entries) == 3
    fields = entries[-1][1]
    assert fields[b"roster"].decode() == picker.source.rosters.roster.digest
    assert b'"b":"paused"' in fields[b"excluded"].replace(b" ", b"")
    assert b'["a",2]' in fields[b"candidates"].replace(b" ", b"")


def test_no_roster_is_exactly_plain_round_robin(rotation, fake_redis) -> None:
    source = PolicySource(make_settings(), KEYS)
    assert source.policy(DAY0, "x@acme.io") == Policy(sticky_ttl=90 * 86400)
    team = sdrs("a", "b", "c")
    rotation.store_roster(team)
    chosen = [
        rotation.pick(f"r{i}", source.policy(DAY0, None), lambda: team).sdr_id for i in range(6)
    ]
    assert chosen == ["a", "b", "c", "a", "b", "c"]
