"""The dead-letter list: what could not be done, with why, until an operator acts.

Redis has no dead-letter queue of its own (a rejected message is deleted), so the service keeps
one: a hash of entries and a sorted index by time. Each entry holds the task name, its
arguments, the last error and the attempt count, so `dlq replay` can enqueue it again as it was.
Replay goes through the task's own idempotency (the per-reply pick, the `done` record and
Leadterra's 409), so replaying twice never assigns twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from worker.jobs.queueing import task_message
from worker.keys import Keys


@dataclass
class DeadLetter:
    id: str
    task: str
    queue: str
    args: list[Any]
    error: str
    error_type: str
    attempts: int
    at: float = field(default_factory=time.time)
    task_id: str | None = None


class DeadLetters:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def add(self, entry: DeadLetter) -> None:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.dlq, entry.id, json.dumps(asdict(entry), default=str))
            pipe.zadd(self._keys.dlq_index, {entry.id: entry.at})
            pipe.execute()

    def get(self, entry_id: str) -> DeadLetter | None:
        raw = self._redis.hget(self._keys.dlq, entry_id)
        return DeadLetter(**json.loads(raw)) if raw else None

    def list(self, limit: int = 1000) -> list[DeadLetter]:
        ids: list[bytes] = self._redis.zrange(self._keys.dlq_index, 0, limit - 1)  # type: ignore[assignment]
        if not ids:
            return []
        raws = self._redis.hmget(self._keys.dlq, ids)
        return [DeadLetter(**json.loads(raw)) for raw in raws if raw]

    def count(self) -> int:
        return int(self._redis.hlen(self._keys.dlq))

    def drop(self, entry_id: str) -> bool:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.dlq, entry_id)
            pipe.zrem(self._keys.dlq_index, entry_id)
            removed, _ = pipe.execute()
        return bool(removed)

    def replay(self, entry_id: str) -> bool:
        """Enqueue the entry's task again, fresh (attempt 1), and remove it from the list."""
        entry = self.get(entry_id)
        if entry is None:
            return False
        message = task_message(
            entry.task, entry.args, queue=entry.queue, argsrepr=f"[replay {entry.id}]"
        )
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self._keys.queue(entry.queue), message)
            pipe.hdel(self._keys.dlq, entry_id)
            pipe.zrem(self._keys.dlq_index, entry_id)
            pipe.execute()
        return True
