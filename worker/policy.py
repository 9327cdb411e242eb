"""The routing policy in force for one pick: plain round-robin until a roster says more."""

from __future__ import annotations

from datetime import datetime

from config.settings import Settings
from worker.keys import Keys
from worker.rotation import Policy


class PolicySource:
    """Builds the `Policy` for a pick at a given moment."""

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self._settings = settings
        self._keys = keys

    def policy(self, now: datetime, email: str | None) -> Policy:
        return Policy()
