"""The Stuck work panel: replies held because nobody can take them, and dead letters.

Held replies (worker/jobs/holds.py) come oldest first, with their age and reason. Dead letters
(worker/jobs/deadletter.py) come oldest first too, with their task, error and attempts; their
arguments stay out (a reply's payload holds the prospect's address). `dead_letter_rows` is what
`leadrouter dlq list` prints, so the page and the command show the same entries.
"""

from __future__ import annotations

from typing import Any

from worker.console.reader import Reader
from worker.jobs.deadletter import DeadLetter

DEFAULT_LIMIT = 50


def dead_letter_row(entry: DeadLetter, now: float) -> dict[str, Any]:
    return {
        "id": entry.id,
        "task": entry.task.removeprefix("leadrouter."),
        "queue": entry.queue,
        "reply_id": entry.reply_id(),
        "error_type": entry.error_type,
        "error": entry.error,
        "attempts": entry.attempts,
        "at": entry.at,
        "age_s": round(max(0.0, now - entry.at), 1),
    }


def dead_letter_rows(reader: Reader, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The oldest `limit` dead letters (all of them without one), and how many there are."""
    store = reader.dead_letters()
    entries = store.list(limit)
    total = store.count() if limit is not None else len(entries)
    now = reader.now()
    return [dead_letter_row(e, now) for e in entries], total


def held_rows(reader: Reader) -> list[dict[str, Any]]:
    """Every held reply, the longest held first."""
    now = reader.now()
    rows = []
    for reply_id, entry in reader.holds().list().items():
        since = float(entry.get("since", now))
        rows.append(
            {
                "reply_id": reply_id,
                "since": since,
                "age_s": round(max(0.0, now - since), 1),
                "reason": str(entry.get("reason", "")),
                "checked": entry.get("checked"),
            }
        )
    return sorted(rows, key=lambda row: (row["since"], row["reply_id"]))


def stuck_panel(reader: Reader, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    limit = max(1, min(500, limit))
    held = held_rows(reader)
    letters, total = dead_letter_rows(reader, limit)
    return {
        "held": {
            "count": len(held),
            "oldest_age_s": held[0]["age_s"] if held else None,
            "replies": held[:limit],
        },
        "dead_letters": {"count": total, "entries": letters},
    }
