"""A killed worker's messages back on their queues within seconds, not after VISIBILITY_TIMEOUT.

kombu's Redis transport keeps every message a worker took and has not acknowledged in its
`unacked` hash (delivery tag -> message), without saying which worker took it, and gives it back
only once it is older than the visibility timeout (900 s by default). A worker killed while it
holds its reservation window (up to WORKER_CONCURRENCY messages, plus countdown retries waiting
for their time) would leave those replies waiting a quarter of an hour. So two things more:

    unacked_holders         a hash beside kombu's: delivery tag -> the worker that holds it,
                            written by our QoS (worker/jobs/broker.py) in the same Lua call
                            as kombu's unacked entry, and removed with it (ack, reject, restore)
    workers:alive:{worker}  set by each worker at start and every ALIVE_EVERY s, from a thread
                            and a connection of its own, with a TTL of ALIVE_TTL s

`restore_dead` (run by the single-flight recovery, worker/jobs/orphans.py, every 5 s) puts each
message whose holder's key is gone back where kombu's own restore puts it: at the head of its
queue, marked redelivered (so the delivery count and the poison guard apply), in one Lua call
that first checks again that the holder is still gone and the entry unchanged, so a message
acknowledged meanwhile is never pushed. A worker's messages are back ALIVE_TTL + 5 s after its
last beat at the most, once beat and some worker run the recovery.

A live worker starved of CPU for ALIVE_TTL s looks dead too: its messages then run twice, which
is safe because every task is idempotent (the pick and `done` records, Leadterra's 409; claims
for follow-ups and drafts; notification ids), and the copy has a delivery tag of its own, so the
first holder's late ack leaves the copy's unacked record alone.

Messages of a worker that records no holder (an older version; a consumer without `Liveness`)
wait for kombu's visibility timeout, as before.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import redis

from worker.keys import QUEUES, Keys, text
from worker.logs import get_logger

log = get_logger("leadrouter.liveness")
#: seconds without a beat after which a worker counts as dead
ALIVE_TTL = 10.0
#: seconds between a worker's beats: a worker must miss five in a row to look dead
ALIVE_EVERY = 2.0
#: the kombu transport option that names the worker holding what this process takes
HOLDER_OPTION = "leadrouter_holder"
#: kombu's lowest priority step above 0: higher priorities live on other lists (not ours)
PRIORITY_STEP = 3

# KEYS: unacked hash, unacked index, holders hash, the holder's alive key, the queue list.
# ARGV: delivery tag, the unacked entry as read, the holder as read, the message to push.
RESTORE = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[3] then return 0 end
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if entry ~= ARGV[2] then
  if not entry then redis.call('HDEL', KEYS[3], ARGV[1]) end
  return 0
end
redis.call('RPUSH', KEYS[5], ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


class Liveness:
    """This worker's alive key, set now and every `every` seconds from a daemon thread."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        worker: str,
        *,
        ttl: float = ALIVE_TTL,
        every: float = ALIVE_EVERY,
    ) -> None:
        self.client, self.key, self.worker = client, keys.worker_alive(worker), worker
        self.ttl, self.every = ttl, every
        self._stop = threading.Event()
        self._failing = False

    def beat(self) -> None:
        """Say this worker is alive for the next `ttl` seconds; a Redis error is logged once."""
        try:
            self.client.set(self.key, repr(time.time()), px=int(self.ttl * 1000))
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("worker.liveness_failed", worker=self.worker, error=type(exc).__name__)
            self._failing = True
        else:
            self._failing = False

    def start(self) -> Liveness:
        """Beat once now, before the worker takes any message, then keep beating."""
        self.beat()
        threading.Thread(target=self._loop, name="liveness", daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()

    def stop(self) -> None:
        """Stop beating (the key expires after `ttl`: a worker shutting down keeps its messages
        until then, and kombu gives them back on a warm shutdown anyway)."""
        self._stop.set()


def restorable(entry: bytes | str) -> tuple[str, str] | None:
    """(queue, message) kombu's own restore would push for an unacked entry, or None when the
    entry is not one of ours to restore (left to kombu's visibility timeout). Unlike kombu's, the
    copy gets a delivery tag of its own: should its first holder be alive after all, that
    worker's late ack must not remove the unacked record of the copy another worker holds."""
    try:
        message, _exchange, routing_key = json.loads(entry)
        properties = message["properties"]
        priority = int(properties.get("priority") or 0)
        properties["delivery_tag"] = str(uuid.uuid4())
        try:  # what kombu's `_do_restore_message` marks, where there is a place for it
            message["headers"]["redelivered"] = True
            properties["delivery_info"]["redelivered"] = True
        except (KeyError, TypeError):
            pass
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    if routing_key not in QUEUES or priority >= PRIORITY_STEP:
        return None
    return str(routing_key), json.dumps(message)


@dataclass(frozen=True)
class Restored:
    tag: str
    worker: str
    queue: str
    message: str


def restore_dead(client: redis.Redis, keys: Keys) -> list[Restored]:
    """Put every message held by a worker whose alive key is gone back on its queue."""
    holders = {
        text(tag): text(worker)
        for tag, worker in cast(dict[bytes, bytes], client.hgetall(keys.unacked_holders)).items()
    }
    if not holders:
        return []
    workers = sorted(set(holders.values()))
    with client.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.exists(keys.worker_alive(worker))
        dead = {w for w, alive in zip(workers, pipe.execute(), strict=True) if not alive}
    tags = [tag for tag, worker in holders.items() if worker in dead]
    if not tags:
        return []
    entries = cast(list[bytes | None], client.hmget(keys.unacked, tags))
    return _restore(client, keys, holders, tags, entries)


def _restore(
    client: redis.Redis,
    keys: Keys,
    holders: dict[str, str],
    tags: list[str],
    entries: list[bytes | None],
) -> list[Restored]:
    """One `RESTORE` per tag, pipelined; an entry already gone only has its holder cleaned."""
    script = client.register_script(RESTORE)
    planned: list[Restored | None] = []
    with client.pipeline(transaction=False) as pipe:
        for tag, entry in zip(tags, entries, strict=True):
            worker = holders[tag]
            found = restorable(entry) if entry is not None else None
            if entry is not None and found is None:
                continue  # not ours to restore: kombu's visibility timeout will
            queue, message = found or ("", "")
            planned.append(Restored(tag, worker, queue, message) if found else None)
            script(
                keys=[
                    keys.unacked,
                    keys.unacked_index,
                    keys.unacked_holders,
                    keys.worker_alive(worker),
                    keys.queue(queue),
                ],
                args=[tag, entry or "", worker, message],
                client=pipe,
            )
        answers: list[Any] = pipe.execute()
    return [r for r, pushed in zip(planned, answers, strict=True) if r is not None and pushed]
