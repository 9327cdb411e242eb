"""The SLA panel: the handoffs the SLA watch watches, with their clock, and how SDRs did.

Open handoffs (`handoffs:open`, worker/sla/ledger.py) come oldest first with the SLA clock as
the watch reads it (worker/sla/clock.py: working minutes only when SLA_WORKING_HOURS_ONLY and
hours are set): minutes elapsed and left, reminded, breached. Outcomes come from the newest
`WINDOW` handoffs, recomputed at most every `WINDOW_SECONDS`: breaches, re-routes and
escalations, and per SDR their handoffs, how many they acted on, breached or lost to a re-route,
and the time to action (handoff to the SDR acting, wall-clock) at p50 and p90. The panel reads
the ledger's records as JSON (the fields of `Handoff` and `Attempt`, worker/sla/ledger.py) and
leaves the ledger as it is.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, cast

from worker.console.reader import Reader
from worker.keys import text
from worker.sla.clock import elapsed
from worker.sla.ledger import ESCALATED

DEFAULT_LIMIT = 50
WINDOW = 1000
WINDOW_SECONDS = 15.0


def _load(reader: Reader, index: str, newest: int | None = None) -> list[dict[str, Any]]:
    """The handoff records of an index, oldest first (one gone with its TTL is left out)."""
    start = -newest if newest else 0
    ids = [text(i) for i in cast(list[bytes], reader.client.zrange(index, start, -1))]
    if not ids:
        return []
    raws = reader.client.mget([reader.keys.handoff(i) for i in ids])
    return [json.loads(raw) for raw in raws if raw is not None]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q * len(ordered))) - 1)]


def _clock(reader: Reader, attempt: dict[str, Any], now: float) -> float:
    """Minutes of the SLA run so far, as the watch counts them."""
    sdr = attempt["sdr_id"]
    hours = reader.working_hours(sdr) if reader.settings.sla_working_hours_only else None
    start, until = (datetime.fromtimestamp(t, UTC) for t in (attempt["at"], now))
    return elapsed(start, until, hours).total_seconds() / 60


def _open_row(reader: Reader, handoff: dict[str, Any], now: float) -> dict[str, Any]:
    current = handoff["attempts"][-1]
    minutes = _clock(reader, current, now)
    return {
        "reply_id": handoff["reply_id"],
        "sdr_id": current["sdr_id"],
        "attempt": current["attempt"],
        "at": current["at"],
        "elapsed_minutes": round(minutes, 1),
        "left_minutes": round(reader.settings.sla_minutes - minutes, 1),
        "reminded": current.get("reminded_at") is not None,
        "breached": current.get("breached_at") is not None,
    }


def _per_sdr(handoffs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}
    for handoff in handoffs:
        attempts = handoff["attempts"]
        for n, attempt in enumerate(attempts):
            row = stats.setdefault(
                attempt["sdr_id"],
                {"handoffs": 0, "acted": 0, "breached": 0, "rerouted_away": 0, "tta": []},
            )
            row["handoffs"] += 1
            row["breached"] += attempt.get("breached_at") is not None
            row["rerouted_away"] += n < len(attempts) - 1
            if attempt.get("acted_at") is not None:
                row["acted"] += 1
                row["tta"].append(max(0.0, attempt["acted_at"] - attempt["at"]))
    rows = []
    for sdr in sorted(stats):
        row = stats[sdr]
        tta = row.pop("tta")
        p50, p90 = percentile(tta, 0.5), percentile(tta, 0.9)
        rows.append(
            {
                "sdr": sdr,
                **row,
                "tta_p50_s": None if p50 is None else round(p50, 1),
                "tta_p90_s": None if p90 is None else round(p90, 1),
            }
        )
    return rows


def _breached(handoff: dict[str, Any]) -> int:
    return sum(1 for a in handoff["attempts"] if a.get("breached_at") is not None)


def sla_panel(reader: Reader, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    limit = max(1, min(500, limit))
    settings, now = reader.settings, reader.now()
    watched = _load(reader, reader.keys.handoffs_open)
    window = reader.cached("sla.window", WINDOW_SECONDS, lambda: _window(reader))
    return {
        "enabled": settings.sla_minutes > 0,
        "sla_minutes": settings.sla_minutes,
        "action": settings.sla_action,
        "working_hours_only": settings.sla_working_hours_only,
        "open": {
            "count": len(watched),
            "breached": sum(1 for h in watched if h["attempts"][-1].get("breached_at")),
            "handoffs": [_open_row(reader, h, now) for h in watched[:limit]],
        },
        **window,
    }


def _window(reader: Reader) -> dict[str, Any]:
    """Outcomes over the newest `WINDOW` handoffs: the panel's costly part (a JSON record
    each), kept `WINDOW_SECONDS`."""
    recent = _load(reader, reader.keys.handoffs_all, WINDOW)
    return {
        "window": {
            "handoffs": len(recent),
            "since": min((h["attempts"][0]["at"] for h in recent), default=None),
            "breaches": sum(_breached(h) for h in recent),
            "reroutes": sum(len(h["attempts"]) - 1 for h in recent),
            "escalated": sum(1 for h in recent if h["state"] == ESCALATED),
        },
        "sdrs": _per_sdr(recent),
    }
