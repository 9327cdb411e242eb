"""The Intake panel: how assigned replies came, and where the reconcile sweep stands.

Assignments are counted per UTC day by source (worker/console/counters.py): `webhook`,
`reconcile` (a sweep found a reply no webhook brought) and `backfill`. In webhooks mode a rising
`recovered_share` (reconcile over webhook plus reconcile) means webhooks are failing; in polling
mode every reply is a reconcile find, and the share is 1 by design. The watermark is the newest
`receivedAt` (Leadterra's clock) of the last complete sweep (docs/reconcile.md); its age grows
by the quiet time between replies as well as by a stuck sweep, so the last complete sweep's age
comes beside it.
"""

from __future__ import annotations

from typing import Any

from worker.console.counters import SOURCE, last_days, read_days
from worker.console.reader import Reader

SOURCES = ("webhook", "reconcile", "backfill")


def _share(counts: dict[str, int]) -> float | None:
    both = counts.get("webhook", 0) + counts.get("reconcile", 0)
    return round(counts.get("reconcile", 0) / both, 3) if both else None


def _stamp(raw: bytes | str | None, now: float) -> dict[str, float | None]:
    at = float(raw) if raw else None
    return {"at": at, "age_s": None if at is None else round(max(0.0, now - at), 1)}


def intake_panel(reader: Reader) -> dict[str, Any]:
    now, keys = reader.now(), reader.keys
    days = last_days(now, 7)
    found = read_days(reader.client, keys, SOURCE, days)
    per_day = [{s: found[day].get(s, 0) for s in SOURCES} for day in days]
    week = {s: sum(c[s] for c in per_day) for s in SOURCES}
    today = per_day[-1]
    watermark, last_sweep, resume = reader.client.mget(
        [keys.reconcile_watermark, keys.reconcile_last_success, keys.reconcile_resume]
    )
    return {
        "mode": reader.settings.intake,
        "reconcile_seconds": reader.settings.reconcile_seconds,
        "today": {**today, "recovered_share": _share(today)},
        "week": {**week, "recovered_share": _share(week)},
        "days": [{"day": day, **c} for day, c in zip(days, per_day, strict=True)],
        "watermark": _stamp(watermark, now),
        "last_sweep": _stamp(last_sweep, now),
        "resume_pending": resume is not None,
    }
