"""The SLA clock: how much of an SLA has run since a handoff, and when it (or a share of it, for
the reminder) is reached.

    due = due_at(handoff_at, 30, hours)                 # Fri 16:50 Paris -> Mon 09:20 Paris
    nudge = due_at(handoff_at, 30, hours, fraction=0.5)  # -> Mon 09:05 Paris
    elapsed(handoff_at, now, hours)                      # working time so far, a timedelta

With `hours` (a `WorkingHours` from worker/routing/workhours.py) only time inside the SDR's
working slots counts: nights, days off and weekends do not, and a handoff made outside hours
starts the clock at the next opening (`due_at(start, 0, hours)` is that instant). A slot is the
SDR's local start and end on a working day, each turned into a UTC instant on its own day, so a
DST change lengthens or shortens that day's slot in real time and never moves it off the local
hours. A local time that a DST change skips or repeats is read as zoneinfo does with `fold=0`
(the offset in force before the change). With `hours=None` the clock is wall-clock time.

A slot whose end is not after its start runs overnight into the next day (22:00-06:00 on a
Monday ends on Tuesday at 06:00, and counts as Monday's). `WorkingHours.parse` rejects such
specs today ("start must be before end"), so hours from WORKING_HOURS or the roster always lie
within one local day; the clock handles overnight slots for a `WorkingHours` built directly.

Times must be aware datetimes; answers are in UTC. Pure functions: no Redis, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

from worker.routing.workhours import WorkingHours

__all__ = ["due_at", "elapsed"]

ONE_DAY = timedelta(days=1)


def elapsed(start: datetime, now: datetime, hours: WorkingHours | None = None) -> timedelta:
    """The working time between the handoff at `start` and `now` (zero before `start`)."""
    start, now = _utc(start), _utc(now)
    if now <= start:
        return timedelta(0)
    if hours is None:
        return now - start
    total = timedelta(0)
    for opens, closes in _slots(hours, start):
        if opens >= now:
            break
        total += min(closes, now) - opens
    return total


def due_at(
    start: datetime,
    minutes: float,
    hours: WorkingHours | None = None,
    *,
    fraction: float = 1.0,
) -> datetime:
    """The instant `fraction` of an SLA of `minutes` working minutes, counted from the handoff
    at `start`, is reached. Exactly at a closing time when the budget runs out there."""
    start = _utc(start)
    if not (math.isfinite(minutes) and math.isfinite(fraction)) or minutes < 0 or fraction < 0:
        raise ValueError("minutes and fraction must be finite and not negative")
    left = timedelta(minutes=minutes * fraction)
    if hours is None:
        return start + left
    slots = _slots(hours, start)
    while True:
        opens, closes = next(slots)
        if left <= closes - opens:
            return opens + left
        left -= closes - opens


def _slots(hours: WorkingHours, after: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The working slots, in UTC and in order, that end after `after`; one that is open at
    `after` is cut to begin there."""
    if not hours.days:
        raise ValueError("working hours without a working day")
    overnight = hours.end <= hours.start
    # Start the day before: an overnight slot opened yesterday may still be running.
    first = after.astimezone(hours.timezone).date() - ONE_DAY
    for offset in count():
        day = first + offset * ONE_DAY
        if day.weekday() not in hours.days:
            continue
        end_day = day + ONE_DAY if overnight else day
        opens = datetime.combine(day, hours.start, tzinfo=hours.timezone).astimezone(UTC)
        closes = datetime.combine(end_day, hours.end, tzinfo=hours.timezone).astimezone(UTC)
        opens = max(opens, after)
        if closes > opens:
            yield opens, closes


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC, so that subtraction is real time (same-zone datetimes subtract as wall
    clocks); ValueError for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)
