"""Fault injection: latency, random 5xx / 429 / dropped connections, scripted next-N answers.

Rules are keyed by endpoint template (`POST /v1/replies/{id}/assign`) or `*`. A call is subject
to its endpoint's rule and to the `*` rule: latencies add up, and each rule draws once for a
fault. Scripted faults ("the next N calls get 503") win over random ones, the endpoint's queue
before the `*` queue. `phase: "after"` runs the real handler first (the state changes) and then
delays or replaces the answer: a lost acknowledgement.

A scripted fault may instead garble the answer (`garble`, one of `GARBLES`): what a broken
server or a misconfigured proxy sends. leadterra_sandbox/garble.py writes each one.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from typing import Any

from leadterra_sandbox.errors import invalid

ANY = "*"
PHASES = ("before", "after")
#: encoding: a `Content-Encoding: gzip` header over a plain body; not_json: an HTML page;
#: deep: JSON nested past any parser's stack; shape: JSON of the wrong shape; chunks: broken
#: chunked framing; truncated: a body shorter than its Content-Length, then a close; drip: the
#: right answer, one byte every `dripMs`
GARBLES = ("encoding", "not_json", "deep", "shape", "chunks", "truncated", "drip")


def _rate(spec: dict[str, Any], name: str) -> float:
    value = spec.get(name, 0.0)
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise invalid(f"{name} must be a number from 0 to 1")
    return float(value)


def _number(spec: dict[str, Any], name: str, default: float | None) -> float | None:
    value = spec.get(name, default)
    if value is not None and (not isinstance(value, int | float) or value < 0):
        raise invalid(f"{name} must be a non-negative number")
    return None if value is None else float(value)


def _status(spec: dict[str, Any], name: str, default: int) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise invalid(f"{name} must be an HTTP status")
    return value


def _common(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise invalid("a fault must be a JSON object")
    endpoint = spec.get("endpoint", ANY)
    phase = spec.get("phase", "before")
    if not isinstance(endpoint, str) or phase not in PHASES:
        raise invalid("endpoint must be a string and phase 'before' or 'after'")
    if spec.get("retryAfterFormat", "seconds") not in ("seconds", "date"):
        raise invalid("retryAfterFormat must be 'seconds' or 'date'")
    return {
        "endpoint": endpoint,
        "phase": phase,
        "latency_ms": _number(spec, "latencyMs", 0.0) or 0.0,
        "retry_after": _number(spec, "retryAfter", None),
        "retry_after_date": spec.get("retryAfterFormat") == "date",
    }


@dataclass(slots=True)
class FaultRule:
    endpoint: str = ANY
    phase: str = "before"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    rate_limit_rate: float = 0.0
    retry_after: float | None = None
    retry_after_date: bool = False
    drop_rate: float = 0.0

    @classmethod
    def from_json(cls, spec: Any) -> FaultRule:
        rule = cls(**_common(spec))
        rule.jitter_ms = _number(spec, "jitterMs", 0.0) or 0.0
        rule.error_rate = _rate(spec, "errorRate")
        rule.error_status = _status(spec, "errorStatus", 503)
        rule.rate_limit_rate = _rate(spec, "rateLimitRate")
        rule.drop_rate = _rate(spec, "dropRate")
        if rule.rate_limit_rate and rule.retry_after is None:
            rule.retry_after = 1.0
        if rule.error_rate + rule.rate_limit_rate + rule.drop_rate > 1.0:
            raise invalid("errorRate + rateLimitRate + dropRate must not exceed 1")
        return rule


@dataclass(slots=True)
class Scripted:
    """The next `remaining` calls get `status` (or are dropped)."""

    remaining: int
    endpoint: str = ANY
    phase: str = "before"
    latency_ms: float = 0.0
    status: int = 503
    drop: bool = False
    retry_after: float | None = None
    retry_after_date: bool = False
    garble: str | None = None
    drip_ms: float = 100.0

    @classmethod
    def from_json(cls, spec: Any) -> Scripted:
        count = spec.get("count", 1) if isinstance(spec, dict) else None
        if not isinstance(count, int) or count < 1:
            raise invalid("count must be a positive integer")
        scripted = cls(remaining=count, **_common(spec))
        scripted.status = _status(spec, "status", 503)
        scripted.drop = spec.get("drop") is True
        scripted.garble = spec.get("garble")
        if scripted.garble is not None and scripted.garble not in GARBLES:
            raise invalid(f"garble must be one of {', '.join(GARBLES)}")
        if scripted.garble and scripted.drop:
            raise invalid("a fault either drops or garbles the answer, not both")
        scripted.drip_ms = _number(spec, "dripMs", 100.0) or 0.0
        return scripted


@dataclass(slots=True)
class Decision:
    """What to do to one call."""

    phase: str = "before"
    delay_before: float = 0.0
    delay_after: float = 0.0
    kind: str | None = None  # error | rate_limit | drop | scripted | garble; None = normal
    status: int = 0
    retry_after: str | None = None
    garble: str | None = None  # one of GARBLES when kind is "garble"
    drip_ms: float = 0.0


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in fields.items():
        head, *rest = name.split("_")
        out[head + "".join(part.title() for part in rest)] = value
    return out


def retry_after_header(seconds: float | None, as_date: bool) -> str | None:
    if seconds is None:
        return None
    if as_date:
        return formatdate(time.time() + math.ceil(seconds), usegmt=True)
    return f"{seconds:g}"


@dataclass
class Faults:
    """Every fault in force. `decide()` is on the hot path and is a dict probe when idle."""

    rng: random.Random = field(default_factory=random.Random)
    rules: dict[str, FaultRule] = field(default_factory=dict)
    scripted: dict[str, deque[Scripted]] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)

    def set_rule(self, rule: FaultRule) -> None:
        self.rules[rule.endpoint] = rule

    def add_scripted(self, scripted: Scripted) -> None:
        self.scripted.setdefault(scripted.endpoint, deque()).append(scripted)

    def clear(self, endpoint: str | None = None) -> None:
        if endpoint is None:
            self.rules.clear()
            self.scripted.clear()
        else:
            self.rules.pop(endpoint, None)
            self.scripted.pop(endpoint, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "rules": [_camel(asdict(r)) for r in self.rules.values()],
            "scripted": [_camel(asdict(s)) for q in self.scripted.values() for s in q],
            "injected": dict(self.injected),
        }

    def decide(self, template: str) -> Decision | None:
        if not self.rules and not self.scripted:
            return None
        decision = Decision()
        for key in (template, ANY):
            rule = self.rules.get(key)
            if rule is not None:
                self._apply_rule(rule, decision)
        for key in (template, ANY):
            queue = self.scripted.get(key)
            if queue:
                self._apply_scripted(queue, key, decision)
                break
        if decision.kind is not None:
            self.injected[decision.kind] = self.injected.get(decision.kind, 0) + 1
        elif not decision.delay_before and not decision.delay_after:
            return None
        return decision

    def _apply_rule(self, rule: FaultRule, decision: Decision) -> None:
        delay = rule.latency_ms / 1000.0
        if rule.jitter_ms:
            delay += self.rng.uniform(0.0, rule.jitter_ms) / 1000.0
        if rule.phase == "after":
            decision.delay_after += delay
        else:
            decision.delay_before += delay
        if decision.kind is not None or not (
            rule.drop_rate or rule.error_rate or rule.rate_limit_rate
        ):
            return
        draw = self.rng.random()
        if draw < rule.drop_rate:
            decision.kind = "drop"
        elif draw < rule.drop_rate + rule.error_rate:
            decision.kind, decision.status = "error", rule.error_status
        elif draw < rule.drop_rate + rule.error_rate + rule.rate_limit_rate:
            decision.kind, decision.status = "rate_limit", 429
            decision.retry_after = retry_after_header(rule.retry_after, rule.retry_after_date)
        if decision.kind is not None:
            decision.phase = rule.phase

    def _apply_scripted(self, queue: deque[Scripted], key: str, decision: Decision) -> None:
        scripted = queue[0]
        scripted.remaining -= 1
        if scripted.remaining <= 0:
            queue.popleft()
            if not queue:
                del self.scripted[key]
        decision.phase = scripted.phase
        if scripted.phase == "after":
            decision.delay_after += scripted.latency_ms / 1000.0
        else:
            decision.delay_before += scripted.latency_ms / 1000.0
        decision.kind = "drop" if scripted.drop else "scripted"
        decision.status = 0 if scripted.drop else scripted.status
        decision.retry_after = retry_after_header(scripted.retry_after, scripted.retry_after_date)
        if scripted.garble:
            decision.kind, decision.status = "garble", 200
            decision.garble, decision.drip_ms = scripted.garble, scripted.drip_ms


@dataclass
class Outage:
    """The global switch: `refuse` (the API port stops listening) or `error` (every call 503)."""

    mode: str | None = None
    until: float | None = None  # time.monotonic() when it ends by itself; None = until cleared
    status: int = 503

    def erroring(self) -> bool:
        if self.mode != "error":
            return False
        if self.until is not None and time.monotonic() >= self.until:
            self.mode = self.until = None
            return False
        return True

    def snapshot(self) -> dict[str, Any]:
        self.erroring()  # ends a timed error outage that is over
        left = None if self.until is None else max(0.0, self.until - time.monotonic())
        return {"mode": self.mode, "secondsLeft": left, "status": self.status}
