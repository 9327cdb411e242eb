"""worker/sla/clock.py: the SLA clock counts the SDR's working hours in their own time zone
(nights, weekends, DST changes, handoffs outside hours), or wall-clock time without hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.routing.workhours import WorkingHours
from worker.sla.clock import due_at, elapsed

PARIS_TZ = ZoneInfo("Europe/Paris")
NEW_YORK_TZ = ZoneInfo("America/New_York")
PARIS = WorkingHours.parse(
    {"timezone": "Europe/Paris", "days": "mon-fri", "start": "09:00", "end": "17:00"}
)
NEW_YORK = WorkingHours.parse(
    {"timezone": "America/New_York", "days": "mon-fri", "start": "09:00", "end": "17:00"}
)
# 2025-06-09 is a Monday; 2025-06-13 a Friday.


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS_TZ)  # type: ignore[misc]


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK_TZ)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


@pytest.mark.parametrize(
    ("start", "sla", "due"),
    [
        pytest.param(paris(2025, 6, 10, 10, 0), 30, paris(2025, 6, 10, 10, 30), id="in-hours"),
        pytest.param(paris(2025, 6, 10, 16, 45), 30, paris(2025, 6, 11, 9, 15), id="overnight"),
        pytest.param(paris(2025, 6, 13, 16, 50), 30, paris(2025, 6, 16, 9, 20), id="weekend"),
        pytest.param(paris(2025, 6, 10, 7, 0), 30, paris(2025, 6, 10, 9, 30), id="before-open"),
        pytest.param(paris(2025, 6, 10, 18, 0), 30, paris(2025, 6, 11, 9, 30), id="after-close"),
        pytest.param(paris(2025, 6, 14, 11, 0), 30, paris(2025, 6, 16, 9, 30), id="on-saturday"),
        pytest.param(paris(2025, 6, 10, 17, 0), 30, paris(2025, 6, 11, 9, 30), id="at-close"),
        pytest.param(paris(2025, 6, 10, 9, 0), 480, paris(2025, 6, 10, 17, 0), id="whole-day"),
        pytest.param(paris(2025, 6, 13, 12, 0), 960, paris(2025, 6, 17, 12, 0), id="two-days"),
    ],
)
def test_due_at_counts_only_paris_working_hours(start: datetime, sla: float, due: datetime) -> None:
    assert due_at(start, sla, PARIS) == due


def test_a_friday_1650_handoff_with_30_minutes_is_due_monday_0920_and_reminded_at_0905() -> None:
    start = paris(2025, 6, 13, 16, 50)
    assert due_at(start, 30, PARIS) == paris(2025, 6, 16, 9, 20)
    assert due_at(start, 30, PARIS, fraction=0.5) == paris(2025, 6, 16, 9, 5)
    assert due_at(start, 30, PARIS, fraction=1 / 3) == paris(2025, 6, 13, 17, 0)


@pytest.mark.parametrize(
    ("now", "worked"),
    [
        (paris(2025, 6, 13, 16, 50), 0),
        (paris(2025, 6, 13, 16, 55), 5),
        (paris(2025, 6, 13, 23, 0), 10),
        (paris(2025, 6, 14, 12, 0), 10),
        (paris(2025, 6, 16, 8, 59), 10),
        (paris(2025, 6, 16, 9, 5), 15),
        (paris(2025, 6, 16, 9, 20), 30),
        (paris(2025, 6, 17, 9, 0), 10 + 480),
        (paris(2025, 6, 27, 16, 50), 10 + 9 * 480 + 470),
        (paris(2025, 6, 12, 12, 0), 0),
    ],
)
def test_elapsed_skips_the_night_and_the_weekend(now: datetime, worked: float) -> None:
    assert elapsed(paris(2025, 6, 13, 16, 50), now, PARIS) == minutes(worked)


def test_a_handoff_outside_hours_starts_the_clock_at_the_next_opening() -> None:
    start = paris(2025, 6, 10, 7, 0)
    assert due_at(start, 0, PARIS) == paris(2025, 6, 10, 9, 0)
    assert elapsed(start, paris(2025, 6, 10, 8, 59), PARIS) == timedelta(0)
    assert elapsed(start, paris(2025, 6, 10, 9, 10), PARIS) == minutes(10)
    assert due_at(paris(2025, 6, 10, 10, 0), 0, PARIS) == paris(2025, 6, 10, 10, 0)


def test_the_same_instant_is_judged_in_each_sdrs_own_time_zone() -> None:
    start = utc(2025, 6, 10, 12, 0)  # 14:00 in Paris, 08:00 in New York
    assert due_at(start, 30, PARIS) == utc(2025, 6, 10, 12, 30)
    assert due_at(start, 30, NEW_YORK) == new_york(2025, 6, 10, 9, 30) == utc(2025, 6, 10, 13, 30)
    assert elapsed(start, utc(2025, 6, 10, 13, 10), NEW_YORK) == minutes(10)
    assert elapsed(start, utc(2025, 6, 10, 13, 10), PARIS) == minutes(70)


@pytest.mark.parametrize(
    ("hours", "start", "due", "due_utc"),
    [
        # Paris springs forward on Sunday 2025-03-30: Friday is UTC+1, Monday UTC+2.
        (PARIS, paris(2025, 3, 28, 16, 50), paris(2025, 3, 31, 9, 20), utc(2025, 3, 31, 7, 20)),
        # and falls back on Sunday 2025-10-26.
        (PARIS, paris(2025, 10, 24, 16, 50), paris(2025, 10, 27, 9, 20), utc(2025, 10, 27, 8, 20)),
        # New York springs forward on Sunday 2025-03-09, two weeks before Paris.
        (
            NEW_YORK,
            new_york(2025, 3, 7, 16, 50),
            new_york(2025, 3, 10, 9, 20),
            utc(2025, 3, 10, 13, 20),
        ),
        (
            NEW_YORK,
            new_york(2025, 10, 31, 16, 50),
            new_york(2025, 11, 3, 9, 20),
            utc(2025, 11, 3, 14, 20),
        ),
    ],
)
def test_a_dst_weekend_keeps_monday_at_the_local_opening(
    hours: WorkingHours, start: datetime, due: datetime, due_utc: datetime
) -> None:
    assert due_at(start, 30, hours) == due == due_utc
    assert elapsed(start, due_utc, hours) == minutes(30)
    assert elapsed(start, due_utc - timedelta(hours=1), hours) == minutes(10)


@pytest.mark.parametrize(
    ("sunday", "real_minutes", "next_sunday"),
    [
        # 2025-03-30: 01:00 CET to 05:00 CEST is three real hours.
        (paris(2025, 3, 30, 1, 0), 180, paris(2025, 4, 6, 1, 1)),
        # 2025-10-26: 01:00 CEST to 05:00 CET is five real hours.
        (paris(2025, 10, 26, 1, 0), 300, paris(2025, 11, 2, 1, 1)),
    ],
)
def test_a_slot_that_holds_a_dst_change_counts_real_time(
    sunday: datetime, real_minutes: int, next_sunday: datetime
) -> None:
    nights = WorkingHours.parse(
        {"timezone": "Europe/Paris", "days": "sun", "start": "01:00", "end": "05:00"}
    )
    closing = sunday.replace(hour=5)
    assert elapsed(sunday, sunday.replace(hour=6), nights) == minutes(real_minutes)
    assert due_at(sunday, real_minutes, nights) == closing
    assert due_at(sunday, real_minutes + 1, nights) == next_sunday


@pytest.mark.parametrize(
    ("start", "sla", "due"),
    [
        pytest.param(paris(2025, 6, 10, 2, 0), 60, paris(2025, 6, 10, 3, 0), id="in-mondays-shift"),
        pytest.param(paris(2025, 6, 10, 5, 30), 60, paris(2025, 6, 10, 22, 30), id="across-a-day"),
        pytest.param(paris(2025, 6, 14, 5, 0), 120, paris(2025, 6, 16, 23, 0), id="fridays-shift"),
        pytest.param(paris(2025, 6, 15, 23, 0), 30, paris(2025, 6, 16, 22, 30), id="sunday-off"),
    ],
)
def test_an_overnight_slot_built_directly_runs_into_the_next_day(
    start: datetime, sla: float, due: datetime
) -> None:
    """`WorkingHours.parse` rejects an end before the start; the clock still counts one right."""
    with pytest.raises(ValueError, match="start must be before end"):
        WorkingHours.parse({"timezone": "Europe/Paris", "start": "22:00", "end": "06:00"})
    nights = WorkingHours(PARIS_TZ, frozenset(range(5)), time(22, 0), time(6, 0))
    assert due_at(start, sla, nights) == due
    assert elapsed(start, due, nights) == minutes(sla)


@pytest.mark.parametrize(
    "start",
    [
        paris(2025, 6, 13, 16, 50),
        paris(2025, 6, 14, 3, 0),
        paris(2025, 3, 28, 12, 34),
        new_york(2025, 11, 1, 12, 0),
    ],
)
@pytest.mark.parametrize("sla", [0.5, 7.25, 30, 480, 2000])
def test_elapsed_at_the_due_instant_is_the_sla(start: datetime, sla: float) -> None:
    for hours in (PARIS, NEW_YORK, None):
        assert elapsed(start, due_at(start, sla, hours), hours) == minutes(sla)


def test_without_working_hours_the_clock_is_wall_clock_time() -> None:
    start = paris(2025, 3, 29, 16, 50)  # the night Paris springs forward
    assert due_at(start, 30) == paris(2025, 3, 29, 17, 20)
    assert due_at(start, 24 * 60) == utc(2025, 3, 30, 15, 50) == paris(2025, 3, 30, 17, 50)
    assert elapsed(start, paris(2025, 3, 30, 17, 50)) == timedelta(days=1)
    assert elapsed(start, start - minutes(5)) == timedelta(0)
    assert due_at(start, 30, fraction=0.5) == paris(2025, 3, 29, 17, 5)


def test_answers_are_in_utc() -> None:
    due = due_at(paris(2025, 6, 13, 16, 50), 30, PARIS)
    assert due.tzinfo is UTC and due == utc(2025, 6, 16, 7, 20)
    assert due_at(new_york(2025, 6, 13, 16, 50), 30).tzinfo is UTC


def test_fractional_minutes_are_kept_to_the_microsecond() -> None:
    assert due_at(paris(2025, 6, 10, 16, 59), 1.5, PARIS) == paris(2025, 6, 11, 9, 0, 30)


@pytest.mark.parametrize(
    ("sla", "fraction"), [(-1, 1.0), (30, -0.5), (float("nan"), 1.0), (float("inf"), 1.0)]
)
def test_a_negative_or_non_finite_sla_is_refused(sla: float, fraction: float) -> None:
    with pytest.raises(ValueError, match="finite and not negative"):
        due_at(paris(2025, 6, 10, 10, 0), sla, PARIS, fraction=fraction)


def test_a_naive_datetime_is_refused() -> None:
    naive = datetime(2025, 6, 10, 10, 0)
    with pytest.raises(ValueError, match="no time zone"):
        due_at(naive, 30, PARIS)
    with pytest.raises(ValueError, match="no time zone"):
        elapsed(paris(2025, 6, 10, 10, 0), naive, PARIS)


def test_hours_without_a_working_day_are_refused() -> None:
    never = WorkingHours(PARIS_TZ, frozenset(), time(9, 0), time(17, 0))
    with pytest.raises(ValueError, match="without a working day"):
        due_at(paris(2025, 6, 10, 10, 0), 30, never)
