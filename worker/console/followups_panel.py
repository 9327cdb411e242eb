"""The Follow-ups panel: today's follow-up decisions per SDR (UTC day).

Every follow-up the poll claims at its due time is routed once (worker/followups/poll.py), and
each decision is counted per SDR and day (worker/console/counters.py): routed (notified),
skipped (the thread is over), rescheduled (outside working hours), already closed (done in
Leadterra meanwhile) and completed (its draft was sent in one click: docs/drafts.md). Their
sum, `due`, is the follow-ups that came due and were handled today; `-` stands for follow-ups
that name no SDR.
"""

from __future__ import annotations

from typing import Any

from worker.console.counters import FOLLOWUPS, day_of, read_days
from worker.console.reader import Reader

DECISIONS = ("routed", "skipped", "rescheduled", "already_closed", "completed")


def _per_sdr(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """`{decision}:{sdr}` counts as {sdr: {decision: n, ..., "due": sum}}."""
    out: dict[str, dict[str, int]] = {}
    for field, n in counts.items():
        decision, _, sdr = field.partition(":")
        row = out.setdefault(sdr, dict.fromkeys(DECISIONS, 0))
        row[decision] = row.get(decision, 0) + n
    for row in out.values():
        row["due"] = sum(row[d] for d in DECISIONS)
    return out


def followups_panel(reader: Reader) -> dict[str, Any]:
    day = day_of(reader.now())
    per_sdr = _per_sdr(read_days(reader.client, reader.keys, FOLLOWUPS, [day])[day])
    totals = {k: sum(row[k] for row in per_sdr.values()) for k in ("due", *DECISIONS)}
    rows = [{"sdr": sdr, **per_sdr[sdr]} for sdr in sorted(per_sdr)]
    return {"day": day, "sdrs": rows, "totals": totals}
