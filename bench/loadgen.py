"""A cheap webhook load generator, run as its own process: `python -m bench.loadgen SPEC OUT`.

Raw asyncio protocol on uvloop over keep-alive connections: every request (a unique signed
`reply.received` body, lowercase hex HMAC-SHA256 in X-Leadterra-Signature) is built before the
clock starts, the answer is read by Content-Length, and nothing else runs per request, so the
generator spends a few microseconds per call where the server spends a hundred or more.

Modes (SPEC is a JSON file):
    duration  `connections` closed loops for `warmup` + `seconds`; only the window is measured
    count     `count` requests over `connections` closed loops, every accept time recorded
    rate      `count` requests at a fixed `rate` per second (open loop), accept times recorded

It reports its own CPU over the window, and the CPU of the process trees in `watch`
(`{"name": pid}`), so one window gives both sides of the 2-core competition.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from bench.common import latency_summary, raise_file_limit, run_json_child
from bench.loadcheck import take_response
from bench.procfs import machine_busy_seconds, tree_cpu_seconds
from worker.children import Children

BODY = (
    '{"event":"reply.received","timestamp":"%(ts)s","data":{"reply":{"id":"%(id)s",'
    '"email":"lead.%(id)s@example.com","campaignId":"camp_bench","classification":"interested",'
    '"receivedAt":"%(ts)s","threadSnippet":"Sounds interesting, can we talk next week?"}}}'
)


def reply_id(prefix: str, n: int) -> str:
    """The n-th reply id (from 1), the same ids the sandbox's bulk seeding makes."""
    return f"{prefix}{n:06d}"


class Requests:
    """Pre-built HTTP/1.1 requests; built on demand past `prebuilt` (never in a measured run)."""

    def __init__(self, url: str, secret: str, prefix: str, prebuild: int) -> None:
        parts = urlsplit(url)
        self.head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self.secret = secret.encode()
        self.prefix = prefix
        self.ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.built = [self.build(n) for n in range(prebuild)]
        self.built_late = 0

    def build(self, index: int) -> bytes:
        body = (BODY % {"id": reply_id(self.prefix, index + 1), "ts": self.ts}).encode()
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return b"%bX-Leadterra-Signature: %b\r\nContent-Length: %d\r\n\r\n%b" % (
            self.head,
            signature.encode(),
            len(body),
            body,
        )

    def get(self, index: int) -> bytes:
        if index < len(self.built):
            return self.built[index]
        self.built_late += 1
        return self.build(index)


@dataclass
class Stats:
    measuring: bool = False
    done: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    connection_errors: int = 0
    reconnects: int = 0


class Conn(asyncio.Protocol):
    """One keep-alive connection; the generator tells it what to send next."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.index: int | None = None
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, index: int) -> None:
        assert self.transport is not None
        self.index = index
        self.sent = time.perf_counter()
        self.transport.write(self.gen.requests.get(index))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        taken = take_response(self.buffer)
        if taken is None:
            return
        status, self.buffer = taken
        index, self.index = self.index, None
        self.gen.answered(self, index, status, self.sent)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class Generator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.mode = spec["mode"]
        self.url = urlsplit(spec["url"])
        self.connections = int(spec["connections"])
        self.count = int(spec.get("count", 0))
        prebuild = self.count or int(spec.get("prebuild", 200_000))
        self.requests = Requests(spec["url"], spec["secret"], spec["prefix"], prebuild)
        self.stats = Stats()
        self.running = True
        self.next = 0
        self.due: collections.deque[int] = collections.deque()
        self.retry: collections.deque[int] = collections.deque()
        self.idle: list[Conn] = []
        self.accepted: dict[int, float] = {}
        self.remaining = self.count
        self.finished: asyncio.Future[None] | None = None
        self.wall_offset = time.time() - time.perf_counter()

    # -- what to send ---------------------------------------------------------------------------

    def next_index(self) -> int | None:
        if not self.running:
            return None
        if self.retry:
            return self.retry.popleft()
        if self.mode == "rate":
            return self.due.popleft() if self.due else None
        if self.mode == "count" and self.next >= self.count:
            return None
        self.next += 1
        return self.next - 1

    def dispatch(self, conn: Conn) -> None:
        index = self.next_index()
        if index is None:
            self.idle.append(conn)
        else:
            conn.send(index)

    def wake(self) -> None:
        while self.idle and (self.due or self.retry):
            self.dispatch(self.idle.pop())

    # -- what came back -------------------------------------------------------------------------

    def answered(self, conn: Conn, index: int | None, status: int, sent: float) -> None:
        now = time.perf_counter()
        stats = self.stats
        if stats.measuring:
            stats.done += 1
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            stats.latencies.append(now - sent)
        if index is not None and self.mode != "duration":
            if status < 300:
                self.accepted.setdefault(index, now + self.wall_offset)
                self.remaining -= 1
            else:
                self.retry.append(index)  # counted above; delivered again, as Leadterra would
            if self.remaining <= 0 and self.finished and not self.finished.done():
                self.finished.set_result(None)
        self.dispatch(conn)

    def lost(self, conn: Conn) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if not self.running:
            return
        if conn.index is not None:
            self.stats.connection_errors += 1
            self.retry.append(conn.index)
        self.stats.reconnects += 1
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: Conn(self), self.url.hostname or "127.0.0.1", self.url.port or 80
        )
        self.dispatch(conn)

    async def schedule(self, rate: float) -> None:
        started = time.perf_counter()
        for index in range(self.count):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self.due.append(index)
            self.wake()

    # -- a run ----------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        watch = {name: int(pid) for name, pid in self.spec.get("watch", {}).items()}
        conns = []
        for _ in range(self.connections):
            _, conn = await loop.create_connection(
                lambda: Conn(self), self.url.hostname or "127.0.0.1", self.url.port or 80
            )
            conns.append(conn)
        self.idle = list(conns)
        if self.mode == "duration":
            for conn in list(self.idle):
                self.idle.remove(conn)
                self.dispatch(conn)
            await asyncio.sleep(float(self.spec.get("warmup", 2.0)))
        cpu0 = {name: tree_cpu_seconds(pid) for name, pid in watch.items()}
        busy0 = machine_busy_seconds()
        own0, t0 = time.process_time(), time.perf_counter()
        self.stats.measuring = True
        if self.mode == "duration":
            await asyncio.sleep(float(self.spec["seconds"]))
        else:
            self.finished = loop.create_future()
            if self.mode == "rate":
                scheduler = loop.create_task(self.schedule(float(self.spec["rate"])))
            else:
                for conn in list(self.idle):
                    self.idle.remove(conn)
                    self.dispatch(conn)
            await asyncio.wait_for(self.finished, float(self.spec.get("timeout", 600)))
            if self.mode == "rate":
                await scheduler
        self.stats.measuring = False
        elapsed = time.perf_counter() - t0
        own = time.process_time() - own0
        cpu = {name: round(tree_cpu_seconds(pid) - cpu0[name], 3) for name, pid in watch.items()}
        cpu["machine"] = round(machine_busy_seconds() - busy0, 3)
        self.running = False
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0.05)
        return self.report(elapsed, own, cpu, t0)

    def report(
        self, elapsed: float, own: float, cpu: dict[str, float], t0: float
    ) -> dict[str, Any]:
        stats = self.stats
        ok = sum(n for status, n in stats.statuses.items() if status < 300)
        machine = cpu.pop("machine")
        ours = own + sum(cpu.values())
        out: dict[str, Any] = {
            "mode": self.mode,
            "connections": self.connections,
            "elapsed_s": round(elapsed, 3),
            "started_at": t0 + self.wall_offset,
            "responses": stats.done,
            "accepted": ok,
            "accepted_per_s": round(ok / elapsed, 1),
            "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
            "errors": stats.done - ok + stats.connection_errors,
            "connection_errors": stats.connection_errors,
            "reconnects": stats.reconnects,
            "latency": latency_summary(stats.latencies),
            "cpu_s": {"loadgen": round(own, 3), **cpu},
            "cores": {name: round(v / elapsed, 2) for name, v in {"loadgen": own, **cpu}.items()},
            "machine_cores": round(machine / elapsed, 2),
            "other_cores": round((machine - ours) / elapsed, 2),
            "built_during_run": self.requests.built_late,
        }
        if self.mode != "duration":
            out["accepted_at"] = {
                reply_id(self.spec["prefix"], i + 1): t for i, t in self.accepted.items()
            }
        return out


def run(procs: Children, name: str, spec: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run the generator as a child process with `spec`; its report."""
    return run_json_child(procs, name, "bench.loadgen", spec, timeout, "load generator")


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as spec_file:
        spec = json.load(spec_file)
    raise_file_limit()
    import uvloop

    result = uvloop.run(Generator(spec).run())
    with open(out_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
