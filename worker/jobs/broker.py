"""Poison on the broker: a message that cannot be decoded goes to the dead-letter list.

Out of the box, kombu's Redis transport raises on an item that is not JSON after it has popped
it (the worker dies, and the item is gone), and Celery logs and drops a message it cannot read.
`Transport` (a kombu Redis transport whose channel dead-letters an undecodable item instead) and
`Consumer` (worker/jobs/consumer.py: a Celery consumer whose decode, unknown-task and
invalid-task hooks dead-letter the message before acknowledging it) keep such messages for an
operator, and the queue flows on. The transport is loaded by every process that publishes
(beat too), the consumer only by workers: it brings in Celery's worker.
`SentinelTransport` is the same over kombu's Sentinel transport (REDIS_SENTINELS): its channel
is ours with kombu's Sentinel-managed pools. Each is selected in worker/jobs/celery_app.py
(worker/redis_conn.py `broker_config`). Dead letters are written with a plain client (our keys
carry the prefix themselves) on the channel's own pool, so they follow a failover too.
The channel's `QoS` also records which worker holds each unacked message (worker/jobs/liveness.py)
and writes kombu's ack emulation with one Lua script per message taken (`APPEND`) and one per
ack or reject without requeue (`REMOVE`), not kombu's MULTI pipelines (far more client CPU).
`_brpop_read`, `QoS.append`, `ack` and `reject` follow kombu 5.7.0's (key names, the way its
client prefixes an EVALSHA's keys), which the project pins; the `poison` scenario
(tests/reliability/scenarios.py, run by tests/e2e/test_reliability.py) runs a real worker
against it.
"""

# kombu's channel internals (_connparams, _queue_cycle...) are not in its type hints.
# mypy: disable-error-code="attr-defined"

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from functools import cached_property
from queue import Empty
from typing import Any, cast

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from redis.commands.core import Script

from worker.jobs.deadletter import DeadLetter, DeadLetters
from worker.jobs.liveness import HOLDER_OPTION
from worker.keys import UNACKED_HOLDERS, Keys
from worker.logs import get_logger

log = get_logger("leadrouter.broker")
MAX_RAW = 64 * 1024


def poison_entry(queue: str, raw: bytes | str, error: Exception, task: str = "") -> DeadLetter:
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace")
    digest = hashlib.sha256(data).hexdigest()[:16]
    return DeadLetter(
        id=f"poison:{digest}",
        task=task or "(undecodable)",
        queue=queue,
        args=[data[:MAX_RAW].decode("utf-8", "replace")],
        error=f"{type(error).__name__}: {str(error)[:300]}",
        error_type="PoisonMessage",
        attempts=1,
        at=time.time(),
    )


def poison_store(channel: Any, prefix: str) -> DeadLetters:
    """The dead letters through `channel`'s own (sync) pool, to REDIS_URL or to the primary
    Sentinel names, with a plain client: our keys carry the prefix themselves."""
    return DeadLetters(redis.Redis(connection_pool=channel.pool), Keys(prefix))


# Our QoS's writes, one EVALSHA each instead of a MULTI (atomic the same way: the server runs a
# script whole). kombu's prefixed client prefixes only the first key of an EVALSHA (kombu's
# `_script_binding_deadlines`): KEYS are kombu's unacked index (prefixed by the client), then its
# unacked hash and our holders hash, passed with the prefix, so every key is the one kombu's
# pipeline wrote. ARGV: the delivery tag, then for APPEND the time taken, kombu's entry and the
# holder (absent: none recorded).
APPEND = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
"""
REMOVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
"""


class QoS(kombu_redis.QoS):
    """kombu's ack emulation, plus who holds each unacked message (worker/jobs/liveness.py):
    written with kombu's entry, removed with it (ack, reject, restore).

    `append`, `ack` and `reject` follow kombu 5.7.0's, but each write is one script (`APPEND`,
    `REMOVE`) where kombu runs a MULTI: a transaction costs the client a parsed reply per
    command, which was a fifth of a worker's CPU. A process without HOLDER_OPTION records no
    holder. kombu's restores (`restore_by_tag`: a reject with requeue, the visibility sweep, a
    channel's close) still remove in their own transaction, through `_remove_from_indices`."""

    @cached_property
    def holder(self) -> str | None:
        connection: Any = self.channel.connection.client  # kombu's Connection
        return connection.transport_options.get(HOLDER_OPTION) or None

    @cached_property
    def _script_keys(self) -> list[str]:
        prefix = self.channel.global_keyprefix
        return [self.unacked_index_key, prefix + self.unacked_key, prefix + UNACKED_HOLDERS]

    @cached_property
    def _append_script(self) -> Script:
        return self._register(APPEND)

    @cached_property
    def _remove_script(self) -> Script:
        return self._register(REMOVE)

    def _register(self, source: str) -> Script:
        """Once per QoS: the client only gives the script its encoder (for the SHA); each call
        names the channel's current client, and a server without the script (restarted, failed
        over) is sent it again by redis-py's `Script`."""
        with self.channel.conn_or_acquire() as client:
            return cast(Script, client.register_script(source))

    def _run(self, script: Script, args: list[Any]) -> None:
        """One script on the channel's client; a Redis error propagates (a broker error)."""
        with self.channel.conn_or_acquire() as client:
            script(keys=self._script_keys, args=args, client=client)

    def append(self, message: Any, delivery_tag: Any) -> None:
        delivery = message.delivery_info
        entry = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        args = [delivery_tag, time.time(), entry]
        if self.holder is not None:
            args.append(self.holder)
        self._run(self._append_script, args)
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: Any) -> None:
        self._run(self._remove_script, [delivery_tag])
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue:  # kombu's restore_by_tag, in its transaction
            return super().reject(delivery_tag, requeue=True)
        self._run(self._remove_script, [delivery_tag])
        virtual.QoS.ack(self, delivery_tag)  # as kombu's reject does
        return None

    def _remove_from_indices(self, delivery_tag: Any, pipe: Any = None) -> Any:
        """kombu's removal in a pipeline (its restores pass theirs), plus the holder."""
        pipe = super()._remove_from_indices(delivery_tag, pipe)  # type: ignore[misc]
        return pipe.hdel(UNACKED_HOLDERS, delivery_tag)


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, but an undecodable item is dead-lettered, not fatal, and the
    holder of each unacked message is recorded (`QoS`)."""

    QoS = QoS
    _poison_store: DeadLetters | None = None

    def _dead_letter(self, queue: str, item: bytes, error: Exception) -> None:
        if self._poison_store is None:
            self._poison_store = poison_store(self, self.global_keyprefix)
        entry = poison_entry(queue, item, error)
        self._poison_store.add(entry)
        log.error(
            "task.poison",
            queue=queue,
            entry_id=entry.id,
            error=entry.error,
            outcome="dead_lettered",
        )

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            try:
                message = loads(bytes_to_str(item))
                if not isinstance(message, dict):
                    raise ValueError("the item is JSON but not a message object")
                # builds kombu's Message, decoding the body (base64) before anyone tracks it
                self.connection._deliver(message, dest)
            except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                self._dead_letter(dest, item, exc)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    _sync_client: Any = None
    _sync_client_pool: Any = None

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """kombu builds a new Redis client object for every ack and every unacked put (two
        per task, a few percent of a worker's CPU); one per channel and pool does the same
        work. Redis client objects are thread-safe; a new pool after a reconnect gets a new
        client.

        A channel closed after a lost connection (Celery's `collect()` first drops the
        transport's client, then the close disconnects the pools and restores the unacked
        messages) has nothing to build a pool from: kombu's own code then raises AttributeError,
        which Celery does not expect and which stops the worker (seen in a Sentinel failover).
        A ConnectionError instead is ignored by the close like any broker error; the messages
        stay in kombu's unacked hash for its visibility sweep."""
        if client:
            yield client
            return
        if self._pool is None and (self.connection is None or self.connection.client is None):
            raise redis.ConnectionError("the broker channel is closed")
        pool = self.pool
        if self._sync_client is None or self._sync_client_pool is not pool:
            self._sync_client = self._create_client()
            self._sync_client_pool = pool
        yield self._sync_client


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """Our channel (poison dead-lettered, one client per pool) on kombu's Sentinel-managed
    pools: its `_get_pool` and connection classes come from kombu's Sentinel channel."""


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel
