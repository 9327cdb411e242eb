"""Replies whose task message was lost after the `seen` marker was set, found and sent again.

kombu's Redis transport takes a message off the queue (BRPOP) and only then writes it to its
unacked hash: a worker killed between the two loses the message, and its reply's `seen` marker
then keeps every later webhook, sweep and backfill from enqueueing it again. So when a sweep or
backfill meets a positive reply that was enqueued before, it checks the reply is accounted for:

    done        it has an outcome (`done:{reply}`)
    dead        it is in the dead-letter list (`reply:{id}`), waiting for an operator
    young       its marker is younger than ORPHAN_AFTER_SECONDS (a message in flight)
    somewhere   its message is on the assign queue, in kombu's unacked hash (a worker holds it,
                countdown retries included) or in the delayed set (long retries, holds)

The last check reads those three in one MULTI, and only when a reply passed the first three:
the common sweep costs one pipelined round trip more. A reply none of them accounts for is an
orphan: `REDELIVER` pushes a new message and renews the marker, in one Lua call that checks the
outcome and the dead-letter list again. A message that was only in a worker's hands for an
instant ends up twice: the second run meets the pick and the `done` record (worker/routing/),
and Leadterra's 409, so it never assigns twice.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from worker.jobs.queueing import assign_message
from worker.keys import QUEUE_ASSIGN, text
from worker.logs import get_logger
from worker.runtime import Runtime

log = get_logger("leadrouter.intake")
#: a marker younger than this belongs to a message that may still be on its way to a worker
ORPHAN_AFTER_SECONDS = 60.0

# KEYS: seen marker, queue, done record, dead-letter hash. ARGV: message, ttl, marker value,
# dead-letter entry id.
REDELIVER = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('HEXISTS', KEYS[4], ARGV[4]) == 1 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
return 1
"""


def reply_in(raw: bytes | str) -> str | None:
    """The reply id an assign task message carries, or None (another task, or undecodable)."""
    try:
        message: Any = json.loads(raw)
        if isinstance(message, list):  # kombu's unacked entry: [message, exchange, key]
            message = message[0]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        first = args[0] if args else None
        return str(first["id"]) if isinstance(first, dict) and "id" in first else None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def _somewhere(rt: Runtime) -> set[str]:
    """Every reply with an assign message on the queue, unacked, or in the delayed set."""
    with rt.redis.pipeline(transaction=True) as pipe:
        pipe.lrange(rt.keys.queue(QUEUE_ASSIGN), 0, -1)
        pipe.hvals(rt.keys.unacked)
        pipe.zrange(rt.keys.delayed, 0, -1)
        queued, unacked, delayed = pipe.execute()
    raws = [*queued, *unacked, *(text(m).split("\n", 1)[-1] for m in delayed)]
    return {reply for reply in map(reply_in, raws) if reply is not None}


def orphans(rt: Runtime, payloads: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """The payloads (of replies enqueued before) whose reply nothing accounts for."""
    if not payloads:
        return []
    with rt.redis.pipeline(transaction=False) as pipe:
        for payload in payloads:
            reply_id = str(payload["id"])
            pipe.get(rt.keys.seen(reply_id))
            pipe.exists(rt.keys.done(reply_id))
            pipe.hexists(rt.keys.dlq, f"reply:{reply_id}")
        answers = pipe.execute()
    stale = []
    for n, payload in enumerate(payloads):
        marker, done, dead = answers[3 * n : 3 * n + 3]
        if done or dead or marker is None or now - _stamp(marker) < ORPHAN_AFTER_SECONDS:
            continue
        stale.append(payload)
    if not stale:
        return []
    somewhere = _somewhere(rt)
    return [p for p in stale if str(p["id"]) not in somewhere]


def _stamp(marker: bytes | str) -> float:
    """The marker's time (when the reply was accepted); an unreadable one counts as old."""
    try:
        return float(text(marker))
    except ValueError:
        return 0.0


def redeliver(rt: Runtime, payloads: list[dict[str, Any]]) -> list[bool]:
    """Push a new message for each orphan still without an outcome; True where pushed."""
    script = rt.redis.register_script(REDELIVER)
    with rt.redis.pipeline(transaction=False) as pipe:
        for payload in payloads:
            reply_id = str(payload["id"])
            script(
                keys=[
                    rt.keys.seen(reply_id),
                    rt.keys.queue(QUEUE_ASSIGN),
                    rt.keys.done(reply_id),
                    rt.keys.dlq,
                ],
                args=[
                    assign_message(payload),
                    rt.settings.dedupe_ttl_seconds,
                    str(payload.get("acceptedAt", time.time())),
                    f"reply:{reply_id}",
                ],
                client=pipe,
            )
        pushed = [bool(n) for n in pipe.execute()] if payloads else []
    for payload, sent in zip(payloads, pushed, strict=True):
        if sent:
            log.warning(
                "reply.redelivered",
                reply_id=payload["id"],
                source=payload.get("source"),
                reason="enqueued before, but no outcome, dead letter or message anywhere",
                outcome="enqueued",
            )
    return pushed
