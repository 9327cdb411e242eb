"""Task messages written straight onto the broker's lists, and waits held in Redis.

The receiver does not load Celery: it builds the same Celery protocol-2 message that
`apply_async` would, and pushes it in one Lua call that also sets the dedupe marker, so the
marker exists exactly when the task is enqueued. `tests/test_queueing.py` checks the message
against what Celery itself publishes, and the integration tests run it through a real worker.

Waits longer than the broker can hold safely (the visibility-timeout trap) go into a sorted
set scored by due time; `release_due` (run by beat every second) moves what is due back onto
its queue in one atomic step, so two beats never release a message twice.

Every message carries `ENQUEUED_AT_HEADER`: since when it may run (now, or its due time for the
delayed set), for `leadrouter_queue_wait_seconds` (worker/jobs/queuewait.py).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from typing import Any

import redis

from worker.keys import ENQUEUED_AT_HEADER, QUEUE_ASSIGN, TASK_ASSIGN, Keys

ORIGIN = f"{os.getpid()}@{socket.gethostname()}"

# KEYS: seen marker, queue list, in-flight hash and its times[, last-webhook stamp, this
# minute's counts]. ARGV: message, ttl seconds, marker value, reply id, now[, stamp value,
# webhooks to count, the counts' TTL]. The message is also kept in flight until its reply has an
# outcome (worker/jobs/orphans.py: a message a killed worker lost is sent again). The receiver
# passes the stamp (the time of the last webhook, for /metrics) and the count (webhooks per
# minute, for the console: worker/console/counters.py), so neither costs a round trip; the sweep
# and backfill pass neither.
ENQUEUE_ONCE = """
if KEYS[5] then redis.call('SET', KEYS[5], ARGV[6]) end
if KEYS[6] then
  redis.call('HINCRBY', KEYS[6], 'webhooks', ARGV[7])
  redis.call('EXPIRE', KEYS[6], ARGV[8])
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
return 1
"""

# KEYS: delayed zset. ARGV: now, max items, queue key prefix.
# Members are "queue\n<message>"; each due one is pushed onto prefix..queue and removed.
RELEASE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local cut = string.find(member, '\\n', 1, true)
  redis.call('LPUSH', ARGV[3] .. string.sub(member, 1, cut - 1), string.sub(member, cut + 1))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


def task_message(
    task: str,
    args: list[Any],
    *,
    queue: str,
    task_id: str | None = None,
    retries: int = 0,
    argsrepr: str = "",
    enqueued_at: float | None = None,
) -> str:
    """A Celery protocol-2 message as kombu's Redis transport stores it, JSON-encoded.

    `argsrepr` replaces Celery's repr of the arguments in its own logs: pass ids only, so no
    e-mail address or reply text reaches a log line. `enqueued_at` is since when the message
    may run: now by default; the due time for a message bound for the delayed set.

    It is the receiver's hot path, so the constant parts are JSON written once (`_MESSAGE`):
    the text is the same as `json.dumps(message, separators=(",", ":"))` of the message laid
    out in full (tests/test_queueing.py compares them).
    """
    task_id = task_id or uuid4_text()
    body = _COMPACT.encode([args, {}, _EMBED])
    return _MESSAGE.format(
        body=base64.b64encode(body.encode()).decode(),
        task=_string(task),
        id=_string(task_id),
        retries=_COMPACT.encode(retries),
        argsrepr=_string(argsrepr),
        enqueued_at=_COMPACT.encode(time.time() if enqueued_at is None else enqueued_at),
        queue=_string(queue),
        tag=uuid4_text(),
    )


def uuid4_text() -> str:
    """`str(uuid.uuid4())`: 16 random bytes with the version and variant bits set, as text."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_COMPACT = json.JSONEncoder(separators=(",", ":"))
_string = json.encoder.encode_basestring_ascii  # a str as the encoder writes it, quotes included
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
#: the message with every constant written as JSON once; {fields} are JSON already (the body and
#: the delivery tag need no escaping: base64 and hex), and braces of the JSON itself are doubled
_MESSAGE = (
    '{{"body":"{body}","content-encoding":"utf-8","content-type":"application/json",'
    '"headers":{{"lang":"py","task":{task},"id":{id},"shadow":null,"eta":null,"expires":null,'
    '"group":null,"group_index":null,"retries":{retries},"timelimit":[null,null],'
    '"root_id":{id},"parent_id":null,"argsrepr":{argsrepr},"kwargsrepr":"{{}}",'
    f'"origin":{_string(ORIGIN).replace("{", "{{").replace("}", "}}")},'
    '"ignore_result":true,"replaced_task_nesting":0,"stamped_headers":null,"stamps":{{}},'
    f"{_string(ENQUEUED_AT_HEADER)}:{{enqueued_at}}}}}},"
    '"properties":{{"correlation_id":{id},"reply_to":"","delivery_mode":2,'
    '"delivery_info":{{"exchange":"","routing_key":{queue}}},"priority":0,'
    '"body_encoding":"base64","delivery_tag":"{tag}"}}}}'
)


def assign_message(
    reply: dict[str, Any], *, retries: int = 0, enqueued_at: float | None = None
) -> str:
    """The message for one reply's assign task; the reply id doubles as a readable repr."""
    return task_message(
        TASK_ASSIGN,
        [reply],
        queue=QUEUE_ASSIGN,
        retries=retries,
        argsrepr=f"[reply {reply.get('id', '?')}]",
        enqueued_at=enqueued_at,
    )


def source_of(reply: dict[str, Any]) -> str:
    """How the reply came: `webhook` (also for messages queued before sources were recorded),
    `reconcile` or `backfill`."""
    source = reply.get("source")
    return source if isinstance(source, str) and source else "webhook"


def enqueue_once(
    client: redis.Redis, keys: Keys, payloads: list[dict[str, Any]], ttl: int
) -> list[bool]:
    """The receiver's enqueue for many replies at once (the sweep, backfill): the same Lua call,
    marker and message per reply, in one pipeline; True where a reply was new."""
    if not payloads:
        return []
    script = client.register_script(ENQUEUE_ONCE)
    now = time.time()
    with client.pipeline(transaction=False) as pipe:
        for payload in payloads:
            reply_id = str(payload["id"])
            script(
                keys=[*enqueue_keys(keys, reply_id)],
                args=[
                    assign_message(payload),
                    ttl,
                    str(payload.get("acceptedAt", "")),
                    reply_id,
                    repr(now),
                ],
                client=pipe,
            )
        return [bool(fresh) for fresh in pipe.execute()]


def enqueue_keys(keys: Keys, reply_id: str) -> tuple[str, str, str, str]:
    """`ENQUEUE_ONCE`'s first four keys for one reply."""
    return (keys.seen(reply_id), keys.queue(QUEUE_ASSIGN), keys.inflight, keys.inflight_at)


class Delayed:
    """Messages waiting in Redis until their time, released by `release_due`."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._release = client.register_script(RELEASE_DUE)

    def add(self, queue: str, message: str, due: float) -> None:
        self._redis.zadd(self._keys.delayed, {f"{queue}\n{message}": due})

    def release_due(self, now: float | None = None, limit: int = 1000) -> int:
        moved = self._release(
            keys=[self._keys.delayed],
            args=[now if now is not None else time.time(), limit, self._keys.prefix],
        )
        return int(moved)

    def count(self) -> int:
        return int(self._redis.zcard(self._keys.delayed))
