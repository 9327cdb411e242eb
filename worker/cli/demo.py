"""The sandbox demo: the whole pipeline on this machine, with a progress bar and a summary.

It starts the sandbox, the receiver and a worker (beat's schedule in it); sends signed webhooks
the way Leadterra does (with duplicates and retries) and seeds due follow-ups on live and
finished threads, one SDR working only tomorrow; its SDRs act on every handoff at once but one,
which the SLA watch reminds and then re-routes; then it shows what happened: replies per SDR,
follow-up decisions, the SLA steps, dead letters, and the time from webhook to assignment, and
the console's URL (the admin listener). With `--keep` every process stays up after that until
Ctrl-C.
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from leadterra_sandbox.client import SandboxControl
from worker.children import Child, Children
from worker.cli.demo_drafts import click_all, drafts_environment, inbox
from worker.cli.output import console as data_console
from worker.cli.output import data
from worker.cli.run import SERVICE, leadrouter_argv
from worker.deadline import DeadlineExceeded, wait_http, wait_until
from worker.embedded_redis import free_port
from worker.keys import Keys
from worker.leadterra.models import iso_ms

SDRS, DISCONNECTED = 6, 1
MIX = {
    "interested": 0.6,
    "not_interested": 0.15,
    "out_of_office": 0.1,
    "bounce": 0.05,
    "unsubscribe": 0.05,
    "referral": 0.05,
}
STATUSES = (
    "new",
    "awaiting_reply",
    "needs_followup",
    "replied",
    "meeting_booked",
    "won",
    "lost_timing",
    "archived",
)
DECISIONS = ("followup.routed", "followup.skipped", "followup.rescheduled")
SLA_STEPS = ("sla.reminded", "sla.rerouted")
DRAFTS = ("draft.generated", "draft.sent")
TIMEOUT = 180.0


def _seed_followups(control: SandboxControl, count: int) -> None:
    connected = [f"sdr_{i}" for i in range(1, SDRS - DISCONNECTED + 1)]
    due = iso_ms(datetime.now(UTC) - timedelta(minutes=5))
    threads, followups = [], []
    for n in range(count):
        thread_id = f"th_demo_{n:04d}"
        threads.append(
            {
                "id": thread_id,
                "sdrId": connected[n % len(connected)],
                "status": STATUSES[n % len(STATUSES)],
                "contactEmail": f"prospect{n}@example.com",
                "subject": f"Re: demo thread {n}",
                "category": "ABC"[n % 3],
            }
        )
        followups.append({"id": f"fu_demo_{n:04d}", "threadId": thread_id, "dueAt": due})
    control.seed_threads(threads)
    control.seed_followups(followups)


def _environment(redis_url: str, api: int, web: int, secret: str, admin: int) -> dict[str, str]:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%a").lower()
    return {
        "REDIS_URL": redis_url,
        "KEY_PREFIX": f"leadrouter-demo-{int(time.time())}:",
        "LEADTERRA_BASE_URL": f"http://127.0.0.1:{api}",
        "LEADTERRA_API_KEY": "sk_test_workspace",
        "LEADTERRA_SDR_API_KEYS": json.dumps(
            {f"sdr_{i}": f"sk_test_workspace_sdr_{i}" for i in range(1, SDRS + 1)}
        ),
        "LEADTERRA_WEBHOOK_SECRET": secret,
        "HOST": "127.0.0.1",
        "PORT": str(web),
        "ADMIN_PORT": str(admin),
        "FOLLOWUP_POLL_SECONDS": "2",
        "LEADTERRA_MAX_RPS": "200",  # the sandbox takes thousands; the real default is 20
        # sdr_3 works tomorrow only, so today's follow-ups move to tomorrow 09:00
        "WORKING_HOURS": json.dumps(
            {"sdr_3": {"timezone": "UTC", "days": tomorrow, "start": "09:00", "end": "17:00"}}
        ),
        # the SLA watch at demo speed: 15 s to act, reminded at 7.5 s, re-routed at 15 s
        "SLA_MINUTES": "0.25",
        "SLA_ACTION": "reroute",
        "SLA_CHECK_SECONDS": "2",
    }


class _Sdrs:
    """The demo's SDRs acting on their threads: every handoff at once, but one, left `new` so
    the SLA watch reminds its SDR and then re-routes it (the re-routed copy is left alone)."""

    def __init__(self, control: SandboxControl) -> None:
        self.control = control
        self.seen: set[str] = set()
        self.kept: str | None = None

    def act(self, handoffs: list[dict[str, Any]]) -> None:
        for handoff in handoffs:
            if handoff["replyId"] in self.seen or handoff.get("forced"):
                continue
            self.seen.add(handoff["replyId"])
            # sdr_3 works tomorrow only: its SLA clock does not run today
            if self.kept is None and handoff["sdrId"] != "sdr_3":
                self.kept = handoff["replyId"]
                continue
            self.control.set_thread_status(handoff["threadId"], "replied")


def _start_sandbox(kids: Children, api: int, control_port: int) -> SandboxControl:
    argv = [sys.executable, "-m", "leadterra_sandbox", "--port", str(api)]
    argv += ["--control-port", str(control_port), "--sdrs", str(SDRS)]
    argv += ["--disconnected", str(DISCONNECTED), "--latency-ms", "60", "--jitter-ms", "40"]
    kids.start("sandbox", argv)
    control = SandboxControl(f"http://127.0.0.1:{control_port}")
    control.wait_ready(30)
    return control


def run_demo(
    redis_url: str,
    *,
    replies: int = 200,
    followups: int = 60,
    keep: bool = False,
    admin_token: str | None = None,
) -> int:
    """The demo; 0 when everything was handled in time. With `keep`, every process stays up
    after the summary until Ctrl-C (or SIGTERM). `admin_token` is the ADMIN_TOKEN the service's
    processes read (the environment or .env), if any: their admin listener then wants it."""
    console = data_console()  # sandbox and Redis values are printed as data, not markup
    folder = Path(tempfile.mkdtemp(prefix="leadrouter-demo-"))
    api, control_port, web, admin = free_port(), free_port(), free_port(), free_port()
    secret = secrets.token_hex(16)
    env = _environment(redis_url, api, web, secret, admin)
    site = f"http://127.0.0.1:{admin}/"  # the console, on the admin listener
    auth = {"authorization": f"Bearer {admin_token}"} if admin_token else None
    base = f"http://127.0.0.1:{web}"
    console.print(Text.assemble(("Leadterra sandbox demo", "bold"), f": logs in {folder}"))
    with ExitStack() as stack:
        box = stack.enter_context(inbox())
        env.update(drafts_environment(base, box.url))
        kids = stack.enter_context(Children(folder, env, interrupt_on_sigterm=True))
        control = _start_sandbox(kids, api, control_port)
        service = {name: kids.start(name, leadrouter_argv(cmd)) for name, cmd in SERVICE.items()}
        worker = service["worker"]
        wait_http(f"{base}/healthz", alive=[kids])
        wait_http(f"{site}readyz", 60, ok=(200,), alive=[kids], headers=auth)
        _seed_followups(control, followups)
        started = time.monotonic()
        job = control.send_webhooks(
            f"{base}/webhooks/leadterra",
            secret,
            replies,
            rate=50,
            concurrency=10,
            mix=MIX,
            duplicate_share=0.1,
            redeliver_share=0.05,
            retry_scale=0.01,
            email_domains=["acme.io", "globex.com", "initech.io"],
        )
        done = _watch(console, kids, worker, control, job["id"], replies, followups, started)
        done = _send_drafts(console, kids, worker, box.links) and done
        _summary(console, service, control, job["id"], redis_url, env["KEY_PREFIX"], followups)
        console.print(data(f"Logs of every process: {folder}"))
        notes = ["sign in with ADMIN_TOKEN"] if admin_token else []
        if not keep:
            notes.append("closes with the demo; --keep keeps it up")
        console.print(data(f"The console: {site}" + (f" ({'; '.join(notes)})" if notes else "")))
        if keep:
            console.print(data("Keeping every process up until Ctrl-C."))
            kids.wait_for_interrupt()
        return 0 if done else 1


def _watch(
    console: Console,
    kids: Children,
    worker: Child,
    control: SandboxControl,
    job_id: str,
    replies: int,
    followups: int,
    started: float,
) -> bool:
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        sent = progress.add_task("webhooks sent", total=replies)
        assigned = progress.add_task("replies assigned", total=None)
        routed = progress.add_task("follow-ups decided", total=followups)
        sla = progress.add_task("SLA: reminded, re-routed", total=len(SLA_STEPS))
        sdrs = _Sdrs(control)

        def finished() -> bool:
            report = control.webhook_job(job_id, deliveries=False)
            interested = report["classifications"].get("interested", 0)
            events = worker.events()
            decided = sum(1 for e in events if e.get("event") in DECISIONS)
            steps = {e.get("event") for e in events if e.get("reply_id") == sdrs.kept}
            handoffs = control.handoffs()
            sdrs.act(handoffs)
            progress.update(sent, completed=report["events"])
            progress.update(
                assigned,
                completed=len({h["replyId"] for h in handoffs}),
                total=interested if report["status"] != "running" else None,
            )
            progress.update(routed, completed=decided)
            progress.update(sla, completed=len(steps & set(SLA_STEPS)))
            done = report["status"] != "running" and len(handoffs) >= interested
            return bool(done and decided >= followups and steps >= set(SLA_STEPS))

        left = TIMEOUT - (time.monotonic() - started)
        try:
            return wait_until(finished, left, 0.25, what="every reply and follow-up", alive=[kids])
        except DeadlineExceeded:
            return False


def _send_drafts(console: Console, kids: Children, worker: Child, links: Any) -> bool:
    """Wait for every generated draft's link to reach the demo's inbox, then click them all."""
    generated = len([e for e in worker.events() if e.get("event") == "draft.generated"])
    try:
        wait_until(lambda: len(links()) >= generated, 30, 0.2, what="the drafts", alive=[kids])
    except DeadlineExceeded:
        return False
    answers = click_all(links())
    console.print(data(f"Clicked Send on {len(links())} drafts: answers {answers}"))
    return True


def _per_sdr_table(control: SandboxControl, per_sdr: Counter[str]) -> Table:
    sdrs = {s["id"]: s for s in control.state()["sdrs"]}
    table = Table(title="Replies per SDR")
    for column in ("SDR", "Gmail", "replies assigned"):
        table.add_column(column)
    for sdr_id in sorted(sdrs, key=lambda s: int(s.split("_")[-1])):
        table.add_row(
            data(sdr_id),
            data("connected" if sdrs[sdr_id]["gmailConnected"] else "disconnected"),
            data(per_sdr.get(sdr_id, 0)),
        )
    return table


def _summary(
    console: Console,
    service: dict[str, Child],
    control: SandboxControl,
    job_id: str,
    redis_url: str,
    prefix: str,
    followups: int,
) -> None:
    events = service["worker"].events()
    drafts = Counter(
        str(e["event"]) for e in [*events, *service["web"].events()] if e.get("event") in DRAFTS
    )
    report = control.webhook_job(job_id, deliveries=False)
    per_sdr = Counter(h["sdrId"] for h in control.handoffs() if not h.get("forced"))
    sla = Counter(str(e["event"]) for e in events if str(e.get("event", "")).startswith("sla."))
    console.print(_per_sdr_table(control, per_sdr))

    decisions = Counter(e["event"].split(".")[1] for e in events if e.get("event") in DECISIONS)
    latencies = [
        e["since_webhook_ms"]
        for e in events
        if e.get("event") == "reply.assigned" and e.get("since_webhook_ms") is not None
    ]
    client = redis.Redis.from_url(redis_url)
    dead = int(client.hlen(Keys(prefix).dlq))
    client.close()
    results = report.get("attemptResults", {})
    totals = Table(title="Summary")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    rows = [
        ("webhooks sent (with duplicates and retries)", report["attempts"]),
        ("  accepted and enqueued (202)", results.get("202", 0)),
        ("  ignored or duplicate (200)", results.get("200", 0)),
        ("interested replies", report["classifications"].get("interested", 0)),
        ("replies assigned", sum(per_sdr.values())),
        ("follow-ups routed (log)", decisions.get("routed", 0)),
        ("follow-ups skipped (thread over)", decisions.get("skipped", 0)),
        ("follow-ups rescheduled (off hours)", decisions.get("rescheduled", 0)),
        ("follow-ups seeded", followups),
        ("drafts generated (FOLLOWUP_DRAFTS)", drafts.get("draft.generated", 0)),
        ("drafts sent in one click (double clicks once)", drafts.get("draft.sent", 0)),
        ("handoffs acted on in time (SLA 15 s)", sla.get("sla.acted", 0)),
        ("SLA reminders", sla.get("sla.reminded", 0)),
        ("SLA re-routes (forceForward to another SDR)", sla.get("sla.rerouted", 0)),
        ("dead letters", dead),
    ]
    for label, value in rows:
        totals.add_row(data(label), data(value))
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        totals.add_row("webhook to assigned, p50 (ms)", f"{statistics.median(ordered):.0f}")
        totals.add_row("webhook to assigned, p99 (ms)", f"{p99:.0f}")
    console.print(totals)
