"""The roster file: routing policy as code (ROSTER_FILE, TOML).

    [defaults]                      # optional; every SDR inherits these
    timezone = "Europe/Paris"
    working_hours = { days = "mon-fri", start = "09:00", end = "17:30" }

    [sdr.sdr_1]
    weight = 3                      # share of the rotation (default 1; 0 takes nobody)
    daily_cap = 40                  # picks per day, counted in the SDR's time zone
    paused = false
    away = [ { start = 2026-12-20, end = 2026-12-31 } ]   # inclusive dates, SDR's zone
    timezone = "America/New_York"
    working_hours = { days = "mon-thu", start = "08:00", end = "16:00" }
    slack_user_id = "U024BE7LH"     # mentioned in SLA reminders in the team's Slack channel

An SDR not in the file gets the defaults and weight 1. A file that fails validation stops the
process at start with the line and field; later, while running, it is ignored with an error log
and the last good roster stays. No file: plain round-robin, exactly as without this module.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from worker.errors import RosterError as RosterError  # the CLI imports it from here
from worker.routing.workhours import WorkingHours
from worker.sla.notes import is_slack_user_id


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (KeyError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone") from None
    return value


class Away(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date
    end: date

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: date, info: Any) -> date:
        start = info.data.get("start")
        if start is not None and end < start:
            raise ValueError("end is before start")
        return end


class Hours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: str | list[str] | list[int] = "mon-fri"
    start: str = "09:00"
    end: str = "17:00"

    @model_validator(mode="after")
    def _valid(self) -> Hours:
        """Checked here, not after validation, so the error keeps its line and field."""
        WorkingHours.parse(self.model_dump())
        return self


class SdrEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight: int = Field(1, ge=0, le=1000)
    daily_cap: int | None = Field(None, ge=0)
    paused: bool = False
    away: list[Away] = Field(default_factory=list)
    timezone: str | None = None
    working_hours: Hours | None = None
    slack_user_id: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return value if value is None else _known_zone(value)

    @field_validator("slack_user_id")
    @classmethod
    def _slack_user(cls, value: str | None) -> str | None:
        """A Slack user id (the member id in the profile's menu), never free text: it becomes a
        mention. The message does not quote the value."""
        if value is not None and not is_slack_user_id(value):
            raise ValueError(
                "must be a Slack user id such as U024BE7LH: U or W, then 2 to 20 capital letters "
                "or digits"
            )
        return value


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    working_hours: Hours | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)


class RosterDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    sdr: dict[str, SdrEntry] = Field(default_factory=dict)


@dataclass(frozen=True)
class SdrPolicy:
    """One SDR's resolved settings."""

    weight: int = 1
    daily_cap: int | None = None
    paused: bool = False
    away: tuple[tuple[date, date], ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    hours: WorkingHours | None = None
    slack_user_id: str | None = None

    def today(self, now: datetime) -> date:
        return now.astimezone(self.timezone).date()

    def away_on(self, day: date) -> bool:
        return any(start <= day <= end for start, end in self.away)


@dataclass(frozen=True)
class Roster:
    """A validated roster: `for_sdr()` answers for every SDR id, listed or not."""

    entries: dict[str, SdrPolicy]
    default: SdrPolicy
    digest: str = ""

    def for_sdr(self, sdr_id: str) -> SdrPolicy:
        return self.entries.get(sdr_id, self.default)

    @property
    def empty(self) -> bool:
        return not self.entries and self.default == SdrPolicy()


EMPTY = Roster({}, SdrPolicy())


def _hours(spec: Hours | None, zone: str) -> WorkingHours | None:
    if spec is None:
        return None
    return WorkingHours.parse({"timezone": zone, **spec.model_dump()})


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line a validation error points at: the key inside its [sdr.ID] table."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    lines = text.splitlines()
    table = ".".join(parts[:2]) if parts[:1] == ["sdr"] else parts[0] if parts else ""
    key = (
        parts[2]
        if parts[:1] == ["sdr"] and len(parts) > 2
        else (parts[1] if len(parts) > 1 else None)
    )
    start = 0
    dotted = r"\s*\.\s*".join(re.escape(part) for part in table.split("."))
    header = re.compile(rf"^\s*\[\[?\s*{dotted}\s*[\].]")  # [table], [table.sub], [[table
    for number, line in enumerate(lines):
        if header.match(line):
            start = number
            break
    else:
        for number, line in enumerate(lines):  # an inline table, or a key at the top
            if table and re.match(rf"^\s*{re.escape(table.split('.')[-1])}\s*=", line):
                return number + 1
        return None
    if key is None:
        return start + 1
    for number in range(start + 1, len(lines)):
        if lines[number].lstrip().startswith("["):
            break
        if re.match(rf"^\s*{re.escape(key)}\s*=", lines[number]):
            return number + 1
    return start + 1


def parse_roster(text: str, source: str = "ROSTER_FILE") -> Roster:
    """Validate the TOML text; RosterError names the line and the field on failure."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as bad:
        raise RosterError(f"{source}: not valid TOML: {bad}") from None
    try:
        doc = RosterDoc.model_validate(raw)
        entries = {}
        default_hours = _hours(doc.defaults.working_hours, doc.defaults.timezone)
        default = SdrPolicy(timezone=ZoneInfo(doc.defaults.timezone), hours=default_hours)
        for sdr_id, entry in doc.sdr.items():
            zone = entry.timezone or doc.defaults.timezone
            hours = entry.working_hours or doc.defaults.working_hours
            entries[sdr_id] = SdrPolicy(
                weight=entry.weight,
                daily_cap=entry.daily_cap,
                paused=entry.paused,
                away=tuple((a.start, a.end) for a in entry.away),
                timezone=ZoneInfo(zone),
                hours=_hours(hours, zone),
                slack_user_id=entry.slack_user_id,
            )
    except ValidationError as bad:
        first = bad.errors()[0]
        loc = tuple(first.get("loc", ()))
        where = ".".join(str(p) for p in loc)
        line = _line_of(text, loc)
        at = f" (line {line})" if line else ""
        message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
        raise RosterError(f"{source}{at}: {where}: {message}") from None
    except ValueError as bad:  # working hours
        raise RosterError(f"{source}: working_hours: {bad}") from None
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Roster(entries, default, digest)


def load_roster(path: Path) -> Roster:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as bad:
        raise RosterError(f"ROSTER_FILE: cannot read {path}: {bad.strerror}") from None
    return parse_roster(text, f"ROSTER_FILE {path}")
