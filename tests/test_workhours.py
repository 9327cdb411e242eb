"""worker/routing/workhours.py: day specs, validation, and working hours in the SDR's own time
zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.settings import ConfigError
from tests.conftest import make_settings
from worker.routing.workhours import WorkingHours, hours_from_settings, parse_days
from worker.runtime import Runtime

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
PARIS = {"timezone": "Europe/Paris", "days": "mon-fri", "start": "09:00", "end": "17:00"}
NEW_YORK = {**PARIS, "timezone": "America/New_York"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "days"),
    [
        ("mon-fri", {MON, TUE, WED, THU, FRI}),
        ("sat-sun", {SAT, SUN}),
        ("fri-mon", {FRI, SAT, SUN, MON}),
        ("sun-tue", {SUN, MON, TUE}),
        ("wed-wed", {WED}),
        ("mon,wed,fri", {MON, WED, FRI}),
        ("mon-wed,fri", {MON, TUE, WED, FRI}),
        ("Monday, Wednesday", {MON, WED}),
        ("MON-FRI", {MON, TUE, WED, THU, FRI}),
        (["mon", "tue"], {MON, TUE}),
        (["Saturday", "sunday"], {SAT, SUN}),
        ([1, 2, 3], {MON, TUE, WED}),
        ([7], {SUN}),
        ([5, 6, 7, 1], {FRI, SAT, SUN, MON}),
    ],
)
def test_parse_days_reads_ranges_lists_names_and_iso_numbers(
    spec: str | list[Any], days: set[int]
) -> None:
    assert parse_days(spec) == frozenset(days)


@pytest.mark.parametrize("spec", ["", ",", " , "])
def test_parse_days_of_an_empty_spec_is_empty(spec: str) -> None:
    assert parse_days(spec) == frozenset()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"days": "funday"}, "days"),
        ({"days": "mon-blursday"}, "days"),
        ({"days": ["mon", "holiday"]}, "days"),
        ({"days": ""}, "days"),
        ({"days": []}, "days"),
        ({"start": "nine"}, "start"),
        ({"start": "25:00"}, "start"),
        ({"end": "17:60"}, "end"),
        ({"end": "5pm"}, "end"),
        ({"start": "17:00", "end": "09:00"}, "start"),
        ({"start": "09:00", "end": "09:00"}, "start"),
    ],
)
def test_a_bad_spec_raises_value_error_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        WorkingHours.parse({**PARIS, **change})


def test_an_iso_day_number_outside_1_to_7_is_rejected() -> None:
    """ISO weekdays are 1..7. Today `[0]` parses to day -1: no moment is ever inside those
    hours, and `next_start` raises "no working day in the week" when a follow-up is routed."""
    with pytest.raises(ValueError, match="days"):
        WorkingHours.parse({**PARIS, "days": [0]})


def test_parse_reads_every_field() -> None:
    hours = WorkingHours.parse(
        {"timezone": "America/New_York", "days": "tue-thu", "start": "08:30", "end": "16:45"}
    )
    assert hours == WorkingHours(
        ZoneInfo("America/New_York"), frozenset({TUE, WED, THU}), time(8, 30), time(16, 45)
    )


def test_parse_defaults_to_utc_weekdays_nine_to_five() -> None:
    assert WorkingHours.parse({}) == WorkingHours(
        ZoneInfo("UTC"), frozenset({MON, TUE, WED, THU, FRI}), time(9), time(17)
    )


def test_hours_from_settings_parses_each_sdr_and_the_default() -> None:
    hours = hours_from_settings({"sdr_1": PARIS, "default": NEW_YORK})
    assert set(hours) == {"sdr_1", "default"}
    assert hours["sdr_1"].timezone == ZoneInfo("Europe/Paris")
    assert hours["default"].timezone == ZoneInfo("America/New_York")


def test_runtime_uses_the_sdrs_own_hours_else_the_default(fake_redis) -> None:
    settings = make_settings(working_hours={"sdr_1": PARIS, "default": NEW_YORK})
    rt = Runtime(settings, client=fake_redis)
    assert rt.working_hours("sdr_1") == WorkingHours.parse(PARIS)
    assert rt.working_hours("sdr_2") == WorkingHours.parse(NEW_YORK)
    assert rt.working_hours(None) == WorkingHours.parse(NEW_YORK)


def test_runtime_without_working_hours_has_none(fake_redis) -> None:
    rt = Runtime(make_settings(), client=fake_redis)
    assert rt.working_hours("sdr_1") is None


def test_runtime_reports_bad_working_hours_as_a_config_error(fake_redis) -> None:
    settings = make_settings(working_hours={"sdr_1": {**PARIS, "end": "08:00"}})
    with pytest.raises(ConfigError, match="WORKING_HOURS: start must be before end"):
        Runtime(settings, client=fake_redis)


@pytest.mark.parametrize(
    ("spec", "moment", "inside"),
    [
        # Paris, winter (CET, UTC+1) on Friday 2025-03-28, summer (CEST, UTC+2) from Sunday 30th
        (PARIS, utc(2025, 3, 28, 7, 59), False),  # 08:59 CET
        (PARIS, utc(2025, 3, 28, 8, 0), True),  # 09:00 CET
        (PARIS, utc(2025, 3, 28, 15, 59, 59), True),  # 16:59:59 CET
        (PARIS, utc(2025, 3, 28, 16, 0), False),  # 17:00 CET, end is exclusive
        (PARIS, utc(2025, 3, 31, 7, 0), True),  # 09:00 CEST on Monday
        (PARIS, utc(2025, 3, 31, 6, 59), False),  # 08:59 CEST
        (PARIS, utc(2025, 3, 31, 15, 0), False),  # 17:00 CEST
        (PARIS, utc(2025, 3, 31, 14, 59), True),  # 16:59 CEST
        # New York, winter (EST, UTC-5) before Sunday 2025-03-09, summer (EDT, UTC-4) after
        (NEW_YORK, utc(2025, 3, 7, 13, 0), False),  # 08:00 EST
        (NEW_YORK, utc(2025, 3, 7, 14, 0), True),  # 09:00 EST
        (NEW_YORK, utc(2025, 3, 10, 13, 0), True),  # 09:00 EDT
        (NEW_YORK, utc(2025, 3, 10, 21, 0), False),  # 17:00 EDT
        (NEW_YORK, utc(2025, 3, 10, 20, 59), True),  # 16:59 EDT
        # ...and back to EST on Sunday 2025-11-02
        (NEW_YORK, utc(2025, 10, 31, 13, 0), True),  # Friday 09:00 EDT
        (NEW_YORK, utc(2025, 11, 3, 13, 0), False),  # Monday 08:00 EST
        (NEW_YORK, utc(2025, 11, 3, 14, 0), True),  # Monday 09:00 EST
        # weekends, in the SDR's zone
        (PARIS, utc(2025, 3, 29, 10, 0), False),  # Saturday
        (PARIS, utc(2025, 3, 30, 10, 0), False),  # Sunday
    ],
)
def test_contains_reads_the_moment_in_the_sdrs_zone_across_dst(
    spec: dict[str, str], moment: datetime, inside: bool
) -> None:
    assert WorkingHours.parse(spec).contains(moment) is inside


def test_contains_uses_the_weekday_in_the_sdrs_zone_not_in_utc() -> None:
    evenings = WorkingHours.parse({**NEW_YORK, "start": "20:00", "end": "23:00"})
    friday_night_new_york = utc(2025, 6, 7, 2, 0)  # Saturday in UTC, Friday 22:00 EDT
    monday_night_utc = utc(2025, 6, 9, 22, 0)  # Monday 18:00 EDT, before the start
    saturday_night_new_york = utc(2025, 6, 8, 2, 0)  # Sunday in UTC, Saturday 22:00 EDT
    assert evenings.contains(friday_night_new_york)
    assert not evenings.contains(monday_night_utc)
    assert not evenings.contains(saturday_night_new_york)


def test_contains_accepts_moments_in_any_zone() -> None:
    hours = WorkingHours.parse(PARIS)
    tokyo = timezone(timedelta(hours=9))
    assert hours.contains(datetime(2025, 6, 2, 16, 30, tzinfo=tokyo))  # 09:30 in Paris
    assert not hours.contains(datetime(2025, 6, 2, 15, 30, tzinfo=tokyo))  # 08:30 in Paris


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Monday 2025-06-02, Paris in CEST (UTC+2): 09:00 is 07:00 UTC
        (utc(2025, 6, 2, 4, 0), utc(2025, 6, 2, 7, 0)),  # 06:00, before the start: today
        (utc(2025, 6, 2, 7, 0), utc(2025, 6, 2, 7, 0)),  # exactly the start: itself
        (utc(2025, 6, 2, 8, 0), utc(2025, 6, 3, 7, 0)),  # during: tomorrow's start
        (utc(2025, 6, 2, 16, 0), utc(2025, 6, 3, 7, 0)),  # 18:00, after the end: tomorrow
        (utc(2025, 6, 2, 22, 30), utc(2025, 6, 3, 7, 0)),  # 00:30 Tuesday in Paris
        (utc(2025, 6, 6, 16, 0), utc(2025, 6, 9, 7, 0)),  # Friday 18:00: Monday
        (utc(2025, 6, 7, 10, 0), utc(2025, 6, 9, 7, 0)),  # Saturday: Monday
        (utc(2025, 6, 8, 21, 59), utc(2025, 6, 9, 7, 0)),  # Sunday 23:59: Monday
    ],
)
def test_next_start_is_the_next_slot_at_or_after_the_moment(
    moment: datetime, expected: datetime
) -> None:
    assert WorkingHours.parse(PARIS).next_start(moment) == expected


@pytest.mark.parametrize(
    ("spec", "friday_evening", "monday_start"),
    [
        # Paris springs forward on 2025-03-30: Friday 18:00 CET, Monday 09:00 CEST
        (PARIS, utc(2025, 3, 28, 17, 0), utc(2025, 3, 31, 7, 0)),
        # Paris falls back on 2025-10-26: Friday 18:00 CEST, Monday 09:00 CET
        (PARIS, utc(2025, 10, 24, 16, 0), utc(2025, 10, 27, 8, 0)),
        # New York falls back on 2025-11-02: Friday 18:00 EDT, Monday 09:00 EST
        (NEW_YORK, utc(2025, 10, 31, 22, 0), utc(2025, 11, 3, 14, 0)),
        # New York springs forward on 2025-03-09: Friday 18:00 EST, Monday 09:00 EDT
        (NEW_YORK, utc(2025, 3, 7, 23, 0), utc(2025, 3, 10, 13, 0)),
    ],
)
def test_next_start_keeps_the_local_start_time_across_a_dst_change(
    spec: dict[str, str], friday_evening: datetime, monday_start: datetime
) -> None:
    assert WorkingHours.parse(spec).next_start(friday_evening) == monday_start


def test_next_start_is_in_utc() -> None:
    start = WorkingHours.parse(PARIS).next_start(utc(2025, 6, 7, 10, 0))
    assert start.utcoffset() == timedelta(0)
    assert start.astimezone(ZoneInfo("Europe/Paris")).time() == time(9, 0)


def test_next_start_with_a_single_working_day_waits_a_week() -> None:
    mondays = WorkingHours.parse({**PARIS, "days": "mon"})
    monday_during = utc(2025, 6, 2, 8, 0)  # Monday 10:00 in Paris, after the start
    assert mondays.next_start(monday_during) == utc(2025, 6, 9, 7, 0)
