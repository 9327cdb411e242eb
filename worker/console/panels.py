"""The console's panels by name: the functions behind `/api/<name>`, the page and the CLI.

Each panel is a plain synchronous function of a `Reader` (worker/console/reader.py) that only
reads Redis and returns JSON-ready data. `read_panel` runs one, `read_all` the page's seven.
Query parameters are parsed here, once, for the API and the page alike: `sdr` (the decisions
filter) and `limit` (rows per list, 1 to 500, default 50).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.console.decisions_panel import decisions_panel
from worker.console.followups_panel import followups_panel
from worker.console.health_panel import health_panel
from worker.console.intake_panel import intake_panel
from worker.console.reader import Reader
from worker.console.rotation_panel import rotation_panel
from worker.console.sla_panel import sla_panel
from worker.console.stuck_panel import stuck_panel

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_SDR_LENGTH = 200


@dataclass(frozen=True)
class Query:
    sdr: str | None = None
    limit: int = DEFAULT_LIMIT


def query_of(params: Mapping[str, str]) -> Query:
    """The panels' parameters from a query string; anything unreadable takes the default."""
    sdr = (params.get("sdr") or "").strip()[:MAX_SDR_LENGTH] or None
    raw = (params.get("limit") or "").strip()
    limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else DEFAULT_LIMIT
    return Query(sdr, max(1, min(MAX_LIMIT, limit)))


PANELS: dict[str, Callable[[Reader, Query], dict[str, Any]]] = {
    "rotation": lambda reader, _: rotation_panel(reader),
    "decisions": lambda reader, q: decisions_panel(reader, q.sdr, q.limit),
    "stuck": lambda reader, q: stuck_panel(reader, q.limit),
    "followups": lambda reader, _: followups_panel(reader),
    "health": lambda reader, _: health_panel(reader),
    "sla": lambda reader, q: sla_panel(reader, q.limit),
    "intake": lambda reader, _: intake_panel(reader),
}


def read_panel(reader: Reader, name: str, query: Query) -> dict[str, Any]:
    return PANELS[name](reader, query)


def read_all(reader: Reader, query: Query) -> dict[str, dict[str, Any]]:
    """Every panel, in the page's order."""
    return {name: panel(reader, query) for name, panel in PANELS.items()}
