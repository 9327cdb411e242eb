"""Backtest a roster: replay the recorded decisions' replies through it, touching nothing live.

Every pick is recorded in a capped Redis stream (worker/routing/lua/rotation.lua). `simulate` takes
those decisions in order and re-decides each under a new roster: the SDRs that were out for
reasons the roster cannot change (Gmail not connected, an unhealthy mailbox) stay out; paused,
away, caps and weights come from the new roster at the decision's time, in each SDR's zone.
`Swrr` is the rotation's algorithm in Python, step for step the same as the Lua
(tests/test_simulate.py checks that they agree pick for pick).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from worker.keys import Keys, text
from worker.routing.roster import Roster

FIXED_REASONS = ("not_connected", "mailbox:")  # out whatever the roster says


class Swrr:
    """Smooth weighted round-robin with the rotation's rules for joining and leaving."""

    def __init__(self) -> None:
        self.credit: dict[str, float] = {}

    def pick(self, candidates: list[tuple[str, int]]) -> str:
        """`candidates` in the stable order (by id), with weights > 0."""
        known = [self.credit[c] for c, _ in candidates if c in self.credit]
        average = sum(known) / len(known) if known else 0.0
        credits = {c: self.credit.get(c, average) for c, _ in candidates}
        mean = sum(credits.values()) / len(credits)
        total = sum(w for _, w in candidates)
        best: str | None = None
        for sdr, weight in candidates:
            credits[sdr] = credits[sdr] - mean + weight
            if best is None or credits[sdr] > credits[best] + 1e-9:
                best = sdr
        assert best is not None
        credits[best] -= total
        self.credit = {sdr: round(value, 9) for sdr, value in credits.items()}
        return best


@dataclass(frozen=True)
class Decision:
    reply: str
    winner: str
    rule: str
    candidates: list[tuple[str, int]]
    excluded: dict[str, str]
    account: str
    at: datetime
    roster: str

    @property
    def pool(self) -> list[str]:
        return sorted({c for c, _ in self.candidates} | set(self.excluded))


def read_decisions(client: redis.Redis, keys: Keys, limit: int = 100_000) -> list[Decision]:
    """The latest `limit` recorded decisions, oldest first."""
    out = []
    entries: list[Any] = list(reversed(client.xrevrange(keys.decisions, count=limit) or []))
    for _, raw in entries:
        fields = {text(k): text(v) for k, v in (raw or {}).items()}
        candidates = json.loads(fields.get("candidates") or "[]") or []
        excluded = json.loads(fields.get("excluded") or "{}") or {}
        out.append(
            Decision(
                reply=fields["reply"],
                winner=fields.get("winner", ""),
                rule=fields.get("rule", ""),
                candidates=[(str(c), int(w)) for c, w in candidates],
                excluded=dict(excluded) if isinstance(excluded, dict) else {},
                account=fields.get("account", ""),
                at=datetime.fromtimestamp(int(fields.get("at", "0")) / 1000, UTC),
                roster=fields.get("roster", ""),
            )
        )
    return out


@dataclass
class Result:
    old: Counter[str] = field(default_factory=Counter)
    new: Counter[str] = field(default_factory=Counter)
    rotated: Counter[str] = field(default_factory=Counter)  # new picks made by the rotation
    ideal: dict[str, float] = field(default_factory=dict)  # the rotation's weighted shares
    held: int = 0
    sticky: int = 0

    def worst_deviation(self) -> tuple[str, float]:
        """The SDR whose rotation picks are furthest from its weighted share, and by how many."""
        gaps = {s: self.rotated.get(s, 0) - v for s, v in self.ideal.items()}
        if not gaps:
            return "", 0.0
        worst = max(gaps, key=lambda s: abs(gaps[s]))
        return worst, gaps[worst]

    def rows(self) -> list[dict[str, Any]]:
        total_old, total_new = sum(self.old.values()) or 1, sum(self.new.values()) or 1
        sdrs = sorted(set(self.old) | set(self.new) | set(self.ideal))
        return [
            {
                "sdr": s,
                "old": self.old.get(s, 0),
                "old_share": round(100 * self.old.get(s, 0) / total_old, 1),
                "new": self.new.get(s, 0),
                "new_share": round(100 * self.new.get(s, 0) / total_new, 1),
                "ideal": round(self.ideal.get(s, 0.0), 1),
            }
            for s in sdrs
        ]


def simulate(decisions: list[Decision], roster: Roster) -> Result:
    """Re-decide each recorded reply under `roster`."""
    result = Result()
    swrr = Swrr()
    owners: dict[str, str] = {}
    used: Counter[tuple[str, str]] = Counter()  # (SDR, its local day) -> picks
    for decision in decisions:
        if decision.winner:
            result.old[decision.winner] += 1
        eligible: list[tuple[str, int]] = []
        for sdr in decision.pool:
            reason = decision.excluded.get(sdr, "")
            if reason.startswith(FIXED_REASONS):
                continue
            entry = roster.for_sdr(sdr)
            day = entry.today(decision.at)
            capped = entry.daily_cap is not None and used[(sdr, day.isoformat())] >= entry.daily_cap
            if entry.paused or entry.away_on(day) or capped or entry.weight <= 0:
                continue
            eligible.append((sdr, entry.weight))
        if not eligible:
            result.held += 1
            continue
        owner = owners.get(decision.account) if decision.account else None
        if owner is not None and owner in dict(eligible):
            winner = owner
            result.sticky += 1
        else:
            winner = swrr.pick(eligible)
            result.rotated[winner] += 1
            total = sum(w for _, w in eligible)
            for sdr, weight in eligible:
                result.ideal[sdr] = result.ideal.get(sdr, 0.0) + weight / total
        if decision.account:
            owners[decision.account] = winner
        result.new[winner] += 1
        used[(winner, roster.for_sdr(winner).today(decision.at).isoformat())] += 1
    return result
