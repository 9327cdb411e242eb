"""`leadrouter handoffs list`: the handoff ledger (worker/sla/ledger.py), newest last."""

from __future__ import annotations

import time
from typing import Any

import click

from config.settings import settings_or_exit
from worker.cli.output import emit, redis_or_fail
from worker.keys import Keys
from worker.sla.ledger import OPEN, Handoff, Ledger


def _when(moment: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment)) if moment else None


def row(handoff: Handoff) -> dict[str, Any]:
    current = handoff.current
    return {
        "reply_id": handoff.reply_id,
        "sdr_id": current.sdr_id,
        "thread_id": current.thread_id,
        "attempt": current.attempt,
        "state": handoff.state,
        "handed_off_at": _when(current.at),
        "reminded_at": _when(current.reminded_at),
        "breached_at": _when(current.breached_at),
        "acted_at": _when(current.acted_at),
        "sdrs": [a.sdr_id for a in handoff.attempts],
        "reason": handoff.reason,
    }


@click.group()
def handoffs() -> None:
    """Handoffs: who has each reply, and what the SLA watch did about it."""


@handoffs.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only those the watch still watches.")
@click.option("--breached", is_flag=True, help="Only those that missed their SLA.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, help="The newest N (1000).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_handoffs(only_open: bool, breached: bool, limit: int, as_json: bool) -> None:
    """List the handoffs of the last DEDUPE_TTL_SECONDS, oldest first."""
    settings = settings_or_exit()
    ledger = Ledger(redis_or_fail(settings), Keys(settings.key_prefix), settings.dedupe_ttl_seconds)
    found = ledger.newest(limit)
    if only_open:
        found = [h for h in found if h.state == OPEN]
    if breached:
        found = [h for h in found if h.breached]
    rows = [row(h) for h in found]
    emit(
        rows if as_json else [{**r, "sdrs": " > ".join(r["sdrs"])} for r in rows],
        ["reply_id", "sdrs", "thread_id", "state", "handed_off_at", "breached_at", "acted_at"],
        as_json=as_json,
        title=f"{len(rows)} handoff(s)",
    )
