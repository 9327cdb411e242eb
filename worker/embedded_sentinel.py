"""A Redis primary, its replicas and three Sentinels on loopback, for failover on one machine.

The same binary as worker/embedded_redis.py (`redis-server sentinel.conf --sentinel`), each on
a free port in a temporary folder. `SentinelGroup` starts them and waits until the Sentinels
know the replicas and each other (a failover needs the quorum), says where the primary is now
(`url`, asked of the Sentinels), cuts its replicas off, kills it with SIGKILL, waits for the
failover, and brings a killed node back as a replica of the new primary. Used by the failover test
(tests/e2e/test_sentinel_failover_e2e.py), its bench scenario (bench/failover.py) and the
Sentinel tests of worker/redis_conn.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from worker.deadline import wait_until
from worker.embedded_redis import EmbeddedRedis, answers, free_port, server_binary

MASTER = "leadrouter"
#: how long a Sentinel waits for a PONG before it calls a node down. Not 1000: a Sentinel pings a
#: primary it just switched to for the first time one ping period (1 s) after it switched, and
#: counts from the switch, so at 1000 it can call the new primary down before its first PONG and
#: fail over again (seen here: a second failover 1.03 s after the first, and ~10 s of two
#: primaries until the Sentinels turned the old one back into a replica)
DOWN_AFTER_MS = 1500
#: replicas sync as their own user, so `cut_replication` can shut them out and nobody else
REPLICATION = (
    "--user", "replicator", "on", ">replicator-pass", "+psync", "+replconf", "+ping",
    "--masteruser", "replicator", "--masterauth", "replicator-pass",
)  # fmt: skip


def _ask(port: int, *command: Any) -> Any:
    """One command to the server on `port`, with short timeouts; None when it does not answer."""
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=1) as client:
            return client.execute_command(*command)
    except (redis.RedisError, OSError):
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _online_replicas(port: int) -> int:
    """How many replicas the server on `port` streams to (INFO replication), 0 if it is gone."""
    info = _ask(port, "INFO", "replication")
    if not isinstance(info, dict):
        return 0
    return sum(
        1
        for key, value in info.items()
        if str(key).startswith("slave")
        and isinstance(value, dict)
        and value.get("state") == "online"
    )


class EmbeddedSentinel:
    """One Sentinel monitoring `MASTER` at `primary_port` on loopback."""

    def __init__(
        self, primary_port: int, *, quorum: int = 2, down_after_ms: int = DOWN_AFTER_MS
    ) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="leadrouter-sentinel-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.config = self.folder / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.folder}\n"
            f"logfile {self.folder / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER} {max(2000, 3 * down_after_ms)}\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedSentinel:
        argv = [server_binary(), str(self.config), "--sentinel"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process = self.process
        wait_until(
            lambda: process.poll() is None and answers(f"redis://{self.address}", 0.2),
            timeout,
            0.05,
            what=f"sentinel on port {self.port}",
        )
        return self

    def master(self) -> dict[str, str]:
        """SENTINEL MASTER's fields for `MASTER` (empty when it does not answer)."""
        found = _ask(self.port, "SENTINEL", "MASTER", MASTER)
        if not isinstance(found, dict):
            return {}
        return {_text(k): _text(v) for k, v in found.items()}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class SentinelGroup:
    """A primary, `replicas` replicas of it and `sentinels` Sentinels (quorum 2), started
    together; `stop()` removes every one of them."""

    def __init__(
        self, *, replicas: int = 1, sentinels: int = 3, down_after_ms: int = DOWN_AFTER_MS
    ) -> None:
        self.primary = EmbeddedRedis(extra_args=REPLICATION)
        self.nodes = [self.primary] + [
            EmbeddedRedis(replica_of=self.primary.port, extra_args=REPLICATION)
            for _ in range(replicas)
        ]
        self.sentinels = [
            EmbeddedSentinel(self.primary.port, down_after_ms=down_after_ms)
            for _ in range(sentinels)
        ]

    @property
    def addresses(self) -> str:
        """REDIS_SENTINELS: the Sentinels' host:port, comma-separated."""
        return ",".join(s.address for s in self.sentinels)

    def env(self) -> dict[str, str]:
        """The settings that point a deployment at these Sentinels."""
        return {"REDIS_SENTINELS": self.addresses, "REDIS_SENTINEL_MASTER": MASTER}

    def start(self, timeout: float = 30.0) -> SentinelGroup:
        """Every node and Sentinel, once the replicas are in sync and each Sentinel sees them
        and the other Sentinels."""
        try:
            for node in self.nodes:
                node.start()
            wait_until(self._replicas_linked, timeout, 0.05, what="replicas in sync")
            for sentinel in self.sentinels:
                sentinel.start()
            wait_until(self._sentinels_ready, timeout, 0.1, what="sentinels aware of each other")
        except BaseException:
            self.stop()
            raise
        return self

    def _replicas_linked(self) -> bool:
        return _online_replicas(self.primary.port) >= len(self.nodes) - 1

    def _sentinels_ready(self) -> bool:
        others, replicas = str(len(self.sentinels) - 1), str(len(self.nodes) - 1)
        return all(
            (m := s.master()).get("num-other-sentinels") == others
            and m.get("num-slaves") == replicas
            for s in self.sentinels
        )

    def primary_port(self) -> int | None:
        """The primary's port as the first Sentinel that answers says, or None."""
        for sentinel in self.sentinels:
            found = _ask(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            if isinstance(found, list) and len(found) == 2:
                return int(found[1])
        return None

    @property
    def url(self) -> str:
        """The current primary's URL (for a test's own client, not the service's)."""
        return f"redis://127.0.0.1:{self.primary_port()}/0"

    def node(self, port: int) -> EmbeddedRedis:
        return next(n for n in self.nodes if n.port == port)

    def kill_primary(self) -> EmbeddedRedis:
        """SIGKILL the current primary's process; the node, to `revive` later."""
        port = self.primary_port()
        if port is None:
            raise RuntimeError("no Sentinel names a primary")
        killed = self.node(port)
        if killed.process is not None:
            killed.process.kill()
            killed.process.wait(10)
        return killed

    def cut_replication(self) -> None:
        """Shut the replicas out of the primary (a partition between them while clients still
        reach it): the replication user is disabled and the replicas' links are dropped, so
        what the primary takes from now on no replica has."""
        port = self.primary_port()
        if port is None:
            raise RuntimeError("no Sentinel names a primary")
        _ask(port, "ACL", "SETUSER", "replicator", "off")
        _ask(port, "CLIENT", "KILL", "TYPE", "replica")

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until the Sentinels name a new primary that says it is one; its port."""

        def promoted() -> int | None:
            port = self.primary_port()
            if port is None or port == old_port:
                return None
            role = _ask(port, "ROLE")
            return port if isinstance(role, list) and role and role[0] == b"master" else None

        found: int = wait_until(promoted, timeout, 0.05, what="a new primary")
        return found

    def revive(self, node: EmbeddedRedis, timeout: float = 30.0) -> None:
        """Start a killed node again on its port as a replica of the primary the Sentinels name
        now (as a supervisor that asks them at start does; left to the Sentinels, a node that
        comes back as a primary is turned into a replica only ~10-15 s later); return once it
        is in sync."""
        node.replica_of = self.primary_port()
        node.start()
        wait_until(
            lambda: self.primary_port() != node.port and self._replicas_linked_to_current(),
            timeout,
            0.1,
            what=f"port {node.port} back as a replica",
        )

    def _replicas_linked_to_current(self) -> bool:
        port = self.primary_port()
        if port is None:
            return False
        alive = sum(1 for n in self.nodes if n.process and n.process.poll() is None)
        return _online_replicas(port) >= alive - 1

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
