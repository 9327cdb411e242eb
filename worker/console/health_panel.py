"""The Health panel: is work arriving, waiting, and being done?

* the last verified webhook, and verified webhooks per minute over the last hour (counted by the
  receiver, worker/console/counters.py; ignored deliveries reach the count within a second);
* queue depths: Celery's queues, messages taken but not acknowledged, the delayed set, held
  replies and dead letters;
* workers: readiness as /readyz judges it (the canary's heartbeat: who consumed it, how long
  ago), and every process that pushed its metrics to Redis recently (workers and beat push every
  METRICS_FLUSH_SECONDS; `web` processes serve theirs live and are not listed);
* Leadterra: calls that were not 2xx in the last hour, 429s apart from the errors (a 409, a
  reply assigned already, is an answer and not an error).
"""

from __future__ import annotations

import json
import re
from typing import Any

from worker.console.counters import LEADTERRA, WEBHOOKS, read_minutes, with_prefix
from worker.console.reader import Reader
from worker.health import heartbeat_age, judge
from worker.keys import QUEUES, text

#: a process that has not pushed its metrics for this long is no longer listed as seen
SEEN_WITHIN_SECONDS = 300
_AT = re.compile(rb'^\{"at":\s*([0-9.eE+-]+)')
NOT_ERRORS = frozenset({"409", "429"})


def _pushed_at(blob: bytes) -> float | None:
    """When a process's metrics snapshot was written, without parsing all of it."""
    hit = _AT.match(blob)
    try:
        return float(hit.group(1)) if hit else float(json.loads(blob)["at"])
    except (ValueError, KeyError, TypeError):
        return None


def _processes(raw: dict[bytes, bytes], now: float) -> list[dict[str, Any]]:
    seen = []
    for ident, blob in raw.items():
        at = _pushed_at(blob)
        if at is not None and now - at <= SEEN_WITHIN_SECONDS:
            seen.append({"ident": text(ident), "age_s": round(max(0.0, now - at), 1)})
    return sorted(seen, key=lambda p: p["ident"])


def _queues(reader: Reader) -> tuple[dict[str, int], bytes | None, bytes | None, Any]:
    keys = reader.keys
    with reader.client.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            pipe.llen(keys.queue(queue))
        pipe.hlen(keys.unacked)
        pipe.zcard(keys.delayed)
        pipe.hlen(keys.held)
        pipe.hlen(keys.dlq)
        pipe.get(keys.last_webhook)
        pipe.get(keys.heartbeat)
        pipe.hgetall(keys.metrics)
        found = pipe.execute()
    names = [*QUEUES, "unacked", "delayed", "held", "dead_letters"]
    depths = {n: int(v) for n, v in zip(names, found[: len(names)], strict=True)}
    last_webhook, heartbeat, snapshots = found[len(names) :]
    return depths, last_webhook, heartbeat, snapshots


def _leadterra(minutes: list[tuple[int, dict[str, int]]]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for _, counts in minutes:
        for status, n in with_prefix(counts, LEADTERRA).items():
            by_status[status] = by_status.get(status, 0) + n
    return {
        "errors_last_hour": sum(n for s, n in by_status.items() if s not in NOT_ERRORS),
        "rate_limited_last_hour": by_status.get("429", 0),
        "by_status": dict(sorted(by_status.items())),
    }


def health_panel(reader: Reader) -> dict[str, Any]:
    now = reader.now()
    depths, last_webhook, heartbeat, snapshots = _queues(reader)
    minutes = read_minutes(reader.client, reader.keys, now)
    series = [{"minute": m * 60, "count": c.get(WEBHOOKS, 0)} for m, c in minutes]
    ready, reason = judge(heartbeat, reader.settings.ready_heartbeat_seconds)
    beat_age = heartbeat_age(heartbeat, now)
    stamped = float(last_webhook) if last_webhook else None
    consumer = text(heartbeat).partition("|")[2] if heartbeat else ""
    return {
        "at": now,
        "last_webhook": {
            "at": stamped,
            "age_s": None if stamped is None else round(max(0.0, now - stamped), 1),
        },
        "webhooks": {
            "last_minute": series[-2]["count"],  # the last whole minute
            "this_minute": series[-1]["count"],
            "last_hour": sum(p["count"] for p in series),
            "per_minute": series,
        },
        "queues": depths,
        "workers": {
            "ready": ready,
            "reason": reason,
            "heartbeat": {
                "worker": consumer or None,
                "age_s": None if beat_age is None else round(beat_age, 1),
            },
            "processes": _processes(snapshots, now),
        },
        "leadterra": _leadterra(minutes),
    }
