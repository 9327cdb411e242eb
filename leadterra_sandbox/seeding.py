"""Turning the control API's seed JSON into records: SDRs, replies, threads, follow-ups.

Fields are camelCase as on the wire. A seed that names an existing id updates that record:
fields it gives replace, fields it leaves out keep their values.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from leadterra_sandbox.clock import parse_iso
from leadterra_sandbox.errors import invalid
from leadterra_sandbox.records import (
    CATEGORIES,
    FOLLOWUP_STATUSES,
    HEALTH_STATES,
    THREAD_STATUSES,
    FollowUp,
    Reply,
    Sdr,
    Thread,
)
from leadterra_sandbox.state import State

# json name -> (attribute, kind); kinds: str, optstr, bool, int, time, and tuples of choices
SDR_FIELDS: dict[str, tuple[str, Any]] = {
    "name": ("name", "str"),
    "email": ("email", "str"),
    "gmailConnected": ("gmail_connected", "bool"),
    "gmailEmail": ("gmail_email", "optstr"),
    "healthState": ("health_state", HEALTH_STATES),
    "lastSyncedAt": ("last_synced_at", "time"),
    "lastSyncError": ("last_sync_error", "optstr"),
}
REPLY_FIELDS: dict[str, tuple[str, Any]] = {
    "email": ("email", "str"),
    "campaignId": ("campaign_id", "str"),
    "classification": ("classification", "str"),
    "receivedAt": ("received_at", "time"),
    "threadSnippet": ("thread_snippet", "str"),
    "forwarded": ("forwarded", "bool"),
    "icpPass": ("icp_pass", "bool"),
    "name": ("name", "optstr"),
    "subject": ("subject", "optstr"),
}
THREAD_FIELDS: dict[str, tuple[str, Any]] = {
    "contactEmail": ("contact_email", "str"),
    "contactName": ("contact_name", "optstr"),
    "subject": ("subject", "str"),
    "status": ("status", THREAD_STATUSES),
    "category": ("category", (*CATEGORIES, None)),
    "priorityScore": ("priority_score", "int"),
    "lastMessageAt": ("last_message_at", "time"),
    "createdAt": ("created_at", "time"),
    "snoozed": ("snoozed", "bool"),
    "replyId": ("reply_id", "optstr"),
}
FOLLOWUP_FIELDS: dict[str, tuple[str, Any]] = {
    "status": ("status", FOLLOWUP_STATUSES),
    "dueAt": ("due_at", "time"),
    "reason": ("reason", "optstr"),
}


def _convert(name: str, kind: Any, value: Any) -> Any:
    ok = (
        {
            "str": isinstance(value, str),
            "optstr": value is None or isinstance(value, str),
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "time": isinstance(value, int | float) or parse_iso(value) is not None,
        }.get(kind)
        if isinstance(kind, str)
        else value in kind
    )
    if not ok:
        raise invalid(f"{name}: bad value {value!r}")
    if kind == "time" and isinstance(value, str):
        return parse_iso(value)
    return float(value) if kind == "time" else value


def fields(spec: Any, table: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The record attributes a JSON object sets, checked against `table`."""
    if not isinstance(spec, dict):
        raise invalid("each seed item must be a JSON object")
    return {
        attr: _convert(name, kind, spec[name])
        for name, (attr, kind) in table.items()
        if name in spec
    }


def items_of(body: Any, name: str) -> list[Any]:
    items = body.get(name) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise invalid(f"expected {{{name!r}: [...]}} or a bulk form")
    return items


def id_field(spec: dict[str, Any], name: str = "id") -> str | None:
    value = spec.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise invalid(f"{name} must be a non-empty string")
    return value


def allocate(weights: Any, count: int, rng: random.Random) -> list[str]:
    """`count` labels in exact proportion to `weights` (largest remainder), shuffled."""
    if (
        not isinstance(weights, dict)
        or not weights
        or not all(isinstance(w, int | float) and w >= 0 for w in weights.values())
    ):
        raise invalid("weights must be an object of non-negative numbers")
    total = float(sum(weights.values())) or 1.0
    shares = {label: count * w / total for label, w in weights.items()}
    counts = {label: int(share) for label, share in shares.items()}
    by_remainder = sorted(shares, key=lambda k: shares[k] - counts[k], reverse=True)
    for label in by_remainder[: count - sum(counts.values())]:
        counts[label] += 1
    labels = [label for label, n in counts.items() for _ in range(n)]
    rng.shuffle(labels)
    return labels


# -- SDRs --------------------------------------------------------------------------------------


def default_sdr(number: int, now: float, connected: bool = True) -> Sdr:
    return Sdr(
        id=f"sdr_{number}",
        name=f"SDR {number}",
        email=f"sdr{number}@sandbox.leadterra.test",
        gmail_connected=connected,
        gmail_email=f"sdr{number}.sandbox@gmail.com",
        health_state="active" if connected else "disconnected",
        last_synced_at=now,
    )


def seed_sdrs(state: State, body: Any) -> list[Sdr]:
    """`{"sdrs":[...], "mode":"replace"|"upsert"}` or `{"count":N, "disconnected":M}`."""
    mode = body.get("mode", "replace") if isinstance(body, dict) else None
    if mode not in ("replace", "upsert"):
        raise invalid("mode must be 'replace' or 'upsert'")
    now = state.clock.now()
    if isinstance(body, dict) and "count" in body:
        count, off = body.get("count"), body.get("disconnected", 0)
        if not isinstance(count, int) or not isinstance(off, int) or not 0 <= off <= count:
            raise invalid("count and disconnected must be integers, 0 <= disconnected <= count")
        specs: list[Any] = [{"gmailConnected": n <= count - off} for n in range(1, count + 1)]
    else:
        specs = items_of(body, "sdrs")
    made: list[tuple[Sdr, str | None]] = []
    for number, spec in enumerate(specs, start=1):
        attrs = fields(spec, SDR_FIELDS)
        sdr_id = id_field(spec) or f"sdr_{number}"
        key = id_field(spec, "apiKey")
        old = state.sdrs.get(sdr_id) if mode == "upsert" else None
        base = old or dataclasses.replace(default_sdr(number, now), id=sdr_id)
        if old is None and attrs.get("gmail_connected") is False:
            attrs.setdefault("health_state", "disconnected")
        made.append((dataclasses.replace(base, **attrs), key))
    if mode == "replace":
        for sdr_id in list(state.sdrs):
            state.remove_sdr(sdr_id)
    for sdr, key in made:
        state.put_sdr(sdr, key)
    return [sdr for sdr, _ in made]


def patch_sdr(state: State, sdr_id: str, body: Any) -> Sdr | None:
    sdr = state.sdrs.get(sdr_id)
    if sdr is None:
        return None
    for attr, value in fields(body, SDR_FIELDS).items():
        setattr(sdr, attr, value)
    key = id_field(body, "apiKey")
    if key is not None:
        state.put_sdr(sdr, key)
    return sdr


# -- replies -----------------------------------------------------------------------------------


def new_reply(state: State, reply_id: str | None, attrs: dict[str, Any]) -> Reply:
    """A reply with sandbox defaults for whatever `attrs` leaves out, or the updated existing."""
    old = state.replies.get(reply_id) if reply_id else None
    if old is not None:
        reply = dataclasses.replace(old, **attrs)
    else:
        rid = reply_id or state.new_id("rpl_", state.replies)
        defaults: dict[str, Any] = {
            "email": f"lead.{rid.lower()}@example.com",
            "campaign_id": "camp_sandbox",
            "classification": "interested",
            "received_at": state.clock.now(),
            "thread_snippet": "Sounds interesting, can we talk next week?",
            "subject": "Quick question",
        }
        reply = Reply(id=rid, **(defaults | attrs))
    state.put_reply(reply)
    return reply


def seed_replies(state: State, body: Any) -> list[Reply]:
    """`{"replies":[...], "mode":"upsert"|"replace"}`, or bulk `{"count":N, "prefix":...}`."""
    if isinstance(body, dict) and body.get("mode") == "replace":
        state.replies.clear()
        state.campaigns.clear()
    if isinstance(body, dict) and "count" in body:
        count, prefix = body.get("count"), body.get("prefix", "rpl_seed_")
        if not isinstance(count, int) or count < 0 or not isinstance(prefix, str):
            raise invalid("count must be a non-negative integer and prefix a string")
        attrs = fields({k: v for k, v in body.items() if k in REPLY_FIELDS}, REPLY_FIELDS)
        return [new_reply(state, f"{prefix}{n:06d}", attrs) for n in range(1, count + 1)]
    return [
        new_reply(state, id_field(s), fields(s, REPLY_FIELDS)) for s in items_of(body, "replies")
    ]


# -- threads and follow-ups -------------------------------------------------------------------


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
