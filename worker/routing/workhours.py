"""Working hours per SDR, in the SDR's own time zone; off unless configured.

`WORKING_HOURS` (a JSON object) maps an SDR id, or `default`, to
`{"timezone": "Europe/Paris", "days": "mon-fri", "start": "09:00", "end": "17:30"}`.
The roster file (ROSTER_FILE) may set the same per SDR and wins over the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(spec: str | list[str] | list[int]) -> frozenset[int]:
    """`mon-fri`, `mon,wed,fri`, or a list of names or ISO weekday numbers (1 = Monday)."""
    if isinstance(spec, list):
        days = set()
        for day in spec:
            if isinstance(day, int):
                if not 1 <= day <= 7:
                    raise ValueError(f"day number {day} is not 1 (Monday) to 7 (Sunday)")
                days.add(day - 1)
            else:
                days.add(DAY_NAMES.index(str(day).lower()[:3]))
        return frozenset(days)
    days = set()
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            first, last = (DAY_NAMES.index(p[:3]) for p in part.split("-", 1))
            span = range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
            days.update(span)
        elif part:
            days.add(DAY_NAMES.index(part[:3]))
    return frozenset(days)


def _clock(value: str) -> time:
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes or 0))


@dataclass(frozen=True)
class WorkingHours:
    timezone: ZoneInfo
    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> WorkingHours:
        """From `{"timezone", "days", "start", "end"}`; ValueError names the bad field."""
        try:
            zone = ZoneInfo(str(spec.get("timezone", "UTC")))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {spec.get('timezone')!r} is not a known time zone"
            ) from None
        try:
            days = parse_days(spec.get("days", "mon-fri"))
        except (ValueError, IndexError):
            raise ValueError(f"days {spec.get('days')!r} is not like mon-fri") from None
        try:
            start, end = (
                _clock(str(spec.get("start", "09:00"))),
                _clock(str(spec.get("end", "17:00"))),
            )
        except ValueError:
            raise ValueError("start and end must be HH:MM") from None
        if not days:
            raise ValueError("days is empty")
        if start >= end:
            raise ValueError("start must be before end")
        return cls(zone, days, start, end)

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.timezone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_start(self, moment: datetime) -> datetime:
        """The start of the next working slot at or after `moment`, in UTC."""
        local = moment.astimezone(self.timezone)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            if day.weekday() not in self.days:
                continue
            start = datetime.combine(day, self.start, tzinfo=self.timezone)
            if start >= local:
                return start.astimezone(UTC)
        raise ValueError("no working day in the week")  # unreachable with non-empty days


def hours_from_settings(raw: dict[str, Any]) -> dict[str, WorkingHours]:
    """Parse the WORKING_HOURS object: SDR id (or `default`) to WorkingHours."""
    return {sdr: WorkingHours.parse(spec) for sdr, spec in raw.items()}
