"""A deployment under test: a Redis of its own, the sandbox, and the Procfile's processes.

The processes run as `Children` (worker/children.py): each in its own process group with its own
log file, their JSON log lines readable as events, all stopped when the deployment closes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from config.settings import Settings
from leadterra_sandbox.process import SandboxProcess
from worker.children import Child, Children
from worker.deadline import wait_http, wait_until
from worker.embedded_redis import EmbeddedRedis, free_port
from worker.embedded_sentinel import SentinelGroup
from worker.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_e2e_0123456789abcdef"
PREFIX = "e2e:"
#: shorter than the defaults, so a deployment under test answers quickly: fewer threads, quicker
#: polls, backoffs and rechecks. Every test gets them; scripts/reliability.py runs without them
#: (`start_service(quick=False)`), at the defaults users run.
QUICK = {
    "WORKER_CONCURRENCY": "16",
    "FOLLOWUP_POLL_SECONDS": "1",
    "RETRY_BACKOFF_BASE": "0.5",
    "RETRY_BACKOFF_MAX": "4",
    "HOLD_RECHECK_SECONDS": "2",
    "SDR_CACHE_SECONDS": "5",
}


def _is_default(name: str, value: str) -> bool:
    spec = Settings.model_fields.get(name.lower())
    if spec is None:
        return False
    try:
        return float(value) == float(spec.default)
    except (TypeError, ValueError):
        return str(value) == str(spec.default)


def settings_note(tuned: dict[str, str]) -> str:
    """`defaults`, or `defaults but NAME=value, ...` for the settings that differ from them."""
    changed = [f"{k}={v}" for k, v in sorted(tuned.items()) if not _is_default(k, v)]
    return "defaults but " + ", ".join(changed) if changed else "defaults"


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's process types and their commands."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


#: processes the Procfile no longer lists but a deployment may still run
STANDALONE = {"beat": "leadrouter beat"}


def command(name: str) -> str:
    """The Procfile's command for `name`, or a standalone one (`beat`)."""
    return {**STANDALONE, **procfile()}[name]


@dataclass
class Service:
    """One deployment under test: Redis, sandbox, and the processes started so far."""

    redis_server: EmbeddedRedis | SentinelGroup
    sandbox: SandboxProcess
    children: Children
    port: int
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    admin_port: int = 0
    #: the settings given beyond the plumbing (QUICK and the caller's), for `settings_note`
    tuned: dict[str, str] = field(default_factory=dict)

    @property
    def settings_note(self) -> str:
        return settings_note(self.tuned)

    @property
    def admin_url(self) -> str:
        """The web process's admin listener: /metrics, /readyz, /openapi.json."""
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def control(self) -> Any:
        return self.sandbox.control

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/leadterra"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def keys(self) -> Keys:
        return Keys(PREFIX)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url)

    def start(self, name: str, **env: str) -> Child:
        """Start `command(name)`; the receiver once it answers."""
        child = self.children.start(name, command(name), env)
        if name == "web":
            wait_http(f"{self.base_url}/healthz", 30, alive=[child])
        return child

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = [event for child in self.children for event in child.events()]
        return [e for e in found if name is None or e.get("event") == name]

    def handoffs(self) -> list[dict[str, Any]]:
        return list(self.control.handoffs())

    def sandbox_log(self) -> str:
        path = (self.log_dir or Path("/nonexistent")) / "sandbox.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def procs(self, name: str) -> list[Child]:
        """The processes of one Procfile type started so far, oldest first."""
        return [child for child in self.children if child.name == name]

    def tally(self, interested: set[str], prefix: str = "") -> dict[str, int]:
        """Assigned, duplicates and lost among `interested`, and stray (handed off, not in it),
        from the sandbox's handoffs of the replies whose id starts with `prefix`."""
        per_reply: dict[str, int] = {}
        for handoff in self.handoffs():
            if handoff["replyId"].startswith(prefix):
                per_reply[handoff["replyId"]] = per_reply.get(handoff["replyId"], 0) + 1
        return {
            "assigned": sum(1 for r in interested if per_reply.get(r)),
            "duplicates": sum(n - 1 for n in per_reply.values() if n > 1),
            "lost": sum(1 for r in interested if not per_reply.get(r)),
            "stray": sum(1 for r in per_reply if r not in interested),
            "dead_lettered": int(self.redis().hlen(self.keys.dlq)),
        }

    def wait_assigned(self, interested: set[str], timeout: float) -> float:
        """Wait until every reply in `interested` was handed off; return when (monotonic)."""
        wait_until(
            lambda: self.tally(interested)["lost"] == 0,
            timeout,
            0.25,
            what=f"{len(interested)} replies assigned",
        )
        return time.monotonic()

    def wait_handoffs(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        return wait_until(
            lambda: (h := self.handoffs()) and len(h) >= count and h,
            timeout,
            0.2,
            what=f"{count} handoffs",
        )

    def close(self) -> None:
        self.children.stop_all()
        self.sandbox.stop()
        self.redis_server.stop()


def start_service(
    log_dir: Path,
    sdrs: int = 8,
    disconnected: int = 2,
    sandbox_args: tuple[str, ...] = (),
    processes: tuple[str, ...] = ("web", "worker"),
    appendonly: bool = False,
    quick: bool = True,
    redis_server: SentinelGroup | None = None,
    **env: str,
) -> Service:
    """Redis of its own, the sandbox, and the Procfile's `processes`, sharing one env: `env`
    over QUICK (or over the defaults alone, `quick=False`). `redis_server`: a started
    SentinelGroup (worker/embedded_sentinel.py) instead of a Redis of its own, stopped with the
    service; pass its `env()` too."""
    log_dir.mkdir(parents=True, exist_ok=True)
    server = redis_server or EmbeddedRedis(appendonly=appendonly).start()
    try:
        sandbox = SandboxProcess.start(
            ["--sdrs", str(sdrs), "--disconnected", str(disconnected), *sandbox_args],
            log_path=str(log_dir / "sandbox.log"),
        )
    except BaseException:
        server.stop()
        raise
    port, admin_port = free_port(), free_port()
    tuned = {**(QUICK if quick else {}), **env}
    base_env = {
        "REDIS_URL": server.url,
        "KEY_PREFIX": PREFIX,
        "LEADTERRA_BASE_URL": sandbox.api_url,
        "LEADTERRA_API_KEY": "sk_test_workspace",
        "LEADTERRA_WEBHOOK_SECRET": SECRET,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ADMIN_PORT": str(admin_port),
        "LOG_LEVEL": "INFO",  # the default, whatever a .env says: the tests read the events
        **tuned,
    }
    children = Children(log_dir / "logs", base_env, cwd=ROOT)
    service = Service(server, sandbox, children, port, base_env, log_dir, admin_port, tuned)
    try:
        for name in processes:
            service.start(name)
    except BaseException:
        service.close()
        raise
    return service


def dead_letters(service: Service) -> list[dict[str, Any]]:
    client = service.redis()
    return [json.loads(v) for v in client.hvals(service.keys.dlq)]
