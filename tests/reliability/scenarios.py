"""Fault scenarios against real processes: what was injected, and what came out.

Each scenario starts its own deployment (Redis, sandbox, the Procfile's processes), injects
one fault, and returns a `Row`: the settings it ran with, events in, assigned, duplicates, lost,
dead-lettered, time to recover. The tests (tests/e2e/test_reliability.py) assert on the rows;
scripts/reliability.py prints them as the README's table. Lost and duplicates must read 0 in
every row.

`run(name, log_dir, defaults=True)` (the script) runs a row at the defaults users run, but for
the settings the row is about; called directly (the suite), the same row runs shortened: the
deployment's QUICK settings (tests/support/service.py) and the row's own `quick` ones.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability import hostile
from tests.support.service import SECRET, Service, command, start_service
from worker.cli.demo import MIX as DEMO_MIX
from worker.deadline import wait_until
from worker.jobs.orphans import reply_in
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
    settings: str = "defaults"

    def as_table_row(self) -> list[str]:
        recovery = "" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        return [
            self.scenario,
            self.injected,
            self.settings,
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
    "settings",
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
        service.settings_note,
    )


#: whether the rows run at the defaults (scripts/reliability.py) or shortened (the suite)
AT_DEFAULTS: ContextVar[bool] = ContextVar("at_defaults", default=False)


def run(name: str, log_dir: Path, *, defaults: bool) -> Row:
    """The row `name`, at the defaults or shortened (the module docstring)."""
    token = AT_DEFAULTS.set(defaults)
    try:
        return SCENARIOS[name](log_dir)
    finally:
        AT_DEFAULTS.reset(token)


def _start(log_dir: Path, *, quick: Mapping[str, str] | None = None, **options: Any) -> Service:
    """`start_service` for a row: `options` (what the row is about) always; QUICK and the row's
    own `quick` settings only when it runs shortened."""
    at_defaults = AT_DEFAULTS.get()
    shortened = {} if at_defaults else dict(quick or {})
    return start_service(log_dir, quick=not at_defaults, **{**shortened, **options})


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
    service = _start(
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


def held_replies(service: Service) -> set[str]:
    """The replies whose assign messages sit in kombu's unacked hash: held by some worker."""
    return {r for r in map(reply_in, service.redis().hvals(service.keys.unacked)) if r}


def kill_and_replace_worker(service: Service) -> tuple[float, set[str], float]:
    """SIGKILL the only worker and start a new one at once: (when it was killed, the replies
    whose messages it held, when the new one was ready), monotonic times."""
    [worker] = [p for p in service.procs("worker") if p.alive()]
    worker.signal(signal.SIGKILL)
    killed = time.monotonic()
    worker.popen.wait(10)
    held = held_replies(service)
    fresh = service.start("worker")
    wait_until(
        lambda: any(str(e.get("event", "")).endswith(" ready.") for e in fresh.events()),
        60,
        0.1,
        what="the new worker ready",
        alive=[fresh],
    )
    return killed, held, time.monotonic()


def worker_killed(log_dir: Path) -> Row:
    """kill -9 of the worker with assign calls in flight (2 s latency), a new one at once."""
    service = _start(log_dir, sdrs=6, disconnected=0)
    try:
        service.control.set_fault(ASSIGN, latency_ms=2000)
        job = _send(service, 40, mix={"interested": 1})
        wait_until(
            lambda: len(service.control.calls(endpoint=ASSIGN)) >= 8,
            30,
            what="assign calls in flight",
        )
        killed, held, ready = kill_and_replace_worker(service)
        interested, _ = _interested(service, job)
        done = service.wait_assigned(interested, timeout=120)
        already = service.events("reply.already_assigned")
        return _row(
            service,
            "worker killed",
            "kill -9 with assign calls in flight (2 s latency), a new worker at once",
            interested,
            done - killed,
            visibility_timeout=int(service.env.get("VISIBILITY_TIMEOUT", "900")),
            held=len(held),
            restored=len(service.events("message.restored")),
            after_ready_s=round(done - ready, 1),
            already_assigned_after_restart=len(already),
        )
    finally:
        service.close()


def worker_killed_holding_backlog(log_dir: Path, backlog: int = 300) -> Row:
    """The only worker killed (-9) while it holds a reservation window of a backlog the global
    rate limit holds back, a new one started at once: the time until every reply it held is
    assigned, from the kill and from the new worker's start (issue 17, part 6)."""
    service = _start(log_dir, sdrs=6, disconnected=0)
    try:
        interested, _ = _interested(service, _send(service, backlog, mix={"interested": 1}))
        wait_until(lambda: len(service.handoffs()) >= 40, 60, 0.2, what="the backlog flowing")
        killed, held, ready = kill_and_replace_worker(service)
        waiting = held - {h["replyId"] for h in service.handoffs()}
        held_done = service.wait_assigned(waiting, timeout=120)
        done = service.wait_assigned(interested, timeout=120)
        rate = service.env.get("LEADTERRA_MAX_RPS", "20")
        return _row(
            service,
            "worker killed holding a backlog",
            f"kill -9 of the only worker while it holds its window of a {backlog} backlog the "
            f"rate limit ({rate}/s) holds back; a new worker at once",
            interested,
            held_done - killed,
            visibility_timeout=int(service.env.get("VISIBILITY_TIMEOUT", "900")),
            held=len(held),
            held_unassigned_at_kill=len(waiting),
            restored=len(service.events("message.restored")),
            held_assigned_after_ready_s=round(held_done - ready, 1),
            new_worker_ready_s=round(ready - killed, 1),
            backlog_drained_s=round(done - killed, 1),
        )
    finally:
        service.close()


def leadterra_outage(log_dir: Path) -> Row:
    """Leadterra answers 503 for 30 s, then refuses connections for 30 s, while 500 arrive."""
    # shortened: backoff capped at 4 s (QUICK), so 60 retries to ride out the minute
    quick = {"MAX_RETRIES": "60", "LEADTERRA_TIMEOUT_CONNECT": "1"}
    service = _start(log_dir, quick=quick, sdrs=6, disconnected=1)
    try:
        control = service.control
        control.error_outage(seconds=30, status=503)
        job = _send(service, 500, rate=500 / 55)
        _wait_outage_over(service, 45)
        control.refuse(seconds=30)
        _wait_outage_over(service, 45)
        recovered = time.monotonic()
        interested, report = _interested(service, job)
        done = service.wait_assigned(interested, timeout=300)  # backoff up to 128 s by default
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
    service = _start(log_dir, sdrs=6, disconnected=0, appendonly=True, processes=("web",))
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
    service = _start(log_dir, sdrs=6, disconnected=0)
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
    service = _start(log_dir, sdrs=6, disconnected=0)
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


def replay_all(service: Service, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`leadrouter dlq replay --all` against the deployment, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "dlq", "replay", "--all"],
        env=service.children.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def retries_used_up(log_dir: Path) -> Row:
    """Assign answers 503 until retries run out; then the fault is fixed and `dlq replay`."""
    service = _start(
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
        replay = replay_all(service)
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
    "worker_killed_holding_backlog": worker_killed_holding_backlog,
    "leadterra_outage": leadterra_outage,
    "redis_restart": redis_restart,
    "receiver_restart": receiver_restart,
    "poison": poison,
    "retries_used_up": retries_used_up,
}


# -- keys with invisible characters; 5,000 dead letters replayed (issue 12) ---------------------

#: what a paste can bring along: each refused, at start, by every process that reads settings
INVISIBLE = {
    "LEADTERRA_API_KEY": "sk_test_workspace\u200b",  # zero-width space at the end
    "LEADTERRA_WEBHOOK_SECRET": f"\u00a0{SECRET}",  # a non-breaking space in front
    "LEADTERRA_SDR_API_KEYS": json.dumps({"sdr_1": "\ufeffsk_test_workspace_sdr_1"}),  # a BOM
}


def _refusals(service: Service) -> list[dict[str, Any]]:
    """Start web, worker and beat with each bad key, all at once; what each printed."""
    started = [
        (name, variable, service.children.start(name, command(name), {variable: value}))
        for name in ("web", "worker", "beat")
        for variable, value in INVISIBLE.items()
    ]
    found = []
    for name, variable, child in started:
        code = child.popen.wait(60)
        output = child.text()
        lines = output.splitlines()
        expected = f"leadrouter: configuration error: {variable}: "
        found.append(
            {
                "process": name,
                "variable": variable,
                "exit": code,
                "lines": lines,
                "one_line": len(lines) == 1
                and lines[0].startswith(expected)
                and " contains a whitespace, control or invisible character " in lines[0],
                # the values' visible parts, their invisible characters, or those escaped
                "leaked": any(
                    part in output
                    for part in ("sk_test", SECRET, "\u200b", "\u00a0", "\ufeff", "\\u", "\\x")
                ),
            }
        )
    return found


def keys_with_invisible_characters(log_dir: Path) -> Row:
    """Keys pasted with an invisible character: every process refuses to start with one line
    naming the variable and nothing of its value; fixed, the service assigns every reply."""
    service = _start(log_dir, sdrs=6, disconnected=0, processes=())
    try:
        refusals = _refusals(service)
        fixed = time.monotonic()
        for name in ("web", "worker", "beat"):
            service.start(name)
        interested, _ = _interested(service, _send(service, 20, mix={"interested": 1}))
        done = service.wait_assigned(interested, timeout=60)
        return _row(
            service,
            "keys with invisible characters",
            "U+200B, NBSP or a BOM in LEADTERRA_API_KEY, LEADTERRA_WEBHOOK_SECRET or an SDR key: "
            "web, worker and beat each refuse to start with one line naming the variable; "
            "then fixed, 20 webhooks",
            interested,
            done - fixed,
            refused=sum(1 for r in refusals if r["exit"] == 2),
            starts=len(refusals),
            one_line=sum(1 for r in refusals if r["one_line"]),
            leaked=sum(1 for r in refusals if r["leaked"]),
            lines=sorted({line for r in refusals for line in r["lines"]}),
        )
    finally:
        service.close()


def _dead_letters(service: Service, count: int) -> set[str]:
    """`count` replies Leadterra knows, each dead-lettered as retries used up would leave it."""
    from worker.jobs.deadletter import DeadLetter, DeadLetters
    from worker.keys import QUEUE_ASSIGN, TASK_ASSIGN

    seeded = service.control.seed_replies(
        count=count, prefix="rpl_dlq_", classification="interested"
    )
    started = time.time() - count
    letters = [
        DeadLetter(
            id=f"reply:{reply['id']}",
            task=TASK_ASSIGN,
            queue=QUEUE_ASSIGN,
            args=[{"id": reply["id"], "email": reply["email"], "classification": "interested"}],
            error="assign: answered 503",
            error_type="ServerError",
            attempts=3,
            at=started + n,
        )
        for n, reply in enumerate(seeded["replies"])
    ]
    DeadLetters(service.redis(), service.keys).add_many(letters)  # one pipelined transaction
    return {reply["id"] for reply in seeded["replies"]}


def dlq_replayed(log_dir: Path, count: int = 5_000) -> Row:
    """`count` dead letters, `leadrouter dlq replay --all`, one worker: each assigned once."""
    service = _start(
        log_dir,
        sdrs=6,
        disconnected=0,
        processes=(),
        LEADTERRA_MAX_RPS="100000",
        LEADTERRA_BURST="1000",
        WORKER_CONCURRENCY="32",
    )
    try:
        interested = _dead_letters(service, count)
        client = service.redis()
        started = time.monotonic()
        replay = replay_all(service, timeout=120)
        replayed = time.monotonic()
        queued = int(client.llen(service.keys.queue("assign")))
        service.start("worker")
        done = service.wait_assigned(interested, timeout=60 + count / 20)
        row = _row(
            service,
            f"{count:,} dead letters replayed",
            f"{count:,} dead letters, then `leadrouter dlq replay --all` and one worker",
            interested,
            done - started,
            replay_exit=replay.returncode,
            replay_output=replay.stdout.strip(),
            replay_s=round(replayed - started, 2),
            queued_after_replay=queued,
            left_after_replay=int(client.hlen(service.keys.dlq)),
            assign_s=round(done - replayed, 1),
        )
        row.dead_lettered = count  # before the replay, as in `retries used up`
        return row
    finally:
        service.close()


SCENARIOS["keys_with_invisible_characters"] = keys_with_invisible_characters
SCENARIOS["dlq_replayed"] = dlq_replayed


# -- slow clients on every route; a header flood; a stale delivery (issue 12) ----------------

#: the receiver's request deadline in these scenarios (the default is 10 s)
HOSTILE_TIMEOUT = 3.0


def _acknowledged(report: dict[str, Any]) -> tuple[int, int]:
    """(deliveries never answered 2xx, attempts answered 503) in a sender job's report."""
    never = sum(
        1
        for d in report["deliveries"]
        if not any(200 <= (a.get("status") or 0) < 300 for a in d["attempts"])
    )
    refused = sum(1 for d in report["deliveries"] for a in d["attempts"] if a.get("status") == 503)
    return never, refused


def slow_clients(log_dir: Path) -> Row:
    """200 slow clients on the public port and 40 on the admin one, on every route and in every
    phase (head, body before and after the answer, silence), while 150 webhooks arrive."""
    service = _start(log_dir, sdrs=6, disconnected=0, REQUEST_TIMEOUT_SECONDS=str(HOSTILE_TIMEOUT))
    try:
        clients = hostile.every_route(service.port, service.admin_port, 200, 40)
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            held = pool.submit(hostile.run_slow_clients, clients, HOSTILE_TIMEOUT + 10)
            interested, report = _interested(service, _send(service, 150, rate=50))
            results = held.result()
        done = service.wait_assigned(interested, timeout=60)
        never, refused = _acknowledged(report)
        longest = max(h.seconds or float("inf") for h in results)
        answered = {h.route: sorted(set(h.statuses)) for h in results}
        return _row(
            service,
            "slow clients on every route",
            f"{len(clients)} clients trickling heads or bodies (before and after the answer) or "
            f"silent, on every route of both listeners, deadline {HOSTILE_TIMEOUT:.0f} s; "
            "150 webhooks meanwhile",
            interested,
            longest,
            slow_clients=len(clients),
            kept_past_deadline=sum(1 for h in results if h.seconds is None),
            longest_held_s=round(longest, 2),
            deadline_s=HOSTILE_TIMEOUT,
            answered=answered,
            never_acknowledged=never,
            answered_503=refused,
            assigned_after_s=round(done - started, 1),
        )
    finally:
        service.close()


def header_flood(log_dir: Path) -> Row:
    """16 connections each sending a 32 MiB header as fast as it is taken, while 150 webhooks
    arrive: each flood is cut with 431 after 64 KiB, and the receiver stays small."""
    connections, size = 16, 32 * 1024 * 1024
    service = _start(log_dir, sdrs=6, disconnected=0)
    try:
        [web] = service.procs("web")
        before = hostile.rss_mib(web.pid)
        with ThreadPoolExecutor(1) as pool:
            flood = pool.submit(hostile.header_flood, service.port, connections, size)
            interested, report = _interested(service, _send(service, 150, rate=50))
            floods = flood.result()
        grown = hostile.rss_mib(web.pid) - before
        done = service.wait_assigned(interested, timeout=60)
        never, refused = _acknowledged(report)
        longest = max(f.seconds for f in floods)
        return _row(
            service,
            "header flood",
            f"{connections} connections each sending a {size // 2**20} MiB header "
            "as fast as taken; 150 webhooks meanwhile",
            interested,
            longest,
            flood_connections=connections,
            most_bytes_taken=max(f.sent for f in floods),
            answers=sorted({s for f in floods for s in f.statuses}),
            rss_growth_mib=round(grown, 1),
            never_acknowledged=never,
            answered_503=refused,
            finished=done,
        )
    finally:
        service.close()


def _expire_markers(service: Service) -> int:
    """What DEDUPE_TTL_SECONDS does to a reply's records, done now: delete them."""
    client = service.redis()
    names = [service.keys.seen("*"), service.keys.done("*"), service.keys.pick("*")]
    found = [key for pattern in names for key in client.scan_iter(pattern)]
    if found:
        client.delete(*found)
    return len(found)


def stale_delivery(log_dir: Path) -> Row:
    """50 webhooks assigned; their dedupe records expire; the same deliveries, signed with a
    timestamp 25 h old, are replayed: each answered 200 stale, nothing enqueued or assigned."""
    service = _start(log_dir, sdrs=6, disconnected=0)
    try:
        interested, report = _interested(service, _send(service, 50, mix={"interested": 1}))
        service.wait_assigned(interested, timeout=60)
        replies = sorted(d["replyId"] for d in report["deliveries"])
        expired = _expire_markers(service)
        enqueued = len([e for e in service.events("webhook.received") if e["status"] == 202])
        since = service.control.last_seq()
        service.control.set_clock_offset(-(25 * 3600))
        try:
            job = service.control.send_webhooks(
                service.webhook_url, SECRET, len(replies), reply_ids=replies, retry_scale=0.02
            )
            replay = service.control.wait_webhook_job(job["id"], timeout=60)
        finally:
            service.control.set_clock_offset(0)
        outcomes = [
            e["outcome"] for e in service.events("webhook.received") if e["reply_id"] in replies
        ]
        stale = [e for e in service.events("webhook.received") if e["outcome"] == "stale"]
        after = len([e for e in service.events("webhook.received") if e["status"] == 202])
        return _row(
            service,
            "stale delivery",
            f"{len(replies)} deliveries replayed with a signed timestamp 25 h old, "
            "after their dedupe records expired",
            interested,
            None,
            replayed=len(replies),
            answered_stale=len(stale),
            stale_warnings=sum(1 for e in stale if e["level"] == "warning"),
            replay_statuses=sorted(
                {a.get("status") for d in replay["deliveries"] for a in d["attempts"]}
            ),
            records_expired=expired,
            enqueued_by_replay=after - enqueued,
            seen_markers_after=len(list(service.redis().scan_iter(service.keys.seen("*")))),
            assign_calls_after=len(service.control.calls(since=since, endpoint=ASSIGN)),
            outcomes=sorted(set(outcomes)),
        )
    finally:
        service.close()


SCENARIOS["slow_clients"] = slow_clients
SCENARIOS["header_flood"] = header_flood
SCENARIOS["stale_delivery"] = stale_delivery


# -- garbled answers from Leadterra; an arbitrary exception in a task (issue 12) ----------------

#: what the rows are about: few retries and deliveries before a dead letter
OPEN_WORLD_ROW = {"MAX_RETRIES": "2", "MAX_DELIVERIES": "2"}
#: shortened: quick retries; VISIBILITY_TIMEOUT 20 s gives a task a 6 s deadline and a call 4 s
OPEN_WORLD_QUICK = {
    "RETRY_BACKOFF_BASE": "0.05",
    "RETRY_BACKOFF_MAX": "0.2",
    "VISIBILITY_TIMEOUT": "20",
    "LEADTERRA_TIMEOUT_CONNECT": "1",
    "LEADTERRA_TIMEOUT_READ": "2",
    "LEADTERRA_TIMEOUT_POOL": "1",
    "LEADTERRA_MAX_RPS": "500",
    "LEADTERRA_BURST": "100",
    "WORKER_CONCURRENCY": "8",
}
OPEN_WORLD_ENV = {**OPEN_WORLD_QUICK, **OPEN_WORLD_ROW}  # what the suite runs with
RAISING_WORKER = f"{sys.executable} -m tests.support.raising_worker worker"


def raising_service(log_dir: Path) -> Service:
    """Web, beat and a real worker whose Leadterra calls raise what a test scripts
    (tests/support/raising_worker.py); with nothing scripted it is the Procfile's worker."""
    service = _start(
        log_dir,
        quick=OPEN_WORLD_QUICK,
        sdrs=6,
        disconnected=0,
        processes=("web", "beat"),
        **OPEN_WORLD_ROW,
    )
    try:
        worker = service.children.start("worker", RAISING_WORKER)
        wait_until(
            lambda: any(str(e.get("event", "")).endswith(" ready.") for e in worker.events()),
            60,
            what="the raising worker ready",
            alive=[worker],
        )
    except BaseException:
        service.close()
        raise
    return service


def dead_lettered(service: Service, replies: set[str]) -> list[dict[str, Any]]:
    raws = service.redis().hmget(service.keys.dlq, [f"reply:{r}" for r in sorted(replies)])
    return [json.loads(raw) for raw in raws if raw]


def settled(service: Service, replies: set[str]) -> bool:
    """Every reply assigned (a handoff at the sandbox) or dead-lettered: none missing."""
    handed = {h["replyId"] for h in service.handoffs()}
    dead = {e["id"].removeprefix("reply:") for e in dead_lettered(service, replies)}
    return replies <= handed | dead


def _own(row: Row, service: Service, replies: set[str], dead: list[dict[str, Any]]) -> Row:
    """The row counted over `replies` only (a deployment may serve other tests too)."""
    per_reply: dict[str, int] = {}
    for handoff in service.handoffs():
        per_reply[handoff["replyId"]] = per_reply.get(handoff["replyId"], 0) + 1
    row.duplicates = sum(per_reply.get(r, 0) - 1 for r in replies if per_reply.get(r, 0) > 1)
    row.dead_lettered = len(dead)  # before the replay; after it none is left
    return row


def _events_for(service: Service, name: str, replies: set[str]) -> list[dict[str, Any]]:
    return [e for e in service.events(name) if e.get("reply_id") in replies]


#: (garble, phase, how many assign answers); "after" means the assign took effect first
GARBLES = [
    ("encoding", "before", 4),  # the example: four replies vanished
    ("encoding", "after", 2),
    ("not_json", "before", 2),
    ("deep", "before", 2),
    ("chunks", "after", 2),
    ("truncated", "before", 2),
    ("shape", "after", 2),
    ("shape", "before", 1),
]


GARBLE_LABELS = {
    "encoding": "a body its Content-Encoding does not match",
    "not_json": "an HTML 200",
    "deep": "JSON nested 100,000 deep",
    "chunks": "broken chunking",
    "truncated": "a truncated body",
    "shape": "the wrong shape",
}


def garbled_answers_on(service: Service, count: int = 30) -> Row:
    """Assign answers garbled the ways a broken server or proxy garbles them: the unreadable
    ones are retried, the wrong-shaped ones dead-lettered and replayed; none lost or doubled."""
    for kind, phase, times in GARBLES:
        service.control.garble_next(ASSIGN, times, kind, phase=phase)
    try:
        job = _send(service, count, mix={"interested": 1}, prefix="rpl_garbled_")
        interested, _ = _interested(service, job)
        started = time.monotonic()
        wait_until(lambda: settled(service, interested), 60, 0.2, what="garbled replies settled")
        dead = dead_lettered(service, interested)
        replay = replay_all(service)
        done = service.wait_assigned(interested, timeout=60)
    finally:
        service.control.clear_faults(ASSIGN)
    counts: dict[str, int] = {}
    for kind, _, times in GARBLES:
        counts[GARBLE_LABELS[kind]] = counts.get(GARBLE_LABELS[kind], 0) + times
    injected = ", ".join(f"{label} ({n})" for label, n in counts.items())
    row = _row(
        service,
        "garbled answers",
        f"{sum(counts.values())} of {count} assign answers garbled: {injected}, some after the "
        "assign took effect; then `dlq replay --all`",
        interested,
        done - started,
        garbled=sum(t for *_, t in GARBLES),
        retries=len(_events_for(service, "reply.retry", interested)),
        dead_letter_types=sorted({e["error_type"] for e in dead}),
        already_assigned=len(_events_for(service, "reply.already_assigned", interested)),
        replay_exit=replay.returncode,
    )
    return _own(row, service, interested, dead)


def on_raising_service(log_dir: Path, scenario: Callable[[Service], Row]) -> Row:
    """Run `scenario` on its own deployment whose worker raises what the sandbox asks it to."""
    service = raising_service(log_dir)
    try:
        return scenario(service)
    finally:
        service.close()


def garbled_answers(log_dir: Path) -> Row:
    return on_raising_service(log_dir, garbled_answers_on)


#: (base, a subclass's name or None, message, times raised); MAX_RETRIES is 2, MAX_DELIVERIES 2
RAISED: list[tuple[str, str | None, str, int]] = [
    ("builtins.KeyError", None, "a key nobody set", 1),
    ("builtins.ZeroDivisionError", None, "division by zero", 2),
    ("builtins.RecursionError", None, "maximum recursion depth exceeded", 1),
    ("builtins.StopIteration", None, "", 1),
    ("builtins.ConnectionResetError", None, "reset by peer", 2),
    ("builtins.TypeError", None, "unsupported operand", 1),
    ("httpx.DecodingError", None, "incorrect header check", 2),
    ("httpx.TooManyRedirects", None, "Exceeded maximum allowed redirects.", 1),
    ("httpx.UnsupportedProtocol", None, "Request URL is missing a scheme", 1),  # permanent
    ("builtins.UnicodeEncodeError", None, "fu_\u00e9", 1),  # permanent
    ("local.Unprintable", None, "", 1),
    ("local.Huge", None, "", 3),  # retries run out
    ("builtins.ValueError", "Odd Name \u2603", "bad key sk_test_workspace", 3),  # likewise
    ("builtins.RuntimeError", "LibraryBug", "a state machine in an impossible state", 3),
    ("builtins.SystemExit", None, "exit called by a library", 1),  # requeued, then assigned
    ("builtins.KeyboardInterrupt", None, "", 1),
    ("asyncio.CancelledError", None, "", 1),
    ("builtins.MemoryError", None, "", 1),
    ("local.Halt", None, "a library's own BaseException", 5),  # poison after 2 deliveries
]
RAISED_DEAD = 6  # the two permanent ones, the three out of retries, the poison


def arbitrary_exception_on(service: Service, clean: int = 10) -> Row:
    """Exceptions of every kind raised from inside the client of a real worker: each reply ends
    assigned or dead-lettered (and, once fixed and replayed, assigned), none lost."""
    from tests.support.raising_worker import SPEC_KEY, script

    client, prefix = service.redis(), service.keys.prefix
    run = f"{time.time_ns() % 10**9:09d}"
    ids = [f"rpl_raise_{run}_{n:02d}" for n in range(len(RAISED) + clean)]
    for reply_id, (base, name, message, times) in zip(ids, RAISED, strict=False):
        script(client, prefix, reply_id, {"base": base, "name": name, "message": message,
                                         "times": times})  # fmt: skip
    job = service.control.send_webhooks(
        service.webhook_url, SECRET, len(ids), reply_ids=ids, mix={"interested": 1},
        retry_scale=0.02, concurrency=20,
    )  # fmt: skip
    interested, _ = _interested(service, str(job["id"]))
    started = time.monotonic()
    wait_until(lambda: settled(service, interested), 60, 0.2, what="raised replies settled")
    dead = dead_lettered(service, interested)
    client.delete(*[prefix + SPEC_KEY.format(r) for r in ids])  # the fault is fixed
    replay = replay_all(service)
    done = service.wait_assigned(interested, timeout=60)
    row = _row(
        service,
        "arbitrary exception in a task",
        f"{len(RAISED)} kinds of exception raised inside the client of a real worker "
        "(built-in, httpx's, the test's own, odd names and messages, BaseExceptions), "
        f"1-5 times each, among {clean} clean replies; then fixed and `dlq replay --all`",
        interested,
        done - started,
        expected_dead=RAISED_DEAD,
        dead_letter_types=sorted(e["error_type"] for e in dead),
        requeued=len(_events_for(service, "reply.requeued", interested)),
        retries=len(_events_for(service, "reply.retry", interested)),
        worker_alive=all(p.alive() for p in service.procs("worker")),
        replay_exit=replay.returncode,
        key_in_dead_letters=any("sk_test_workspace" in json.dumps(e) for e in dead),
    )
    return _own(row, service, interested, dead)


def arbitrary_exception(log_dir: Path) -> Row:
    return on_raising_service(log_dir, arbitrary_exception_on)


SCENARIOS["garbled_answers"] = garbled_answers
SCENARIOS["arbitrary_exception"] = arbitrary_exception


# -- the second path: webhooks lost, the sweep and `leadrouter backfill` find the replies -------

#: a deployment with the sweep at its shortest interval and a short overlap (docs/reconcile.md)
RECONCILE_ROW = {"RECONCILE_SECONDS": "15", "RECONCILE_OVERLAP_SECONDS": "120"}
#: shortened: quicker calls and a higher rate limit
RECONCILE_QUICK: dict[str, Any] = {
    "VISIBILITY_TIMEOUT": "20",
    "LEADTERRA_TIMEOUT_CONNECT": "1",
    "LEADTERRA_TIMEOUT_READ": "5",
    "LEADTERRA_TIMEOUT_POOL": "1",
    "LEADTERRA_MAX_RPS": "500",
    "LEADTERRA_BURST": "100",
    "LOG_FORMAT": "json",
}
RECONCILE_ENV = {**RECONCILE_QUICK, **RECONCILE_ROW}  # what the suite runs with
HOUR = 3600


def reconcile_service(log_dir: Path) -> Service:
    """Web, worker and beat with the sweep every 15 s, once its first sweep is done (what a
    test sends later is above the floor, and what it dates days back below it, whether a
    watermark exists yet or the floor is still now minus the overlap)."""
    service = _start(log_dir, quick=RECONCILE_QUICK, sdrs=6, disconnected=0, **RECONCILE_ROW)
    try:
        wait_until(
            lambda: service.events("reconcile.swept"), 60, 0.25, what="the first reconcile sweep"
        )
    except BaseException:
        service.close()
        raise
    return service


def backfill(service: Service, *args: str, timeout: float = 120) -> dict[str, Any]:
    """`leadrouter backfill ... --json` as an operator runs it, with the deployment's env."""
    done = subprocess.run(
        [sys.executable, "-m", "worker", "backfill", *args, "--json"],
        env=service.children.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    return dict(json.loads(done.stdout))


def send_dropping(
    service: Service, count: int, prefix: str, *, drop_share: float, **options: Any
) -> str:
    """A sender job of the demo's mix that drops `drop_share` of its webhooks; its id."""
    job = service.control.send_webhooks(
        service.webhook_url,
        SECRET,
        count,
        mix=MIX,
        reply_id_prefix=prefix,
        drop_share=drop_share,
        **{"concurrency": 20, "retry_scale": 0.02, **options},
    )
    return str(job["id"])


def three_days_lost_on(service: Service, prefix: str = "rpl_3d_", steps: int = 6) -> Row:
    """Every webhook dropped for three days: the sandbox's clock set 73 h back and moved
    forward 12 h at a time while replies arrive, then back to now. The sweep, whose watermark
    is now, never reaches them; `leadrouter backfill --since` assigns them, and a second run
    enqueues nothing."""
    control = service.control
    outage_from = control.set_clock_offset(-73 * HOUR)
    interested: set[str] = set()
    try:
        for step in range(steps):
            job = send_dropping(service, 20, f"{prefix}{step}_", drop_share=1.0)
            interested |= _interested(service, job, timeout=30)[0]
            control.advance_clock(12 * HOUR)
    finally:
        outage_to = control.clock()
        control.set_clock_offset(0)
    dropped = {r for r in control.dropped_webhooks() if r.startswith(prefix)}
    # replies carry whole seconds: the window starts at the minute the outage began
    window = ("--since", outage_from["now"][:17] + "00Z", "--until", outage_to["now"])
    started = time.monotonic()
    first = backfill(service, *window)
    done = service.wait_assigned(interested, timeout=90)
    second = backfill(service, *window)
    assigned_sources = {
        e.get("source") for e in service.events("reply.assigned") if e.get("reply_id") in interested
    }
    row = _row(
        service,
        "webhooks lost for three days",
        f"every webhook dropped for 72 h ({steps * 20} replies); then `leadrouter backfill`",
        interested,
        done - started,
        dropped=len(dropped),
        first=first,
        second=second,
        sources=sorted(str(s) for s in assigned_sources),
    )
    return _own(row, service, interested, dead_lettered(service, interested))


def webhooks_lost_three_days(log_dir: Path) -> Row:
    service = reconcile_service(log_dir)
    try:
        return three_days_lost_on(service)
    finally:
        service.close()


SCENARIOS["webhooks_lost_three_days"] = webhooks_lost_three_days
