"""Seeding threads and follow-ups: an explicit list, or follow-ups in bulk (N per SDR)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from leadterra_sandbox.errors import invalid
from leadterra_sandbox.records import FollowUp, Thread
from leadterra_sandbox.seeding import (
    FOLLOWUP_FIELDS,
    THREAD_FIELDS,
    allocate,
    fields,
    id_field,
    items_of,
)
from leadterra_sandbox.state import State


def _sdr_id(state: State, spec: dict[str, Any]) -> str:
    sdr_id = spec.get("sdrId")
    if not isinstance(sdr_id, str) or sdr_id not in state.sdrs:
        raise invalid(f"sdrId must name a seeded SDR, got {sdr_id!r}")
    return sdr_id


def new_thread(state: State, sdr_id: str, thread_id: str | None, attrs: dict[str, Any]) -> Thread:
    old = state.threads.get(thread_id) if thread_id else None
    if old is not None:
        thread = dataclasses.replace(old, sdr_id=sdr_id, **attrs)
    else:
        tid = thread_id or state.new_id("thr_", state.threads)
        now = state.clock.now()
        defaults: dict[str, Any] = {
            "contact_email": f"contact.{tid.lower()}@example.com",
            "subject": "Re: Quick question",
            "created_at": now,
            "last_message_at": now,
        }
        thread = Thread(id=tid, sdr_id=sdr_id, **(defaults | attrs))
    state.put_thread(thread)
    return thread


def seed_threads(state: State, body: Any) -> list[Thread]:
    """`{"threads":[{sdrId, id?, contactEmail?, status?, category?, ...}]}`."""
    made = []
    for spec in items_of(body, "threads"):
        attrs = fields(spec, THREAD_FIELDS)
        made.append(new_thread(state, _sdr_id(state, spec), id_field(spec), attrs))
    return made


def _followup(state: State, spec: Any) -> FollowUp:
    attrs = fields(spec, FOLLOWUP_FIELDS)
    thread_id = id_field(spec, "threadId")
    thread = state.threads.get(thread_id) if thread_id else None
    sdr_id = thread.sdr_id if thread is not None and "sdrId" not in spec else _sdr_id(state, spec)
    if thread is None:
        thread = new_thread(state, sdr_id, thread_id, {})
    now = state.clock.now()
    followup_id = id_field(spec) or state.new_id("fu_", state.followups)
    base = {"due_at": now, "created_at": now}
    followup = FollowUp(id=followup_id, thread_id=thread.id, sdr_id=sdr_id, **(base | attrs))
    if followup.status != "pending":
        followup.closed_at = now
    state.put_followup(followup)
    return followup


def seed_followups(state: State, body: Any, rng: random.Random) -> list[FollowUp]:
    """An explicit `{"followups":[...]}`, or bulk:

    `{"perSdr": N, "sdrIds": [...]?, "statuses": {"pending": 8, "completed": 1, ...}?,
    "dueFromSeconds": -3600?, "dueToSeconds": 3600?}`: N follow-ups per SDR, each on its own
    new thread, dueAt spread evenly from now+dueFrom to now+dueTo, statuses in exact proportion.
    """
    if not (isinstance(body, dict) and "perSdr" in body):
        return [_followup(state, spec) for spec in items_of(body, "followups")]
    per_sdr = body["perSdr"]
    sdr_ids = body.get("sdrIds", list(state.sdrs))
    low, high = body.get("dueFromSeconds", -3600), body.get("dueToSeconds", 3600)
    if not isinstance(per_sdr, int) or per_sdr < 0 or not isinstance(sdr_ids, list):
        raise invalid("perSdr must be a non-negative integer and sdrIds a list")
    if not isinstance(low, int | float) or not isinstance(high, int | float) or high < low:
        raise invalid("dueFromSeconds and dueToSeconds must be numbers, from <= to")
    now = state.clock.now()
    step = (high - low) / max(per_sdr - 1, 1)
    made = []
    for sdr_id in sdr_ids:
        _sdr_id(state, {"sdrId": sdr_id})
        statuses = allocate(body.get("statuses", {"pending": 1}), per_sdr, rng)
        for n, status in enumerate(statuses):
            spec = {"sdrId": sdr_id, "status": status, "dueAt": now + low + step * n}
            made.append(_followup(state, spec))
    return made
