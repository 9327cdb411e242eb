"""The dead-letter list: what could not be done, with why, until an operator acts.

Redis has no dead-letter queue of its own (a rejected message is deleted), so the service keeps
one: a hash of entries and a sorted index by time. Each entry holds the task name, its
arguments, the last error and the attempt count, so `dlq replay` can enqueue it again as it was.
Replay goes through the task's own idempotency (the per-reply pick, the `done` record and
Leadterra's 409), so replaying twice never assigns twice.

A reply that is dead-lettered, or whose entry is dropped, is no longer held: both remove it from
`held` in the same transaction, whoever calls them, so the held-replies gauges stay true.
Listing and replaying page through the whole index, `PAGE` entries per round trip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from worker.jobs.orphans import settle, track
from worker.jobs.queueing import task_message
from worker.keys import TASK_ASSIGN, Keys, text

PAGE = 500


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

    def reply_id(self) -> str | None:
        """The reply an assign task was about, if the entry is one (and it decoded)."""
        first = self.args[0] if self.args else None
        if self.task == TASK_ASSIGN and isinstance(first, dict) and "id" in first:
            return str(first["id"])
        return self.id.removeprefix("reply:") if self.id.startswith("reply:") else None


class DeadLetters:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def add(self, entry: DeadLetter) -> None:
        """Keep `entry` (replacing one with the same id); its reply is no longer held."""
        self.add_many([entry])

    def add_many(self, entries: Iterable[DeadLetter]) -> None:
        """`add` for many entries, in one transaction."""
        with self._redis.pipeline(transaction=True) as pipe:
            for entry in entries:
                pipe.hset(self._keys.dlq, entry.id, json.dumps(asdict(entry), default=str))
                pipe.zadd(self._keys.dlq_index, {entry.id: entry.at})
                reply_id = entry.reply_id()
                if reply_id is not None:
                    pipe.hdel(self._keys.held, reply_id)
                    settle(pipe, self._keys, reply_id)
            pipe.execute()

    def get(self, entry_id: str) -> DeadLetter | None:
        raw = self._redis.hget(self._keys.dlq, entry_id)
        return DeadLetter(**json.loads(raw)) if raw else None

    def ids(self, limit: int | None = None) -> list[str]:
        """Entry ids, oldest first: all of them, or the oldest `limit`, read a page at a time."""
        found: list[str] = []
        while limit is None or len(found) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(found))
            page: list[bytes] = self._redis.zrange(  # type: ignore[assignment]
                self._keys.dlq_index, len(found), len(found) + size - 1
            )
            found += [text(member) for member in page]
            if len(page) < size:
                break
        return found

    def list(self, limit: int | None = None) -> list[DeadLetter]:
        """Entries, oldest first: all of them, or the oldest `limit`."""
        return [entry for page in self._pages(self.ids(limit)) for entry in page.values()]

    def _pages(self, ids: Sequence[str]) -> Iterator[dict[str, DeadLetter]]:
        """The entries behind `ids`, a page per round trip; ids gone meanwhile are left out."""
        for start in range(0, len(ids), PAGE):
            chunk = ids[start : start + PAGE]
            raws = self._redis.hmget(self._keys.dlq, chunk)
            yield {
                i: DeadLetter(**json.loads(raw)) for i, raw in zip(chunk, raws, strict=True) if raw
            }

    def count(self) -> int:
        return int(self._redis.hlen(self._keys.dlq))

    def drop(self, entry_id: str) -> bool:
        """Delete an entry without replaying it; its reply is no longer held either, and gets a
        `dropped` outcome for as long as its dedupe marker lives, so no sweep sends it again
        (worker/jobs/orphans.py, worker/intake/)."""
        entry = self.get(entry_id)
        reply_id = entry.reply_id() if entry else None
        marker_ttl = int(self._redis.ttl(self._keys.seen(reply_id))) if reply_id else 0
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.dlq, entry_id)
            pipe.zrem(self._keys.dlq_index, entry_id)
            if reply_id is not None:
                pipe.hdel(self._keys.held, reply_id)
                if marker_ttl > 0:
                    record = {"outcome": "dropped", "sdr": None, "at": time.time()}
                    pipe.set(self._keys.done(reply_id), json.dumps(record), ex=marker_ttl)
            removed = pipe.execute()[0]
        return bool(removed)

    def replay(self, entry_id: str) -> bool:
        """Enqueue the entry's task again, fresh (attempt 1), and remove it from the list."""
        return self.replay_many([entry_id]) == 1

    def replay_many(self, ids: Iterable[str]) -> int:
        """`replay` for many entries, a page per transaction, oldest first on the queue; return
        how many were replayed (an id gone meanwhile is skipped)."""
        replayed = 0
        for page in self._pages(list(ids)):
            with self._redis.pipeline(transaction=True) as pipe:
                for entry_id, entry in page.items():
                    message = task_message(
                        entry.task, entry.args, queue=entry.queue, argsrepr=f"[replay {entry.id}]"
                    )
                    pipe.lpush(self._keys.queue(entry.queue), message)
                    reply_id = entry.reply_id()
                    if reply_id is not None:  # in flight again until it has an outcome
                        track(pipe, self._keys, reply_id, message, time.time())
                    pipe.hdel(self._keys.dlq, entry_id)
                    pipe.zrem(self._keys.dlq_index, entry_id)
                pipe.execute()
            replayed += len(page)
        return replayed
