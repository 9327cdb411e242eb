"""Fault scenarios against real processes: what was injected, and what came out.

Each scenario starts its own deployment (Redis, sandbox, the Procfile's processes), injects
one fault, and returns a `Row`: events in, assigned, duplicates, lost, dead-lettered, time to
recover. The tests (tests/e2e/test_reliability.py) assert on the rows; scripts/reliability.py
prints them as the README's table. Lost and duplicates must read 0 in every row.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.service import SECRET, Service, start_service
from worker.cli.demo import MIX as DEMO_MIX
from worker.deadline import wait_until
from worker.jobs.queueing import assign_message, task_message

ASSIGN = "POST /v1/replies/{id}/assign"
MIX = DEMO_MIX  # the demo's mix of classifications: 60% interested


@dataclass
class Row:
    scenario: str
    injected: str
    events_in: int
    assigned: int
    duplicates: int
    lost: int
    dead_lettered: int
    recovery_s: float | None
    checks: dict[str, Any] = field(default_factory=dict)

    def as_table_row(self) -> list[str]:
        recovery = "" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        return [
            self.scenario,
            self.injected,
            str(self.events_in),
            str(self.assigned),
            str(self.duplicates),
            str(self.lost),
            str(self.dead_lettered),
            recovery,
        ]


COLUMNS = [
    "scenario",
    "injected",
    "events in",
    "assigned",
    "duplicates",
    "lost",
    "dead-lettered",
    "time to recover",
]


def _send(
    service: Service,
    count: int,
    *,
    mix: dict[str, float] | None = None,
    rate: float = 0.0,
    retry_scale: float = 0.02,
    prefix: str = "rpl_",
    concurrency: int = 20,
) -> str:
    job = service.control.send_webhooks(
        service.webhook_url,
        SECRET,
        count,
        rate=rate,
        concurrency=concurrency,
        mix=mix or MIX,
        retry_scale=retry_scale,
        reply_id_prefix=prefix,
    )
    return str(job["id"])


def _interested(service: Service, job_id: str, timeout: float = 120) -> tuple[set[str], dict]:
    report = service.control.wait_webhook_job(job_id, timeout=timeout)
    return {
        d["replyId"] for d in report["deliveries"] if d["classification"] == "interested"
    }, report


def _row(
    service: Service,
    scenario: str,
    injected: str,
    interested: set[str],
    recovery: float | None,
    **checks: Any,
) -> Row:
    tally = service.tally(interested)
    return Row(
        scenario,
        injected,
        len(interested),
        tally["assigned"],
        tally["duplicates"] + tally["stray"],
        tally["lost"],
        tally["dead_lettered"],
        recovery,
        checks,
    )


def _wait_outage_over(service: Service, timeout: float) -> None:
    wait_until(
        lambda: service.control.health()["outage"]["mode"] is None,
        timeout,
        0.2,
        what="the sandbox's outage to end",
    )


def _wait_sent(service: Service, job_id: str, events: int) -> None:
    wait_until(
        lambda: service.control.webhook_job(job_id, deliveries=False)["events"] >= events,
        60,
        0.05,
        what=f"{events} webhooks sent",
    )


def max_per_window(stamps: list[float], width: float = 1.0) -> int:
    stamps = sorted(stamps)
    best = start = 0
    for end in range(len(stamps)):
        while stamps[end] - stamps[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- the scenarios ----------------------------------------------------------------------------


def rate_limit(log_dir: Path) -> Row:
    """2 workers, a 20/s global limit, a backlog of 400: never over limit + burst per second."""
    limit, burst, backlog = 20, 5, 400
    service = start_service(
        log_dir,
        sdrs=6,
        disconnected=0,
        processes=("web", "beat"),
        LEADTERRA_MAX_RPS=str(limit),
        LEADTERRA_BURST=str(burst),
    )
    try:
        interested, _ = _interested(service, _send(service, backlog, mix={"interested": 1}))
        since = service.control.last_seq()
        service.start("worker")
        service.start("worker")
        done = service.wait_assigned(interested, timeout=90)
        calls = [c for c in service.control.calls(since=since) if c["key"] is not None]
        stamps = [c["at"] for c in calls]
        drain = max(stamps) - min(stamps)
        worst = max_per_window(stamps)
        return _row(
            service,
            "rate limit",
            f"{backlog} backlog, 2 workers, limit {limit}/s + burst {burst}",
            interested,
            drain,
            worst_window=worst,
            allowed=limit + burst,
            drain_s=round(drain, 1),
            ideal_drain_s=round((len(calls) - burst) / limit, 1),
            calls=len(calls),
            finished=done,
        )
    finally:
        service.close()


def worker_killed(log_dir: Path) -> Row:
    """kill -9 of the worker with assign calls in flight (2 s latency), then a restart."""
    timeout = 12
    service = start_service(
        log_dir,
        sdrs=6,
        disconnected=0,
        VISIBILITY_TIMEOUT=str(timeout),
        LEADTERRA_TIMEOUT_CONNECT="1",
        LEADTERRA_TIMEOUT_READ="5",
        LEADTERRA_TIMEOUT_POOL="1",
    )
    try:
        service.control.set_fault(ASSIGN, latency_ms=2000)
        job = _send(service, 40, mix={"interested": 1})
        wait_until(
            lambda: len(service.control.calls(endpoint=ASSIGN)) >= 8,
            30,
            what="assign calls in flight",
        )
        [worker] = service.procs("worker")
        worker.signal(signal.SIGKILL)
        killed = time.monotonic()
        worker.popen.wait(10)
        interested, _ = _interested(service, job)
        service.start("worker")
        done = service.wait_assigned(interested, timeout=timeout + 60)
        already = service.events("reply.already_assigned")
        return _row(
            service,
            "worker killed",
            f"kill -9 with assign calls in flight (2 s latency), visibility timeout {timeout} s",
            interested,
            done - killed,
            visibility_timeout=timeout,
            already_assigned_after_restart=len(already),
        )
    finally:
        service.close()


def leadterra_outage(log_dir: Path) -> Row:
    """Leadterra answers 503 for 30 s, then refuses connections for 30 s, while 500 arrive."""
    service = start_service(
        log_dir,
        sdrs=6,
        disconnected=1,
        MAX_RETRIES="60",
        RETRY_BACKOFF_MAX="4",
        LEADTERRA_TIMEOUT_CONNECT="1",
    )
    try:
        control = service.control
        control.error_outage(seconds=30, status=503)
        job = _send(service, 500, rate=500 / 55)
        _wait_outage_over(service, 45)
        control.refuse(seconds=30)
        _wait_outage_over(service, 45)
        recovered = time.monotonic()
        interested, report = _interested(service, job)
        done = service.wait_assigned(interested, timeout=90)
        retries = len(service.events("reply.retry"))
        return _row(
            service,
            "Leadterra outage",
            "60 s: 503 for 30 s, then connections refused for 30 s; 500 webhooks meanwhile",
            interested,
            done - recovered,
            webhooks=report["events"],
            retries=retries,
        )
    finally:
        service.close()


def redis_restart(log_dir: Path) -> Row:
    """Redis restarted (append-only) with work queued and the worker stopped; 503 meanwhile."""
    service = start_service(log_dir, sdrs=6, disconnected=0, appendonly=True, processes=("web",))
    try:
        queued, _ = _interested(service, _send(service, 100, prefix="rpl_a_"))
        service.redis_server.shutdown()
        during = _send(service, 100, prefix="rpl_b_", retry_scale=0.05)  # 1 min retry: 3 s
        wait_until(
            lambda: service.control.webhook_job(during, deliveries=False)["attempts"] >= 100,
            30,
            what="deliveries tried while Redis is down",
        )
        service.redis_server.start()
        back = time.monotonic()
        later, report = _interested(service, during, timeout=120)
        refused = sum(
            1 for d in report["deliveries"] for a in d["attempts"] if a.get("status") == 503
        )
        service.start("worker")
        service.start("beat")
        done = service.wait_assigned(queued | later, timeout=90)
        return _row(
            service,
            "Redis restart",
            f"append-only Redis restarted with {len(queued)} tasks queued and the worker "
            "stopped; 100 webhooks while it was down",
            queued | later,
            done - back,
            answered_503=refused,
            queued_before=len(queued),
        )
    finally:
        service.close()


def receiver_restart(log_dir: Path) -> Row:
    """The receiver killed (-9) and restarted twice while 500 webhooks arrive."""
    service = start_service(log_dir, sdrs=6, disconnected=0)
    try:
        job = _send(service, 500, rate=50)
        for sent in (150, 300):
            _wait_sent(service, job, sent)
            [web] = [p for p in service.procs("web") if p.alive()]
            web.signal(signal.SIGKILL)
            web.popen.wait(10)
            service.start("web")
        restarted = time.monotonic()
        interested, report = _interested(service, job, timeout=180)
        done = service.wait_assigned(interested, timeout=90)
        retried = sum(
            1
            for d in report["deliveries"]
            if any(a.get("status") is None or a["status"] >= 300 for a in d["attempts"])
        )
        unanswered = [
            d["replyId"]
            for d in report["deliveries"]
            if not any(200 <= (a.get("status") or 0) < 300 for a in d["attempts"])
        ]
        return _row(
            service,
            "receiver restart",
            "web killed -9 and restarted twice under 50 webhooks/s",
            interested,
            done - restarted,
            deliveries_retried=retried,
            never_acknowledged=len(unanswered),
        )
    finally:
        service.close()


POISON = [
    b"this is not json",
    b"[1, 2, 3]",
]


def _poison_messages() -> list[bytes]:
    bad_base64 = json.loads(assign_message({"id": "rpl_poison_1"}))
    bad_base64["body"] = "!!!not base64"
    bad_json = json.loads(assign_message({"id": "rpl_poison_2"}))
    bad_json["body"] = base64.b64encode(b"[not json").decode()
    return [
        *POISON,
        json.dumps(bad_base64).encode(),
        json.dumps(bad_json).encode(),
        task_message("leadrouter.no_such_task", [1], queue="assign").encode(),
        task_message("leadrouter.assign_reply", ["not a reply"], queue="assign").encode(),
    ]


def poison(log_dir: Path) -> Row:
    """Undecodable payloads in the assign queue, among good ones."""
    service = start_service(log_dir, sdrs=6, disconnected=0)
    try:
        client = service.redis()
        messages = _poison_messages()
        for raw in messages:
            client.lpush(service.keys.queue("assign"), raw)
        interested, _ = _interested(service, _send(service, 50, mix={"interested": 1}))
        started = time.monotonic()
        done = service.wait_assigned(interested, timeout=60)
        wait_until(
            lambda: int(client.hlen(service.keys.dlq)) >= len(messages),
            20,
            what="poison dead-lettered",
        )
        alive = all(p.alive() for p in service.procs("worker"))
        return _row(
            service,
            "poison message",
            f"{len(messages)} undecodable messages in the assign queue",
            interested,
            done - started,
            poison=len(messages),
            worker_alive=alive,
        )
    finally:
        service.close()


def retries_used_up(log_dir: Path) -> Row:
    """Assign answers 503 until retries run out; then the fault is fixed and `dlq replay`."""
    service = start_service(
        log_dir,
        sdrs=6,
        disconnected=0,
        MAX_RETRIES="2",
        RETRY_BACKOFF_BASE="0.2",
        RETRY_BACKOFF_MAX="0.5",
    )
    try:
        service.control.set_fault(ASSIGN, error_rate=1.0, error_status=503)
        interested, _ = _interested(service, _send(service, 20, mix={"interested": 1}))
        client = service.redis()
        wait_until(
            lambda: int(client.hlen(service.keys.dlq)) >= len(interested), 60, what="dead letters"
        )
        entries = [json.loads(v) for v in client.hvals(service.keys.dlq)]
        dead = len(entries)
        service.control.clear_faults()
        fixed = time.monotonic()
        replay = subprocess.run(
            [sys.executable, "-m", "worker", "dlq", "replay", "--all"],
            env=service.children.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        done = service.wait_assigned(interested, timeout=60)
        row = _row(
            service,
            "retries used up",
            "assign answers 503 until 2 retries run out; "
            "then fixed, and `leadrouter dlq replay --all`",
            interested,
            done - fixed,
            replay_exit=replay.returncode,
            replay_output=replay.stdout.strip(),
            reasons=sorted({e["error_type"] for e in entries}),
            attempts=sorted({e["attempts"] for e in entries}),
        )
        row.dead_lettered = dead  # before the replay; after it the list is empty
        row.checks["left_after_replay"] = int(client.hlen(service.keys.dlq))
        return row
    finally:
        service.close()


SCENARIOS: dict[str, Callable[[Path], Row]] = {
    "rate_limit": rate_limit,
    "worker_killed": worker_killed,
    "leadterra_outage": leadterra_outage,
    "redis_restart": redis_restart,
    "receiver_restart": receiver_restart,
    "poison": poison,
    "retries_used_up": retries_used_up,
}
