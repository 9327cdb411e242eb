"""The Decisions panel: the latest picks from the decision stream, newest first.

The pick's Lua call adds one entry per fresh pick to `rotation:decisions` (kept to the last
10,000): reply, winner (empty when nobody was eligible), rule, candidates `[[id, weight], ...]`,
excluded `{id: reason}`, roster hash, sticky account hash, attempt and the time in ms. The
panel reads only the newest with XREVRANGE ... COUNT. With an SDR filter it keeps the decisions
that SDR took part in, each with its `role` (won, candidate, or excluded with the reason: why
an SDR got nothing), reading back a page at a time (doubling up to `PAGE`) and never more than
`SCAN_LIMIT` entries, so a filter for an SDR who is never mentioned costs one bounded read of the
stream, not more.
"""

from __future__ import annotations

import json
from typing import Any, cast

from worker.console.reader import Reader
from worker.keys import text

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
PAGE = 500
SCAN_LIMIT = 10_000


def _json(raw: str, empty: Any) -> Any:
    try:
        return json.loads(raw) if raw else empty
    except ValueError:
        return empty


def decision(entry_id: bytes | str, fields: dict[Any, Any]) -> dict[str, Any]:
    """One stream entry as JSON; an unreadable field reads as empty, never as an error."""
    doc = {text(k): text(v) for k, v in fields.items()}
    candidates = _json(doc.get("candidates", ""), [])
    excluded = _json(doc.get("excluded", ""), {})
    at = doc.get("at", "")
    attempt = doc.get("attempt", "1")
    return {
        "id": text(entry_id),
        "at": int(at) / 1000 if at.isdigit() else None,
        "reply": doc.get("reply", ""),
        "winner": doc.get("winner") or None,
        "rule": doc.get("rule", ""),
        "candidates": candidates if isinstance(candidates, list) else [],
        "excluded": excluded if isinstance(excluded, dict) else {},
        "attempt": int(attempt) if attempt.isdigit() else 1,
        "roster": doc.get("roster") or None,
        "account": doc.get("account") or None,
    }


def role(item: dict[str, Any], sdr: str) -> str | None:
    """What `sdr` was in this decision: `won`, `candidate`, `excluded:<reason>`, or None."""
    if item["winner"] == sdr:
        return "won"
    if sdr in item["excluded"]:
        return f"excluded:{item['excluded'][sdr]}"
    if any(isinstance(c, list) and c and c[0] == sdr for c in item["candidates"]):
        return "candidate"
    return None


def decisions_panel(
    reader: Reader, sdr: str | None = None, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    limit = max(1, min(MAX_LIMIT, limit))
    stream = reader.keys.decisions
    found: list[dict[str, Any]] = []
    scanned, top, size = 0, "+", limit
    while len(found) < limit and scanned < SCAN_LIMIT:
        # filtered: pages double from `limit` (an SDR in most decisions needs one) to PAGE
        count = min(size, PAGE, SCAN_LIMIT - scanned)
        size *= 2
        # after the first page, continue below the last id read ("(" excludes it)
        page = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            reader.client.xrevrange(stream, max=top, min="-", count=count),
        )
        if not page:
            break
        scanned += len(page)
        for entry_id, fields in page:
            item = decision(entry_id, fields)
            if sdr is None:
                found.append(item)
            elif (part := role(item, sdr)) is not None:
                found.append({**item, "role": part})
        top = "(" + text(page[-1][0])
        if sdr is None or len(page) < count:
            break
    return {
        "sdr": sdr,
        "limit": limit,
        "scanned": scanned,
        "length": int(reader.client.xlen(stream)),
        "decisions": found[:limit],
    }
