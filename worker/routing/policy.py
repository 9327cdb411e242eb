"""The routing policy in force for one pick, from the roster file and the settings.

The roster is re-read when its file changes (checked at most every `RELOAD_CHECK_SECONDS`); a
version that fails validation is logged (`roster.invalid`) and the last good one stays. With
no roster, no sticky accounts and no SDR keys, the policy is empty: plain round-robin.

`HoursBook` answers whose working hours are what (the roster's, else WORKING_HOURS'), for the
worker (follow-ups, the SLA clock) and for /metrics (`leadrouter_sdrs_at_work`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from config.settings import ConfigError, Settings
from worker.errors import RosterError
from worker.keys import Keys
from worker.logs import get_logger
from worker.routing.roster import EMPTY, Roster, load_roster
from worker.routing.rotation import Policy, account_hash, account_of
from worker.routing.workhours import WorkingHours, hours_from_settings

log = get_logger("leadrouter.policy")
RELOAD_CHECK_SECONDS = 2.0


class RosterSource:
    """The roster file, loaded at start (a bad file raises RosterError, a ConfigError) and
    hot-reloaded."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime: float | None = None
        self.roster = EMPTY
        if path is not None:
            self.roster = load_roster(path)
            self._mtime = self._stat()

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime if self.path else None
        except OSError:
            return None

    def current(self) -> Roster:
        """The roster in force, reloading it when the file changed since the last look."""
        if self.path is None or time.monotonic() - self._checked < RELOAD_CHECK_SECONDS:
            return self.roster
        with self._lock:
            self._checked = time.monotonic()
            mtime = self._stat()
            if mtime is None or mtime == self._mtime:
                return self.roster
            self._mtime = mtime
            try:
                fresh = load_roster(self.path)
            except RosterError as bad:
                log.error(
                    "roster.invalid", error=str(bad), kept=self.roster.digest, outcome="ignored"
                )
                return self.roster
            log.info("roster.reloaded", previous=self.roster.digest, roster=fresh.digest)
            self.roster = fresh
            return fresh


class PolicySource:
    """Builds the `Policy` for a pick at a given moment, for a given prospect address."""

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self._settings = settings
        self._keys = keys
        self._free_mail = frozenset(d.lower() for d in settings.free_mail_domains)
        self.rosters = RosterSource(settings.roster_file)

    def working_hours(self, sdr_id: str | None) -> WorkingHours | None:
        """The roster's working hours for the SDR, if the roster sets any (`HoursBook` adds
        WORKING_HOURS)."""
        roster = self.rosters.current()
        if roster.empty:
            return None
        return roster.for_sdr(sdr_id).hours if sdr_id else roster.default.hours

    def policy(self, now: datetime, email: str | None) -> Policy:
        roster = self.rosters.current()
        account = account_of(email, self._settings.sticky_by, self._free_mail)
        sticky_key = self._keys.sticky(account_hash(account)) if account else None
        weights: dict[str, int] = {}
        off: dict[str, str] = {}
        caps: dict[str, tuple[int, str]] = {}
        for sdr_id, entry in roster.entries.items():
            if entry.weight != 1:
                weights[sdr_id] = entry.weight
            today = entry.today(now)
            if entry.paused:
                off[sdr_id] = "paused"
            elif entry.away_on(today):
                off[sdr_id] = "away"
            if entry.daily_cap is not None:
                caps[sdr_id] = (entry.daily_cap, self._keys.daily_count(sdr_id, today.isoformat()))
        return Policy(
            weights=weights,
            off=off,
            caps=caps,
            sticky_key=sticky_key,
            sticky_ttl=self._settings.sticky_days * 86400,
            account_hash=account_hash(account) if account else "",
            use_health=bool(self._settings.leadterra_sdr_api_keys),
            roster_hash=roster.digest,
        )


class HoursBook:
    """Each SDR's working hours: the roster's, else WORKING_HOURS' own, else its `default`;
    None when neither sets any (the SDR counts as always at work)."""

    def __init__(self, rosters: RosterSource, hours: dict[str, WorkingHours]) -> None:
        self.rosters = rosters
        self._hours = hours

    @classmethod
    def parse(cls, rosters: RosterSource, raw: dict[str, Any]) -> HoursBook:
        """From the WORKING_HOURS object; a bad one raises ConfigError naming the setting."""
        try:
            return cls(rosters, hours_from_settings(raw))
        except ValueError as bad:
            raise ConfigError(f"WORKING_HOURS: {bad}") from None

    def for_sdr(self, sdr_id: str | None) -> WorkingHours | None:
        roster = self.rosters.current()
        listed = None
        if not roster.empty:
            listed = roster.for_sdr(sdr_id).hours if sdr_id else roster.default.hours
        return listed or self._hours.get(sdr_id or "") or self._hours.get("default")

    def named(self) -> set[str]:
        """The SDR ids the roster or WORKING_HOURS names."""
        return set(self.rosters.current().entries) | (set(self._hours) - {"default"})

    def at_work(self, sdr_ids: Iterable[str], now: datetime) -> int:
        """How many of `sdr_ids` are inside their working hours at `now`."""
        count = 0
        for sdr_id in sdr_ids:
            hours = self.for_sdr(sdr_id)
            count += hours is None or hours.contains(now)
        return count
