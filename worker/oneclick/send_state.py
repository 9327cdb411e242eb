"""The record of one draft's send in Redis (`keys.draft_send(draft)`): what makes it exactly once.

    (none) --claim--> claimed --sent--> sent          (for good; the follow-up marked sent,
                         |                             its completion task enqueued, one step)
                         +--unknown--> unknown        (for good: never sent again)
                         +--release--> (none)         (blocked or refused: a later click tries)

`claim` is one Lua call: it returns the state someone else holds, refuses when our record says a
draft of this follow-up was sent (`followup_sent`), or takes the claim (SET NX). Only the winner
calls Leadterra. Every state lives as long as the draft's record (`RECORD_TTL_SECONDS`), so a late
click still finds it; a claim whose holder died keeps the draft unsendable, which is the point.
Values are JSON: the state, who acted (`link` or `slack:<user>`), when, and a token that lets the
holder give back only its own claim.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, replace

import redis

from worker.drafts.record import RECORD_TTL_SECONDS, DraftRecord
from worker.jobs.queueing import task_message
from worker.keys import QUEUE_FOLLOWUPS, TASK_COMPLETE, Keys, text

CLAIMED = "claimed"
SENT = "sent"
UNKNOWN = "unknown"
#: how long `followup_sent` keeps a follow-up from being notified or sent again
FOLLOWUP_SENT_TTL_SECONDS = 30 * 24 * 3600
FOLLOWUP_SENT = "followup_sent"
WON = "won"

# KEYS: draft_send, followup_sent. ARGV: our claim (JSON), its TTL.
# Answers the state held (JSON), "followup_sent", or "won".
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then return held end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'followup_sent' end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 'won'
"""

# KEYS: draft_send. ARGV: the claim as we wrote it. Deletes it only if it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class SendState:
    state: str
    actor: str
    #: when the claim was taken (unix seconds, our clock)
    at: float
    token: str
    message_id: str | None = None
    #: when the send ended (sent or unknown)
    finished_at: float | None = None
    #: for `unknown`: the error's type name (never its text)
    error: str | None = None

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, raw: bytes | str) -> SendState:
        fields = json.loads(text(raw))
        return cls(**{name: fields.get(name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Claim:
    """`won` when this caller may send; else `held` (someone's state) or `followup_sent`."""

    won: SendState | None = None
    held: SendState | None = None
    followup_sent: bool = False


def completion_message(record: DraftRecord) -> str:
    """The `leadrouter.complete_followup` task message for the record's follow-up."""
    payload = {"id": record.followup_id, "sdrId": record.sdr_id, "draftId": record.draft_id}
    return task_message(
        TASK_COMPLETE,
        [payload],
        queue=QUEUE_FOLLOWUPS,
        argsrepr=f"[followup {record.followup_id}]",
    )


class SendStates:
    """Each draft's send state; see the module docstring."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl: int = RECORD_TTL_SECONDS) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl
        self._claim = client.register_script(CLAIM)
        self._release = client.register_script(RELEASE)

    def read(self, draft_id: str) -> SendState | None:
        raw = self._redis.get(self._keys.draft_send(draft_id))
        return SendState.loads(raw) if raw else None

    def followup_sent(self, followup_id: str) -> bool:
        return bool(self._redis.exists(self._keys.followup_sent(followup_id)))

    def claim(self, record: DraftRecord, actor: str, now: float) -> Claim:
        mine = SendState(CLAIMED, actor, now, uuid.uuid4().hex)
        answer = text(
            self._claim(
                keys=[
                    self._keys.draft_send(record.draft_id),
                    self._keys.followup_sent(record.followup_id),
                ],
                args=[mine.dumps(), self._ttl],
            )
        )
        if answer == WON:
            return Claim(won=mine)
        if answer == FOLLOWUP_SENT:
            return Claim(followup_sent=True)
        return Claim(held=SendState.loads(answer))

    def release(self, record: DraftRecord, mine: SendState) -> bool:
        """Give our claim back (nothing was sent); False when it was no longer ours."""
        key = self._keys.draft_send(record.draft_id)
        return bool(self._release(keys=[key], args=[mine.dumps()]))

    def sent(
        self, record: DraftRecord, mine: SendState, message_id: str | None, now: float
    ) -> SendState:
        """Sent, for good: the state, the follow-up's `followup_sent` mark and the completion
        task, in one transaction."""
        done = replace(mine, state=SENT, message_id=message_id, finished_at=now)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.draft_send(record.draft_id), done.dumps(), ex=self._ttl)
            pipe.set(
                self._keys.followup_sent(record.followup_id),
                record.draft_id,
                ex=FOLLOWUP_SENT_TTL_SECONDS,
            )
            pipe.lpush(self._keys.queue(QUEUE_FOLLOWUPS), completion_message(record))
            pipe.execute()
        return done

    def unknown(self, record: DraftRecord, mine: SendState, error: str, now: float) -> SendState:
        """The send may or may not have happened: kept for good, so it is never sent again."""
        done = replace(mine, state=UNKNOWN, finished_at=now, error=error)
        self._redis.set(self._keys.draft_send(record.draft_id), done.dumps(), ex=self._ttl)
        return done
