"""Replies held because no SDR can take them now: never dropped, checked again and again.

A held reply is a `held` hash entry (since when, and why) plus its assign message waiting in
the delayed set; beat's `release_due` puts it back on the queue every `HOLD_RECHECK_SECONDS`.
The hash gives operators and /metrics the count and the age of the oldest held reply. An entry
leaves it when its reply is finished (worker/routing/assign.py: assigned, already assigned or
ICP-rejected), dead-lettered or its dead letter dropped (worker/jobs/deadletter.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from worker.jobs.queueing import Delayed, assign_message
from worker.keys import QUEUE_ASSIGN, Keys, text


class Holds:
    def __init__(self, client: redis.Redis, keys: Keys, delayed: Delayed, recheck: float) -> None:
        self._redis = client
        self._keys = keys
        self._delayed = delayed
        self._recheck = recheck

    def hold(self, reply: dict[str, Any], reason: str, retries: int) -> None:
        reply_id = str(reply["id"])
        previous = self._redis.hget(self._keys.held, reply_id)
        since = json.loads(previous)["since"] if previous else time.time()
        entry = {"since": since, "reason": reason, "checked": time.time()}
        self._redis.hset(self._keys.held, reply_id, json.dumps(entry))
        due = time.time() + self._recheck
        message = assign_message(reply, retries=retries, enqueued_at=due)
        self._delayed.add(QUEUE_ASSIGN, message, due)

    def list(self) -> dict[str, dict[str, Any]]:
        raw = self._redis.hgetall(self._keys.held)
        return {text(k): json.loads(v) for k, v in raw.items()}
