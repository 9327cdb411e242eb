"""The handoff ledger: who has each reply, since when, and what the SLA watch did about it.

One JSON record per reply (`handoff:{reply}`), written when an assign succeeds (attempt 1) and
appended to by a re-route (attempt 2, 3...), kept for DEDUPE_TTL_SECONDS. Two sorted sets index
it: `handoffs:all` (every reply, by its first handoff) for `leadrouter handoffs list`, and
`handoffs:open` (the replies the watch still watches, by their current handoff) for the watch.

Only the watch changes a record after it is made, and the watch runs one at a time (a Redis
lock, worker/sla/watch.py); the assign path only creates one, with SET NX, so a redelivered or
duplicate assign never resets what the watch recorded.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import redis

from worker.keys import Keys, text

#: what a handoff can be: watched, acted on by its SDR, or handed up to the manager
OPEN, ACTED, ESCALATED = "open", "acted", "escalated"

# KEYS: the record, handoffs:all, handoffs:open. ARGV: the record's JSON, its TTL, the reply id,
# now, the oldest score kept in handoffs:all, "1" when watched. Made once (SET NX), and only
# then indexed: 1 when made, 0 when a record was there.
RECORD = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
if ARGV[6] == '1' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3]) end
return 1
"""


@dataclass
class Attempt:
    """One SDR's turn with the reply: attempt 1 is the handoff, later ones re-routes."""

    attempt: int
    sdr_id: str
    thread_id: str | None
    at: float
    reminded_at: float | None = None
    breached_at: float | None = None
    acted_at: float | None = None
    #: consecutive complete inbox reads that did not list the thread as `new`
    misses: int = 0
    missing_since: float | None = None


@dataclass
class Handoff:
    reply_id: str
    email: str | None
    attempts: list[Attempt]
    state: str = OPEN
    escalated_at: float | None = None
    reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current(self) -> Attempt:
        return self.attempts[-1]

    @property
    def breached(self) -> bool:
        return any(a.breached_at is not None for a in self.attempts)

    def note(self, event: str, at: float, **details: Any) -> None:
        """One line of the reply's history (it goes with an escalation)."""
        self.history.append({"event": event, "at": round(at, 3), **details})

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Handoff:
        doc = json.loads(raw)
        doc["attempts"] = [Attempt(**a) for a in doc["attempts"]]
        return cls(**doc)


class Ledger:
    def __init__(self, client: redis.Redis, keys: Keys, ttl: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl
        self._record = client.register_script(RECORD)

    def record(
        self, reply_id: str, email: str | None, sdr_id: str, thread_id: str | None, *, watch: bool
    ) -> bool:
        """The first handoff of a reply; False when one is recorded already. `watch` puts it
        on the watch's list (the SLA is on and the SDR's key is known). One round trip."""
        keys, args = self._record_call(reply_id, email, sdr_id, thread_id, watch)
        return bool(self._record(keys=keys, args=args))

    def record_in(
        self,
        pipe: Any,
        reply_id: str,
        email: str | None,
        sdr_id: str,
        thread_id: str | None,
        *,
        watch: bool,
    ) -> None:
        """The same, queued on `pipe` (a pipeline the caller executes: its answer 1 or 0), so
        the record shares a round trip with the outcome's. EVAL, not EVALSHA: a pipeline
        cannot load a script it finds missing without sending everything again."""
        keys, args = self._record_call(reply_id, email, sdr_id, thread_id, watch)
        pipe.eval(RECORD, len(keys), *keys, *args)

    def _record_call(
        self, reply_id: str, email: str | None, sdr_id: str, thread_id: str | None, watch: bool
    ) -> tuple[list[str], list[Any]]:
        now = time.time()
        handoff = Handoff(reply_id, email, [Attempt(1, sdr_id, thread_id, now)])
        handoff.note("assigned", now, sdr_id=sdr_id, thread_id=thread_id)
        if not watch:
            handoff.state = "unwatched"
        keys = [self._keys.handoff(reply_id), self._keys.handoffs_all, self._keys.handoffs_open]
        args = [handoff.to_json(), self._ttl, reply_id, now, now - self._ttl, int(watch)]
        return keys, args

    def save(self, handoff: Handoff) -> None:
        """Store a changed record; it leaves the watch's list once it is no longer open."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.handoff(handoff.reply_id), handoff.to_json(), ex=self._ttl, xx=True)
            if handoff.state == OPEN:
                pipe.zadd(self._keys.handoffs_open, {handoff.reply_id: handoff.current.at})
            else:
                pipe.zrem(self._keys.handoffs_open, handoff.reply_id)
            pipe.execute()

    def get(self, reply_id: str) -> Handoff | None:
        raw = self._redis.get(self._keys.handoff(reply_id))
        return Handoff.from_json(raw) if raw else None

    def watched(self) -> list[Handoff]:
        """Every handoff the watch watches, oldest first (a record gone with its TTL leaves)."""
        return self._load(self._keys.handoffs_open)

    def newest(self, limit: int = 1000) -> list[Handoff]:
        """The newest `limit` handoffs, oldest first."""
        return self._load(self._keys.handoffs_all, limit)

    def _load(self, index: str, limit: int | None = None) -> list[Handoff]:
        start = -limit if limit else 0
        ids = [text(i) for i in cast(list[bytes], self._redis.zrange(index, start, -1))]
        if not ids:
            return []
        raws = self._redis.mget([self._keys.handoff(i) for i in ids])
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            self._redis.zrem(index, *gone)
        return [Handoff.from_json(raw) for raw in raws if raw is not None]
