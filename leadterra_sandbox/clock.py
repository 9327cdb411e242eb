"""The sandbox clock and Leadterra's two timestamp forms.

Sandbox time is real time plus an offset that the control API can set or advance, so that
"due in two days" can be reached in a test. Times are kept as unix floats; they become ISO 8601
strings only on the way out (milliseconds on SDR pages, seconds on reply and webhook pages).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Real time shifted by `offset` seconds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def set_now(self, moment: float) -> None:
        self.offset = moment - time.time()


def iso_ms(ts: float) -> str:
    """`2026-06-29T14:00:00.000Z`: the SDR pages' form."""
    whole, millis = divmod(round(ts * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def iso_s(ts: float) -> str:
    """`2025-06-11T09:14:32Z`: the reply and webhook pages' form."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts // 1)))


def parse_iso(value: object) -> float | None:
    """A unix time from an ISO 8601 string (with or without fraction, `Z` or offset), or None.

    A string without a zone is read as UTC.
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
