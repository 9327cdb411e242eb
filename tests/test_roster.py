"""The roster file (worker/routing/roster.py) and the policy built from it
(worker/routing/policy.py)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from structlog.testing import capture_logs

from config.settings import ConfigError
from tests.conftest import make_settings
from worker.errors import RosterError
from worker.keys import Keys
from worker.routing import policy as policy_module
from worker.routing.policy import PolicySource, RosterSource
from worker.routing.roster import EMPTY, load_roster, parse_roster
from worker.routing.rotation import account_hash
from worker.runtime import Runtime

KEYS = Keys("test:")
PARIS = ZoneInfo("Europe/Paris")
AUCKLAND = ZoneInfo("Pacific/Auckland")
# 12:00 UTC on 1 March 2026 is already 01:00 on 2 March in Auckland (NZDT, UTC+13).
NOON_UTC = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

VALID = """\
[defaults]
timezone = "Europe/Paris"
working_hours = { days = "mon-fri", start = "09:00", end = "17:30" }

[sdr.sdr_1]
weight = 3
daily_cap = 40
away = [ { start = 2026-12-20, end = 2026-12-31 } ]

[sdr.sdr_2]
paused = true
timezone = "America/New_York"
working_hours = { days = "mon-thu", start = "08:00", end = "16:00" }

[sdr.sdr_3]
timezone = "Pacific/Auckland"
"""


def write(path: Path, text: str, *, bump: int = 0) -> Path:
    """Write the roster, moving its mtime `bump` seconds on so a reload sees a change."""
    path.write_text(text, encoding="utf-8")
    if bump:
        stat = path.stat()
        os.utime(path, (stat.st_atime + bump, stat.st_mtime + bump))
    return path


@pytest.fixture
def reload_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy_module, "RELOAD_CHECK_SECONDS", 0)


def source(tmp_path: Path, roster: str | None, **settings: object) -> PolicySource:
    path = write(tmp_path / "roster.toml", roster) if roster is not None else None
    return PolicySource(make_settings(roster_file=path, **settings), KEYS)


# -- parsing a valid roster ----------------------------------------------------------------------


def test_a_listed_sdr_gets_its_own_weight_cap_and_away_dates() -> None:
    sdr = parse_roster(VALID).for_sdr("sdr_1")
    assert sdr.weight == 3
    assert sdr.daily_cap == 40
    assert sdr.paused is False
    assert sdr.away == ((date(2026, 12, 20), date(2026, 12, 31)),)
    assert sdr.away_on(date(2026, 12, 20)) and sdr.away_on(date(2026, 12, 31))
    assert not sdr.away_on(date(2026, 12, 19)) and not sdr.away_on(date(2027, 1, 1))


def test_a_listed_sdr_inherits_the_default_zone_and_working_hours() -> None:
    sdr = parse_roster(VALID).for_sdr("sdr_1")
    assert sdr.timezone == PARIS
    assert sdr.hours is not None
    assert sdr.hours.timezone == PARIS
    assert sdr.hours.days == frozenset(range(5))
    assert (sdr.hours.start, sdr.hours.end) == (time(9), time(17, 30))


def test_a_listed_sdr_overrides_zone_hours_and_paused() -> None:
    sdr = parse_roster(VALID).for_sdr("sdr_2")
    new_york = ZoneInfo("America/New_York")
    assert sdr.paused is True
    assert sdr.weight == 1
    assert sdr.daily_cap is None
    assert sdr.timezone == new_york
    assert sdr.hours is not None
    assert sdr.hours.timezone == new_york
    assert sdr.hours.days == frozenset(range(4))
    assert (sdr.hours.start, sdr.hours.end) == (time(8), time(16))


def test_the_default_working_hours_apply_in_the_sdrs_own_zone() -> None:
    sdr = parse_roster(VALID).for_sdr("sdr_3")
    assert sdr.timezone == AUCKLAND
    assert sdr.hours is not None
    assert sdr.hours.timezone == AUCKLAND
    assert (sdr.hours.start, sdr.hours.end) == (time(9), time(17, 30))


def test_an_sdr_not_in_the_file_gets_weight_one_and_the_defaults() -> None:
    sdr = parse_roster(VALID).for_sdr("sdr_unknown")
    assert sdr.weight == 1
    assert sdr.daily_cap is None
    assert sdr.paused is False
    assert sdr.away == ()
    assert sdr.timezone == PARIS
    assert sdr.hours is not None and sdr.hours.timezone == PARIS


def test_an_empty_file_is_a_plain_rotation() -> None:
    roster = parse_roster("")
    assert roster.empty
    assert roster.for_sdr("anyone").weight == 1
    assert roster.for_sdr("anyone").hours is None


def test_the_digest_follows_the_content() -> None:
    first = parse_roster(VALID)
    assert first.digest and first.digest == parse_roster(VALID).digest
    assert parse_roster(VALID.replace("weight = 3", "weight = 4")).digest != first.digest


def test_load_roster_reads_the_file(tmp_path: Path) -> None:
    roster = load_roster(write(tmp_path / "roster.toml", VALID))
    assert roster.for_sdr("sdr_1").weight == 3
    assert roster.digest == parse_roster(VALID).digest


# -- a bad roster names the line and the field -------------------------------------------------

BAD_FILES = {
    "negative weight": (
        '[defaults]\ntimezone = "UTC"\n\n[sdr.sdr_1]\nweight = 2\n\n[sdr.sdr_2]\npaused = true\n'
        "weight = -1\n",
        9,
        "sdr.sdr_2.weight",
    ),
    "typo in a key": ("[sdr.sdr_1]\nweight = 2\ndialy_cap = 3\n", 3, "sdr.sdr_1.dialy_cap"),
    "typo in a default": (
        '[defaults]\ntimezone = "UTC"\nworkinghours = 3\n',
        3,
        "defaults.workinghours",
    ),
    "typo in a table name": ("# roster\n\n[sdrs.sdr_1]\nweight = 2\n", 3, "sdrs"),
    "unknown time zone": (
        '[sdr.sdr_1]\nweight = 2\ntimezone = "Mars/Olympus"\n',
        3,
        "sdr.sdr_1.timezone",
    ),
    "unknown default time zone": (
        '# top\n[defaults]\n\ntimezone = "Europe/Pariss"\n',
        4,
        "defaults.timezone",
    ),
    "away ending before it starts": (
        "[sdr.sdr_1]\nweight = 2\n\naway = [ { start = 2026-12-20, end = 2026-12-01 } ]\n",
        4,
        "sdr.sdr_1.away.0.end",
    ),
    "working hours starting after they end": (
        "[sdr.sdr_1]\nweight = 2\n"
        'working_hours = { days = "mon-fri", start = "18:00", end = "09:00" }\n',
        3,
        "sdr.sdr_1.working_hours",
    ),
    "default working hours starting after they end": (
        '[defaults]\ntimezone = "UTC"\n\n'
        'working_hours = { days = "mon-fri", start = "18:00", end = "09:00" }\n',
        4,
        "defaults.working_hours",
    ),
    "working hours on unknown days": (
        '[sdr.sdr_1]\nworking_hours = { days = "funday", start = "08:00", end = "09:00" }\n',
        2,
        "sdr.sdr_1.working_hours",
    ),
    "a weight that is not a number": ('[sdr.sdr_1]\nweight = "three"\n', 2, "sdr.sdr_1.weight"),
    "a negative daily cap": (
        "[sdr.sdr_1]\nweight = 1\n\n[sdr.sdr_10]\ndaily_cap = -4\n",
        5,
        "sdr.sdr_10.daily_cap",
    ),
}


@pytest.mark.parametrize(("text", "line", "field"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_roster_names_the_line_and_the_field(text: str, line: int, field: str) -> None:
    with pytest.raises(RosterError) as bad:
        parse_roster(text, "roster.toml")
    message = str(bad.value)
    assert message.startswith(f"roster.toml (line {line}): {field}: "), message
    assert "\n" not in message


def test_a_toml_syntax_error_keeps_tomls_own_line() -> None:
    with pytest.raises(RosterError) as bad:
        parse_roster("[sdr.sdr_1]\nweight = 2\npaused = \n", "roster.toml")
    assert str(bad.value).startswith("roster.toml: not valid TOML: ")
    assert "line 3" in str(bad.value)


def test_load_roster_names_the_file_in_its_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "roster.toml", "[sdr.sdr_1]\nweight = -1\n")
    with pytest.raises(RosterError, match=rf"^ROSTER_FILE {path} \(line 2\): sdr\.sdr_1\.weight"):
        load_roster(path)


def test_load_roster_on_a_missing_file_says_it_cannot_read_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(RosterError, match=rf"^ROSTER_FILE: cannot read {missing}: "):
        load_roster(missing)


# -- RosterSource: loaded at start, hot-reloaded while running --------------------------------


def test_no_roster_file_is_the_empty_roster() -> None:
    assert RosterSource(None).current() is EMPTY


@pytest.mark.parametrize(
    "text", [None, "[sdr.sdr_1]\nweight = -1\n", "[sdr.sdr_1\n"], ids=["missing", "bad", "toml"]
)
def test_a_bad_roster_at_start_is_a_one_line_config_error(tmp_path: Path, text) -> None:
    path = tmp_path / "roster.toml"
    if text is not None:
        write(path, text)
    with pytest.raises(ConfigError) as bad:
        RosterSource(path)
    assert str(path) in str(bad.value)
    assert "\n" not in str(bad.value)


def test_a_changed_valid_roster_is_picked_up(tmp_path: Path, reload_always) -> None:
    path = write(tmp_path / "roster.toml", "[sdr.sdr_1]\nweight = 2\n")
    rosters = RosterSource(path)
    before = rosters.current().digest
    write(path, "[sdr.sdr_1]\nweight = 5\n", bump=10)
    with capture_logs() as logs:
        fresh = rosters.current()
    assert fresh.for_sdr("sdr_1").weight == 5
    assert fresh.digest == parse_roster("[sdr.sdr_1]\nweight = 5\n").digest != before
    assert logs == [
        {
            "event": "roster.reloaded",
            "log_level": "info",
            "previous": before,
            "roster": fresh.digest,
        }
    ]
    with capture_logs() as again:
        assert rosters.current() is fresh
    assert again == []


def test_a_changed_invalid_roster_is_ignored_and_the_last_good_one_stays(
    tmp_path: Path, reload_always
) -> None:
    path = write(tmp_path / "roster.toml", "[sdr.sdr_1]\nweight = 2\n")
    rosters = RosterSource(path)
    good = rosters.current()
    write(path, "[sdr.sdr_1]\nweight = -2\n", bump=10)
    with capture_logs() as logs:
        assert rosters.current() is good
    assert len(logs) == 1
    assert logs[0]["event"] == "roster.invalid"
    assert logs[0]["log_level"] == "error"
    assert logs[0]["kept"] == good.digest
    assert "(line 2): sdr.sdr_1.weight" in logs[0]["error"]
    with capture_logs() as quiet:  # logged once, not on every pick
        assert rosters.current() is good
    assert quiet == []
    write(path, "[sdr.sdr_1]\nweight = 7\n", bump=20)
    assert rosters.current().for_sdr("sdr_1").weight == 7


def test_the_file_is_not_looked_at_again_within_the_check_interval(tmp_path: Path) -> None:
    path = write(tmp_path / "roster.toml", "[sdr.sdr_1]\nweight = 2\n")
    rosters = RosterSource(path)
    rosters.current()  # the first look happens straight away
    write(path, "[sdr.sdr_1]\nweight = 5\n", bump=10)
    assert rosters.current().for_sdr("sdr_1").weight == 2


# -- PolicySource: the Policy for one pick ------------------------------------------------------


def test_without_a_roster_the_policy_is_plain_rotation() -> None:
    policy = source(Path(), None).policy(NOON_UTC, "bob@acme.com")
    assert policy.weights == {}
    assert policy.off == {}
    assert policy.caps == {}
    assert policy.sticky_key is None
    assert policy.account_hash == ""
    assert policy.use_health is False
    assert policy.roster_hash == ""


def test_weights_other_than_one_ride_along(tmp_path: Path) -> None:
    text = "[sdr.a]\nweight = 3\n[sdr.b]\nweight = 1\n[sdr.c]\nweight = 0\n"
    assert source(tmp_path, text).policy(NOON_UTC, None).weights == {"a": 3, "c": 0}


def test_a_paused_sdr_is_off(tmp_path: Path) -> None:
    policy = source(tmp_path, "[sdr.a]\npaused = true\n[sdr.b]\nweight = 2\n").policy(
        NOON_UTC, None
    )
    assert policy.off == {"a": "paused"}


AWAY_ON_2_MARCH = """\
[sdr.nz]
timezone = "Pacific/Auckland"
away = [ { start = 2026-03-02, end = 2026-03-02 } ]

[sdr.utc]
timezone = "UTC"
away = [ { start = 2026-03-02, end = 2026-03-02 } ]
"""


@pytest.mark.parametrize(
    ("now", "off"),
    [
        (datetime(2026, 3, 1, 10, 59, tzinfo=UTC), {}),  # 23:59 on 1 March in Auckland
        (NOON_UTC, {"nz": "away"}),  # 01:00 on 2 March in Auckland, noon on 1 March in UTC
        (datetime(2026, 3, 2, 10, 0, tzinfo=UTC), {"nz": "away", "utc": "away"}),
        (datetime(2026, 3, 2, 11, 0, tzinfo=UTC), {"utc": "away"}),  # 3 March in Auckland
    ],
)
def test_away_dates_are_the_sdrs_local_dates(tmp_path: Path, now: datetime, off: dict) -> None:
    assert source(tmp_path, AWAY_ON_2_MARCH).policy(now, None).off == off


def test_the_daily_cap_counts_on_the_sdrs_local_date(tmp_path: Path) -> None:
    text = '[sdr.nz]\ntimezone = "Pacific/Auckland"\ndaily_cap = 5\n[sdr.uk]\ndaily_cap = 7\n'
    policy = source(tmp_path, text).policy(NOON_UTC, None)
    assert policy.caps == {
        "nz": (5, KEYS.daily_count("nz", "2026-03-02")),
        "uk": (7, KEYS.daily_count("uk", "2026-03-01")),
    }
    assert "2026-03-02" in policy.caps["nz"][1]


def test_a_paused_sdr_is_paused_even_when_also_away(tmp_path: Path) -> None:
    text = "[sdr.a]\npaused = true\naway = [ { start = 2026-03-01, end = 2026-03-05 } ]\n"
    assert source(tmp_path, text).policy(NOON_UTC, None).off == {"a": "paused"}


@pytest.mark.parametrize(
    ("sticky_by", "email", "account"),
    [
        ("none", "bob@acme.com", None),
        ("domain", "Bob@Acme.com", "acme.com"),
        ("domain", "alice@acme.com", "acme.com"),
        ("email", "Bob@Acme.com", "bob@acme.com"),
        ("domain", "bob@gmail.com", None),
        ("domain", "bob@GMAIL.com", None),
        ("domain", "bob@hotmail.com", None),
        ("domain", None, None),
        ("domain", "not-an-address", None),
        # by address, a free-mail address is one person: the account is the address, never the
        # shared free-mail domain
        ("email", "Bob@gmail.com", "bob@gmail.com"),
    ],
)
def test_the_sticky_key_follows_sticky_by_and_skips_free_mail(
    tmp_path: Path, sticky_by: str, email: str | None, account: str | None
) -> None:
    policy = source(tmp_path, "", sticky_by=sticky_by).policy(NOON_UTC, email)
    if account is None:
        assert policy.sticky_key is None
        assert policy.account_hash == ""
    else:
        assert policy.sticky_key == KEYS.sticky(account_hash(account))
        assert policy.account_hash == account_hash(account)
        assert policy.sticky_ttl == 90 * 86400


def test_free_mail_domains_come_from_the_settings(tmp_path: Path) -> None:
    policies = source(tmp_path, "", sticky_by="domain", free_mail_domains="Mailbox.Example")
    assert policies.policy(NOON_UTC, "bob@mailbox.example").sticky_key is None
    assert policies.policy(NOON_UTC, "bob@gmail.com").sticky_key == KEYS.sticky(
        account_hash("gmail.com")
    )


@pytest.mark.parametrize(("keys", "expected"), [({}, False), ({"sdr_1": "sk_sdr_one"}, True)])
def test_mailbox_health_is_used_only_with_sdr_keys(tmp_path: Path, keys, expected) -> None:
    policy = source(tmp_path, "", leadterra_sdr_api_keys=keys).policy(NOON_UTC, None)
    assert policy.use_health is expected


def test_the_policy_carries_the_rosters_digest(tmp_path: Path) -> None:
    assert source(tmp_path, VALID).policy(NOON_UTC, None).roster_hash == parse_roster(VALID).digest


def test_the_policy_follows_a_reloaded_roster(tmp_path: Path, reload_always) -> None:
    policies = source(tmp_path, "[sdr.a]\nweight = 2\n")
    assert policies.policy(NOON_UTC, None).weights == {"a": 2}
    write(tmp_path / "roster.toml", "[sdr.a]\npaused = true\n", bump=10)
    assert policies.policy(NOON_UTC, None).off == {"a": "paused"}


# -- Runtime.working_hours: the roster wins over WORKING_HOURS -----------------------------------

SETTING_HOURS = {
    "default": {"timezone": "UTC", "days": "mon-sun", "start": "10:00", "end": "11:00"}
}


def test_runtime_working_hours_prefer_the_rosters(tmp_path: Path, fake_redis) -> None:
    """Fails today: worker/runtime.py `Runtime.working_hours` never asks `self.policy`."""
    path = write(
        tmp_path / "roster.toml",
        '[sdr.sdr_1]\ntimezone = "America/New_York"\n'
        'working_hours = { days = "mon-thu", start = "08:00", end = "16:00" }\n',
    )
    rt = Runtime(
        make_settings(roster_file=path, working_hours=SETTING_HOURS),
        client=fake_redis,
    )
    hours = rt.working_hours("sdr_1")
    assert hours is not None
    assert hours.timezone == ZoneInfo("America/New_York")
    assert (hours.start, hours.end) == (time(8), time(16))


def test_runtime_working_hours_fall_back_to_the_setting(fake_redis: fakeredis.FakeRedis) -> None:
    rt = Runtime(make_settings(working_hours=SETTING_HOURS), client=fake_redis)
    hours = rt.working_hours("sdr_1")
    assert hours is not None
    assert (hours.start, hours.end) == (time(10), time(11))


# -- slack_user_id: whom SLA reminders mention in the team's channel -----------------------------


def test_an_sdr_may_carry_a_slack_user_id() -> None:
    roster = parse_roster('[sdr.sdr_1]\nslack_user_id = "U024BE7LH"\n\n[sdr.sdr_2]\nweight = 2\n')
    assert roster.for_sdr("sdr_1").slack_user_id == "U024BE7LH"
    assert roster.for_sdr("sdr_2").slack_user_id is None
    assert roster.for_sdr("sdr_unlisted").slack_user_id is None


@pytest.mark.parametrize(
    "value",
    ['"<!channel>"', '"u024be7lh"', '"U024BE7LH\\n"', '"U024BE7LH> <!here"', '"C024BE7LR"', "42"],
)
def test_a_bad_slack_user_id_stops_the_roster_with_its_line(value: str) -> None:
    text = f"[sdr.sdr_1]\nweight = 2\nslack_user_id = {value}\n"
    with pytest.raises(RosterError) as bad:
        parse_roster(text, "roster.toml")
    message = str(bad.value)
    assert message.startswith("roster.toml (line 3): sdr.sdr_1.slack_user_id: "), message
    assert "\n" not in message
    assert "channel" not in message and "here" not in message  # the value is not quoted


def test_slack_user_ids_are_not_a_default() -> None:
    with pytest.raises(RosterError, match=r"defaults\.slack_user_id"):
        parse_roster('[defaults]\nslack_user_id = "U024BE7LH"\n', "roster.toml")


def test_runtime_slack_user_id_reads_the_roster(tmp_path: Path, fake_redis) -> None:
    path = write(tmp_path / "roster.toml", '[sdr.sdr_1]\nslack_user_id = "W012A3CDE"\n')
    rt = Runtime(make_settings(roster_file=path), client=fake_redis)
    assert rt.slack_user_id("sdr_1") == "W012A3CDE"
    assert rt.slack_user_id("sdr_2") is None
    assert Runtime(make_settings(), client=fake_redis).slack_user_id("sdr_1") is None
