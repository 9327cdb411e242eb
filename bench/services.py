"""The processes under test, started the way the service starts them.

Redis (`redis-server` on a free port, no persistence), the Leadterra sandbox (`python -m
leadterra_sandbox`), and the service's own processes (`python -m worker web|worker|beat`) with the
environment the README documents, logging as users run them (LOG_LEVEL=INFO, JSON lines; a
scenario overrides it for its WARNING rows). A worker counts as ready when its consumer
connection is blocked in BRPOP on the queues (seen in Redis's CLIENT LIST), with no change to the
service.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.common import say
from leadterra_sandbox.client import SandboxControl
from worker.children import Child, Children
from worker.deadline import wait_http, wait_until
from worker.embedded_redis import EmbeddedRedis, free_port

#: the service's processes log as users run them (the default, INFO, JSON lines); the old rows'
#: level, WARNING, is measured beside it where a target is
LOG_LEVEL, QUIET_LOG_LEVEL = "INFO", "WARNING"
ASSIGN_ENDPOINT = "POST /v1/replies/{id}/assign"
SECRET = "whsec_bench_0123456789abcdef"
API_KEY = "sk_test_workspace"
PREFIX = "bench:"
WEBHOOK_PATH = "/webhooks/leadterra"


@dataclass
class RedisServer:
    proc: Child
    url: str

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def reset_stats(self) -> None:
        with self.client() as client:
            client.config_resetstat()

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the last reset (INFO commandstats), busiest first."""
        with self.client() as client:
            stats = client.info("commandstats")
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        return dict(sorted(calls.items(), key=lambda kv: -kv[1]))

    def blocked_consumers(self) -> int:
        """Connections blocked in BRPOP: one per idle Celery worker process."""
        with self.client() as client:
            return sum(1 for c in client.client_list() if c.get("cmd") == "brpop")


def start_redis(procs: Children) -> RedisServer:
    folder = Path(tempfile.mkdtemp(prefix="leadrouter-bench-redis-"))
    procs.on_exit(lambda: shutil.rmtree(folder, ignore_errors=True))
    server = EmbeddedRedis(folder=folder)
    proc = procs.start("redis", server.command())
    client = redis.Redis.from_url(server.url, socket_connect_timeout=0.2)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(answers, 10, 0.05, what="redis", alive=[proc])
    client.close()
    return RedisServer(proc, server.url)


@dataclass
class Sandbox:
    proc: Child
    api_url: str
    control: SandboxControl

    def wait_handoffs(self, count: int, timeout: float, alive: list[Child]) -> int:
        def enough() -> int:
            handoffs = int(self.control.summary()["state"]["handoffs"])
            return handoffs if handoffs >= count else 0

        return wait_until(enough, timeout, 0.25, what=f"{count} handoffs", alive=alive)

    def handoff_times(self) -> dict[str, float]:
        """Reply id -> when its (first) handoff was recorded, unix seconds."""
        from datetime import datetime

        found: dict[str, float] = {}
        for handoff in self.control.state()["handoffs"]:
            at = datetime.fromisoformat(handoff["at"].replace("Z", "+00:00")).timestamp()
            found.setdefault(handoff["replyId"], at)
        return found

    def answer_times(self, handoffs: dict[str, float]) -> list[float]:
        """The sandbox's own answer time for each handoff, seconds: from the arrival of the
        assign call that made it (the first answered 200) to the handoff, which the sandbox
        records after its latency and jitter (both on one clock; the handoff's to the ms)."""
        arrived: dict[str, float] = {}
        for call in self.control.calls(endpoint=ASSIGN_ENDPOINT):
            if call["status"] == 200:
                arrived.setdefault(call["path"].split("/")[3], call["at"])
        return [at - arrived[r] for r, at in handoffs.items() if r in arrived]


def start_sandbox(
    procs: Children,
    *,
    sdrs: int,
    disconnected: int = 0,
    latency_ms: float = 0,
    jitter_ms: float = 0,
) -> Sandbox:
    api, control_port = free_port(), free_port()
    argv = [
        sys.executable, "-m", "leadterra_sandbox",
        "--port", str(api), "--control-port", str(control_port),
        "--sdrs", str(sdrs), "--disconnected", str(disconnected),
        "--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms),
        "--max-calls", "2000000", "--log-level", "WARNING", "--seed", "7",
    ]  # fmt: skip
    proc = procs.start("sandbox", argv)
    control = SandboxControl(f"http://127.0.0.1:{control_port}", timeout=120)
    procs.on_exit(control.close)
    wait_until(_answers(control), 30, 0.1, what="sandbox", alive=[proc])
    return Sandbox(proc, f"http://127.0.0.1:{api}", control)


def _answers(control: SandboxControl) -> Any:
    def probe() -> bool:
        try:
            control.health()
            return True
        except httpx.HTTPError:
            return False

    return probe


@dataclass
class Service:
    """The environment of one deployment, and its processes (the sandbox is optional)."""

    redis: RedisServer
    sandbox: Sandbox | None = None
    port: int = field(default_factory=free_port)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            "REDIS_URL": self.redis.url,
            "KEY_PREFIX": PREFIX,
            "LEADTERRA_BASE_URL": self.sandbox.api_url if self.sandbox else "http://127.0.0.1:9",
            "LEADTERRA_API_KEY": API_KEY,
            "LEADTERRA_WEBHOOK_SECRET": SECRET,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "ADMIN_PORT": "0",  # a free one: deployments side by side must not share 9000
            "WORKER_CONCURRENCY": "32",
            "LEADTERRA_MAX_RPS": "100000",
            "LOG_LEVEL": LOG_LEVEL,
            "LOG_FORMAT": "json",
            **self.extra,
            **overrides,
        }

    def start_web(self, procs: Children, **env: str) -> Child:
        proc = procs.start("web", [sys.executable, "-m", "worker", "web"], self.env(**env))
        wait_http(self.url + "/healthz", 30, ok=(200,), alive=[proc])
        return proc

    def start_floor(self, procs: Children, kind: str) -> Child:
        """A bare ASGI floor (bench/floors.py) on this service's port and settings."""
        argv = [sys.executable, "-m", "bench.floors", kind]
        proc = procs.start(f"floor-{kind}", argv, self.env())
        wait_http(self.url + "/", 30, alive=[proc])
        return proc

    def start_workers(
        self, procs: Children, count: int, concurrency: int, name: str = "worker", **env: str
    ) -> list[Child]:
        """`count` worker processes of `concurrency` threads each, consuming when returned."""
        before = self.redis.blocked_consumers()
        started = [
            procs.start(
                f"{name}-{n}",
                [sys.executable, "-m", "worker", "worker"],
                self.env(WORKER_CONCURRENCY=str(concurrency), **env),
            )
            for n in range(1, count + 1)
        ]
        wait_until(
            lambda: self.redis.blocked_consumers() >= before + count,
            60,
            0.1,
            what=f"{count} worker(s) consuming",
            alive=started,
        )
        say(f"{count} worker process(es) x {concurrency} threads consuming")
        return started

    def start_beat(self, procs: Children, **env: str) -> Child:
        return procs.start("beat", [sys.executable, "-m", "worker", "beat"], self.env(**env))


def sdr_keys(count: int) -> str:
    """LEADTERRA_SDR_API_KEYS for sdr_1..sdr_N with the sandbox's SDR-linked keys."""
    return json.dumps({f"sdr_{n}": f"{API_KEY}_sdr_{n}" for n in range(1, count + 1)})
