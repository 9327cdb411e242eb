"""The Rotation panel: per SDR, assignments today and in the last 7 days against the weighted
fair share, eligibility now and why not, daily cap use, and where the rotation stands.

Eligibility is judged as the pick's Lua call judges it (worker/routing/lua/rotation.lua), in its
order: not in the SDR list, `not_connected`, `paused` or `away` (the roster), `mailbox:<state>`
(when SDR keys are set), `cap`, `weight_zero`. The SDR list is the rotation's cache of
`GET /v1/sdrs`, or, once that expired, the last answer kept beside it (`sdr_list.source`).

The fair share splits the period's assignments by weight among the SDRs that take part in the
rotation now (in the SDR list with Gmail connected and a weight above zero; everyone known when
no list is). Pauses, away days and caps during the period are not replayed: a paused SDR's
share is theirs still, so a gap below it says "was out", not "was skipped".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from worker.console.counters import ASSIGNED, last_days, read_days
from worker.console.reader import Reader
from worker.routing.rotation import Policy

WEEK = 7


def _sdr_list(reader: Reader, now: float) -> tuple[dict[str, bool] | None, str | None, float]:
    """The SDR list ({id: connected}), where it came from, and its age in seconds."""
    cached = reader.rotation().cached_roster()
    if cached is not None:
        return dict(cached), "cache", 0.0
    raw = reader.client.get(reader.keys.sdr_last_known)
    if not raw:
        return None, None, 0.0
    doc = json.loads(raw)
    return {str(i): bool(c) for i, c in doc["sdrs"]}, "last_known", max(0.0, now - doc["at"])


def _why_not(
    sdr: str,
    listed: dict[str, bool] | None,
    policy: Policy,
    health: dict[str, str],
    cap: tuple[int, int] | None,
) -> str | None:
    if listed is not None and sdr not in listed:
        return "not_in_sdr_list"
    if listed is not None and not listed[sdr]:
        return "not_connected"
    if sdr in policy.off:
        return policy.off[sdr]
    if policy.use_health and health.get(sdr, "active") != "active":
        return f"mailbox:{health[sdr]}"
    if cap is not None and cap[1] >= cap[0]:
        return "cap"
    if policy.weights.get(sdr, 1) <= 0:
        return "weight_zero"
    return None


def _caps(reader: Reader, policy: Policy) -> dict[str, tuple[int, int]]:
    """(cap, used today in the SDR's zone) for each SDR with a daily cap."""
    ids = sorted(policy.caps)
    used = reader.client.mget([policy.caps[i][1] for i in ids]) if ids else []
    return {i: (policy.caps[i][0], int(u or 0)) for i, u in zip(ids, used, strict=True)}


def _fair(counts: dict[str, int], weights: dict[str, int], sharing: set[str]) -> dict[str, float]:
    total, weight_sum = sum(counts.values()), sum(weights[s] for s in sharing)
    if not weight_sum:
        return {}
    return {s: round(total * weights[s] / weight_sum, 2) for s in sharing}


def _positions(state: dict[str, dict[str, float]]) -> dict[str, int]:
    """1 for the SDR the rotation favours next (the highest credit), and so on."""
    ranked = sorted((s for s in state if "credit" in state[s]), key=lambda s: -state[s]["credit"])
    return {s: i + 1 for i, s in enumerate(ranked)}


def _assigned(reader: Reader, days: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Assignments per SDR: the last day's, and the sum over all `days`."""
    found = read_days(reader.client, reader.keys, ASSIGNED, days)
    per_day = [found[day] for day in days]
    week: dict[str, int] = {}
    for counts in per_day:
        for sdr, n in counts.items():
            week[sdr] = week.get(sdr, 0) + n
    return per_day[-1], week


def rotation_panel(reader: Reader) -> dict[str, Any]:
    now = reader.now()
    rotation = reader.rotation()
    policy = reader.policies.policy(datetime.fromtimestamp(now, UTC), None)
    listed, source, age = _sdr_list(reader, now)
    state, health, caps = rotation.state(), rotation.mailbox_health(), _caps(reader, policy)
    days = last_days(now, WEEK)
    today, week = _assigned(reader, days)
    roster = reader.policies.rosters.current()
    ids = sorted({*(listed or {}), *roster.entries, *state, *week, *health})
    weights = {s: policy.weights.get(s, 1) for s in ids}
    shares = {s for s in ids if weights[s] > 0 and (listed is None or listed.get(s, False))}
    fair_today, fair_week = _fair(today, weights, shares), _fair(week, weights, shares)
    positions = _positions(state)
    rows = []
    for sdr in ids:
        cap = caps.get(sdr)
        why = _why_not(sdr, listed, policy, health, cap)
        rows.append(
            {
                "id": sdr,
                "connected": None if listed is None else listed.get(sdr),
                "weight": weights[sdr],
                # unknown while no SDR list is known and nothing else rules the SDR out
                "eligible": None if listed is None and why is None else why is None,
                "why_not": why,
                "mailbox": health.get(sdr),
                "cap": cap[0] if cap else None,
                "cap_used": cap[1] if cap else None,
                "today": today.get(sdr, 0),
                "week": week.get(sdr, 0),
                "fair_today": fair_today.get(sdr),  # None: outside the rotation now
                "fair_week": fair_week.get(sdr),
                "picks": int(state.get(sdr, {}).get("count", 0)),
                "credit": state.get(sdr, {}).get("credit"),
                "position": positions.get(sdr),
            }
        )
    return {
        "at": now,
        "day": days[-1],
        "days": days,
        "sdr_list": {"source": source, "age_s": round(age, 1)},
        "roster": roster.digest or None,
        "roster_error": reader.roster_error,
        "totals": {"today": sum(today.values()), "week": sum(week.values())},
        "sdrs": rows,
    }
