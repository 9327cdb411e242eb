"""Messages a killed worker held or lost, back on their queues within seconds.

Held. A worker killed while it holds messages (its reservation window of WORKER_CONCURRENCY,
countdown retries waiting for their time), on any of our queues, leaves them in kombu's unacked
hash, which gives them back only after VISIBILITY_TIMEOUT (900 s by default). So each worker
beats an alive key every 2 s, and its transport records the holder of every message it takes
(worker/jobs/liveness.py); each recovery first puts back every message whose holder has not
beaten for 10 s, at the head of its queue and marked redelivered, as kombu's own restore would
(`message.restored`). A live worker starved of CPU that long looks dead: its messages then run
twice, which the pick, the `done` record and Leadterra's 409 make harmless (and the claims and
ids of follow-ups, drafts and notifications for theirs).

Lost. kombu's Redis transport takes a message off the queue (BRPOP) and only then writes it to
its unacked hash: a worker killed between the two loses the message, and its reply's `seen`
marker keeps every later webhook, sweep and backfill from enqueueing it again. So every assign
message is also kept, from the moment it is enqueued until its reply has an outcome, in
`inflight` (a hash: reply id -> message) and `inflight:at` (a sorted set: reply id -> when it was
last known to be somewhere). The enqueue writes both in the same Lua call as the marker and the
message (worker/jobs/queueing.py `ENQUEUE_ONCE`); an outcome (`done:{reply}`), a dead letter or
its drop removes both in the same pipeline that records it (`settle`).

Every RECOVER_EVERY seconds, one `recover` (single-flight) restores the dead workers' messages,
then looks at the replies in flight for longer than ORPHAN_AFTER_SECONDS. Each one is:

    settled     it has an outcome or a dead letter after all: its entries are removed
    somewhere   its message is on the assign queue, in kombu's unacked hash (a worker holds it;
                countdown retries too) or in the delayed set (long retries, holds), read in one
                MULTI: it is left alone, and looked at again ORPHAN_AFTER_SECONDS later
    orphaned    none of these: its message is pushed again (`REDELIVER`, one Lua call that checks
                the outcome and the dead-letter list once more), `reply.redelivered`

The stored message is the one first enqueued (its retry count included). A message that was only
in a worker's hands for an instant ends up twice: the second run meets the pick and the `done`
record (worker/routing/), and Leadterra's 409, so it never assigns twice.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.exceptions import LockError

from worker.jobs.liveness import restore_dead
from worker.keys import QUEUE_ASSIGN, Keys, text
from worker.logs import get_logger

if TYPE_CHECKING:  # the runtime holds the dead-letter list, which settles through this module
    from worker.runtime import Runtime

log = get_logger("leadrouter.orphans")
#: a message younger than this may be on its way from the queue to a worker's unacked hash
ORPHAN_AFTER_SECONDS = 15.0
#: how often beat asks for a recovery
RECOVER_EVERY = 5.0
#: replies looked at per recovery (the oldest first)
BATCH = 1000

# KEYS: queue, inflight hash, inflight:at zset, done record, dead-letter hash.
# ARGV: reply id, now, dead-letter entry id.
REDELIVER = """
if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('HEXISTS', KEYS[5], ARGV[3]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
local message = redis.call('HGET', KEYS[2], ARGV[1])
if not message then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
redis.call('LPUSH', KEYS[1], message)
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""


def dead_letter_id(reply_id: str) -> str:
    """The dead-letter entry id of a reply's assign task (worker/jobs/reliable.py)."""
    return f"reply:{reply_id}"


def track(pipe: Any, keys: Keys, reply_id: str, message: str, now: float) -> None:
    """Keep a message enqueued outside `ENQUEUE_ONCE` (a replayed dead letter) in flight."""
    pipe.hset(keys.inflight, reply_id, message)
    pipe.zadd(keys.inflight_at, {reply_id: now})


def settle(pipe: Any, keys: Keys, reply_id: str) -> None:
    """The reply has an outcome or a dead letter: no message of it is in flight any more."""
    pipe.hdel(keys.inflight, reply_id)
    pipe.zrem(keys.inflight_at, reply_id)


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


def somewhere(client: redis.Redis, keys: Keys, kept: dict[str, bytes] | None = None) -> set[str]:
    """Every reply with an assign message on the queue, unacked, or in the delayed set; with
    `kept` (reply id -> its message as enqueued, from `inflight`), at least those of its replies
    that have one.

    Reading a message's reply id means decoding it (JSON, then its base64 body): with a backlog
    of thousands queued, every recovery did that to each, a tenth of a worker's CPU. A kept
    message is pushed as it is kept (the receiver's, the sweep's, a redelivery), so one found
    byte for byte on the queue settles its reply without decoding; the held and delayed ones
    (retries, restores: different bytes) are decoded next, and the rest of the queue only if a
    reply asked about is still unaccounted for."""
    with client.pipeline(transaction=True) as pipe:
        pipe.lrange(keys.queue(QUEUE_ASSIGN), 0, -1)
        pipe.hvals(keys.unacked)
        pipe.zrange(keys.delayed, 0, -1)
        queued, unacked, delayed = pipe.execute()
    found: set[str] = set()
    rest = queued
    if kept:
        on_queue = set(queued)
        found = {reply for reply, message in kept.items() if message in on_queue}
        matched = {kept[reply] for reply in found}
        rest = [raw for raw in queued if raw not in matched]
    found |= _replies([*unacked, *(text(m).split("\n", 1)[-1] for m in delayed)])
    if kept is None or not found >= set(kept):
        found |= _replies(rest)
    return found


def _replies(raws: list[Any]) -> set[str]:
    return {reply for reply in map(reply_in, raws) if reply is not None}


@dataclass(frozen=True)
class Recovered:
    looked_at: int = 0
    settled: int = 0
    redelivered: int = 0
    skipped_lock: bool = False
    restored: int = 0


def recover(rt: Runtime, now: float | None = None) -> Recovered:
    """One recovery (see the module docstring), unless another holds the lock."""
    lock = rt.redis.lock(rt.keys.orphans_lock, timeout=rt.settings.max_task_seconds + 5)
    if not lock.acquire(blocking=False):
        return Recovered(skipped_lock=True)
    try:
        restored = restore_held(rt)
        found = _recover(rt, time.time() if now is None else now)
        return replace(found, restored=restored)
    finally:
        with contextlib.suppress(LockError):
            lock.release()


def restore_held(rt: Runtime) -> int:
    """Put back what dead workers held (worker/jobs/liveness.py); how many messages."""
    restored = restore_dead(rt.redis, rt.keys)
    for entry in restored:
        log.warning(
            "message.restored",
            reply_id=reply_in(entry.message),
            task=_task_of(entry.message),
            queue=entry.queue,
            worker=entry.worker,
            reason="its worker stopped beating",
            outcome="enqueued",
        )
    return len(restored)


def _task_of(raw: str) -> str | None:
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return str(json.loads(raw)["headers"]["task"])
    return None


def _recover(rt: Runtime, now: float) -> Recovered:
    keys, client = rt.keys, rt.redis
    raw_ids = client.zrangebyscore(keys.inflight_at, "-inf", now - ORPHAN_AFTER_SECONDS, 0, BATCH)
    stale = [text(i) for i in cast(list[bytes], raw_ids)]
    if not stale:
        return Recovered()
    with client.pipeline(transaction=False) as pipe:
        for reply_id in stale:
            pipe.exists(keys.done(reply_id))
            pipe.hexists(keys.dlq, dead_letter_id(reply_id))
            pipe.hget(keys.inflight, reply_id)
        answers = pipe.execute()
    finished = [r for n, r in enumerate(stale) if answers[3 * n] or answers[3 * n + 1]]
    settled = frozenset(finished)
    waiting = [r for r in stale if r not in settled]
    kept = {r: answers[3 * n + 2] for n, r in enumerate(stale) if answers[3 * n + 2]}
    found: set[str] = set()
    if waiting:  # with every waiting reply's kept message, or without (a full decode)
        asked = {r: kept[r] for r in waiting if r in kept}
        found = somewhere(client, keys, asked if len(asked) == len(waiting) else None)
    lost = [r for r in waiting if r not in found]
    with client.pipeline(transaction=False) as pipe:
        for reply_id in finished:
            settle(pipe, keys, reply_id)
        alive = [r for r in waiting if r in found]
        if alive:  # look again once they may have been lost since
            pipe.zadd(keys.inflight_at, dict.fromkeys(alive, now), xx=True)
        pipe.execute()
    sent = redeliver(rt, lost, now)
    return Recovered(len(stale), len(finished), sent)


def redeliver(rt: Runtime, reply_ids: list[str], now: float) -> int:
    """Push the kept message of each orphan still without an outcome; how many were pushed."""
    if not reply_ids:
        return 0
    keys = rt.keys
    script = rt.redis.register_script(REDELIVER)
    with rt.redis.pipeline(transaction=False) as pipe:
        for reply_id in reply_ids:
            script(
                keys=[
                    keys.queue(QUEUE_ASSIGN),
                    keys.inflight,
                    keys.inflight_at,
                    keys.done(reply_id),
                    keys.dlq,
                ],
                args=[reply_id, now, dead_letter_id(reply_id)],
                client=pipe,
            )
        pushed = pipe.execute()
    for reply_id, sent in zip(reply_ids, pushed, strict=True):
        if sent:
            log.warning(
                "reply.redelivered",
                reply_id=reply_id,
                reason="in flight, but no outcome, dead letter or message anywhere",
                outcome="enqueued",
            )
    return sum(1 for sent in pushed if sent)
