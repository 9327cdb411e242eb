"""Every name that outlives a deploy: Redis keys, queue names and Celery task names.

Messages queued before an upgrade must still run after it, so none of these may change. Our keys
share one prefix so deployments can share a Redis; Celery's own keys (queues, unacked messages)
get the same prefix through kombu's `global_keyprefix`, so `Keys.queue()` is the list a task
message is pushed onto. `text()` reads a name or value back from Redis, which answers in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

QUEUE_ASSIGN = "assign"
QUEUE_FOLLOWUPS = "followups"
QUEUE_DEFAULT = "default"
QUEUES = (QUEUE_ASSIGN, QUEUE_FOLLOWUPS, QUEUE_DEFAULT)

TASK_ASSIGN = "leadrouter.assign_reply"
TASK_POLL = "leadrouter.poll_followups"
TASK_ROUTE = "leadrouter.route_followup"
TASK_NOTIFY = "leadrouter.deliver_notification"
TASK_RELEASE = "leadrouter.release_due"
TASK_CANARY = "leadrouter.canary"
TASK_MAILBOXES = "leadrouter.check_mailboxes"
TASK_RECONCILE = "leadrouter.reconcile_replies"
TASK_WATCH = "leadrouter.watch_handoffs"
TASK_RECOVER = "leadrouter.recover_orphans"
#: completes a follow-up in Leadterra once its draft was sent (worker/drafts/sending.py)
TASK_COMPLETE = "leadrouter.complete_followup"

#: who holds each message in kombu's unacked hash (worker/jobs/liveness.py); named without the
#: prefix because kombu's client adds it (`Keys.unacked_holders` is the full name)
UNACKED_HOLDERS = "unacked_holders"

#: the task message header that says since when a message may run (unix seconds): stamped by
#: `task_message` and, for what Celery publishes, by worker/jobs/celery_app.py; read at task start
#: for `leadrouter_queue_wait_seconds` (worker/jobs/queuewait.py)
ENQUEUED_AT_HEADER = "enqueued_at"


def text(value: bytes | str) -> str:
    """A Redis answer as a string (redis-py gives bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Keys:
    prefix: str = "leadrouter:"

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def queue(self, name: str) -> str:
        """The Redis list kombu reads a queue from (prefix included)."""
        return self.prefix + name

    @property
    def unacked(self) -> str:
        """kombu's hash of the messages workers hold and have not acknowledged."""
        return self.prefix + "unacked"

    @property
    def unacked_index(self) -> str:
        """kombu's sorted set of the unacked messages' delivery tags, by when they were taken."""
        return self.prefix + "unacked_index"

    @property
    def unacked_holders(self) -> str:
        """Which worker holds each unacked message, by delivery tag (worker/jobs/liveness.py)."""
        return self.prefix + UNACKED_HOLDERS

    def worker_alive(self, worker: str) -> str:
        """Set by a live worker every few seconds, with a TTL (worker/jobs/liveness.py)."""
        return self._k("workers", "alive", worker)

    @property
    def beat_leader(self) -> str:
        """The process sending beat's schedule now, with a TTL (worker/jobs/beat_lease.py)."""
        return self._k("beat", "leader")

    @property
    def inflight(self) -> str:
        """Each reply's assign message, from its enqueue to its outcome (worker/jobs/orphans.py)."""
        return self._k("inflight", "messages")

    @property
    def inflight_at(self) -> str:
        """When each in-flight reply was last known to be somewhere (a sorted set)."""
        return self._k("inflight", "at")

    @property
    def orphans_lock(self) -> str:
        return self._k("inflight", "lock")

    # receiver
    def seen(self, reply_id: str) -> str:
        return self._k("seen", reply_id)

    # assignment
    def pick(self, reply_id: str, attempt: int = 1) -> str:
        """The remembered pick of a reply's handoff (attempt 1) or of an SLA re-route."""
        if attempt == 1:
            return self._k("pick", reply_id)
        return self._k("pick", reply_id, str(attempt))

    def done(self, reply_id: str) -> str:
        return self._k("done", reply_id)

    @property
    def sdr_cache(self) -> str:
        return self._k("sdrs", "connected")

    @property
    def sdr_refreshing(self) -> str:
        """Held (10 s) by the process refreshing the SDR cache ahead of its expiry."""
        return self._k("sdrs", "refreshing")

    @property
    def sdr_last_known(self) -> str:
        """The last `GET /v1/sdrs` answer, kept past the cache's TTL for the console."""
        return self._k("sdrs", "last_known")

    @property
    def rotation_credit(self) -> str:
        return self._k("rotation", "credit")

    @property
    def rotation_count(self) -> str:
        return self._k("rotation", "count")

    @property
    def decisions(self) -> str:
        return self._k("rotation", "decisions")

    def daily_count(self, sdr_id: str, day: str) -> str:
        return self._k("cap", day, sdr_id)

    def sticky(self, account: str) -> str:
        return self._k("sticky", account)

    @property
    def mailbox_health(self) -> str:
        return self._k("mailbox", "health")

    # delivery and waiting
    def deliveries(self, task_id: str, retries: int) -> str:
        return self._k("deliveries", task_id, str(retries))

    @property
    def delayed(self) -> str:
        return self._k("delayed")

    @property
    def held(self) -> str:
        return self._k("held")

    @property
    def dlq(self) -> str:
        return self._k("dlq", "entries")

    @property
    def dlq_index(self) -> str:
        return self._k("dlq", "index")

    # rate limit
    @property
    def rate_tat(self) -> str:
        return self._k("ratelimit", "tat")

    @property
    def rate_pause(self) -> str:
        return self._k("ratelimit", "pause_until")

    # follow-ups
    @property
    def poll_lock(self) -> str:
        return self._k("followups", "poll_lock")

    def followup_claim(self, followup_id: str, due_at: str) -> str:
        return self._k("followups", "claim", followup_id, due_at)

    # drafts on due follow-ups and their one-click send (worker/drafts/)
    def draft_of(self, followup_id: str, due_at: str) -> str:
        """The id of the draft generated for a follow-up at one due time: one per pair."""
        return self._k("drafts", "of", followup_id, due_at)

    def draft(self, draft_id: str) -> str:
        """A draft's record by its id (what a send link names)."""
        return self._k("drafts", "record", draft_id)

    def draft_generating(self, followup_id: str, due_at: str) -> str:
        """Held while one task generates that draft, so a redelivered copy waits, not spends."""
        return self._k("drafts", "generating", followup_id, due_at)

    def draft_send(self, draft_id: str) -> str:
        """A draft's send: claimed, sent, unknown (never sent again) or why it was refused."""
        return self._k("drafts", "send", draft_id)

    def followup_sent(self, followup_id: str) -> str:
        """Set once a follow-up's draft was sent: a later poll completes it, never notifies."""
        return self._k("drafts", "followup_sent", followup_id)

    def drafts_daily(self, day: str) -> str:
        """Drafts generated on a UTC day (`YYYY-MM-DD`), against FOLLOWUP_DRAFTS_DAILY_CAP."""
        return self._k("drafts", "daily", day)

    def slack_replay(self, token: str) -> str:
        """One Slack request seen (worker/oneclick/slack_auth.py's `replay_key`)."""
        return self.prefix + token

    # the second path: the reconcile sweep (worker/intake/)
    @property
    def reconcile_lock(self) -> str:
        return self._k("reconcile", "lock")

    @property
    def reconcile_watermark(self) -> str:
        return self._k("reconcile", "watermark")

    @property
    def reconcile_resume(self) -> str:
        return self._k("reconcile", "resume")

    @property
    def reconcile_last_success(self) -> str:
        return self._k("reconcile", "last_success")

    # the SLA watch after the handoff (worker/sla/)
    def handoff(self, reply_id: str) -> str:
        return self._k("handoff", reply_id)

    @property
    def handoffs_all(self) -> str:
        return self._k("handoffs", "all")

    @property
    def handoffs_open(self) -> str:
        return self._k("handoffs", "open")

    @property
    def sla_lock(self) -> str:
        return self._k("sla", "lock")

    def sla_claim(self, reply_id: str, attempt: int) -> str:
        """Taken before a re-route calls Leadterra: at most one call per (reply, attempt)."""
        return self._k("sla", "claim", reply_id, str(attempt))

    @property
    def last_webhook(self) -> str:
        return self._k("webhooks", "last_received")

    # the console's counters (worker/console/counters.py)
    def stats_day(self, day: str, kind: str) -> str:
        """A UTC day's (`YYYY-MM-DD`) counts of one kind: `assigned` per SDR, `source` (the
        assignments by how the reply came), `followups` (decisions per SDR)."""
        return self._k("stats", day, kind)

    def stats_minute(self, minute: int) -> str:
        """One minute's counts (unix minute): verified webhooks, Leadterra failures by status."""
        return self._k("stats", "minute", str(minute))

    # health and metrics
    @property
    def heartbeat(self) -> str:
        return self._k("heartbeat", "consumed")

    @property
    def metrics(self) -> str:
        return self._k("metrics")
