"""Follow-ups: 10,000 due follow-ups across 50 SDR keys, polled every second, routed once each.

The sandbox is seeded in bulk (200 pending follow-ups per SDR, each on its own thread, due in
the last hour), then a fifth of the threads are moved to a finished status so those follow-ups
are skipped (one Leadterra call each) while the rest are routed (log only: no destination is
configured). A worker and beat run at LOG_LEVEL=INFO, the service's default, because each
decision's log line is what this scenario counts and times; the CPU figures include that logging.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from typing import Any

from bench.common import Outcome, children, say
from bench.e2e import JITTER_MS, LATENCY_MS
from bench.procfs import CpuMeter
from bench.services import Service, sdr_keys, start_redis, start_sandbox
from worker.children import Child
from worker.deadline import wait_until

NAME = "followups"
THREADS = 32
TERMINAL = ("meeting_booked", "won", "lost_timing", "archived")
TERMINAL_EVERY = 5  # every 5th thread is finished: its follow-up is skipped
DECISION = '"event": "followup.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("followups")
    group.add_argument("--followups-sdrs", type=int, help="SDR keys (50; quick 10)")
    group.add_argument("--followups-per-sdr", type=int, help="due per SDR (200; quick 50)")


def seed(service: Service, sdrs: int, per_sdr: int) -> int:
    """Bulk-seed the follow-ups; finish every TERMINAL_EVERY-th thread. Returns the skips due."""
    control = service.sandbox.control if service.sandbox else None
    assert control is not None
    control.seed_followups(per_sdr=per_sdr, due_from_seconds=-3600, due_to_seconds=-60)
    threads = [(t["id"], t["sdrId"]) for t in control.state()["threads"]]
    finished = [
        {"id": tid, "sdrId": sdr, "status": TERMINAL[n % len(TERMINAL)]}
        for n, (tid, sdr) in enumerate(threads)
        if n % TERMINAL_EVERY == 0
    ]
    for start in range(0, len(finished), 2000):
        control.seed_threads(finished[start : start + 2000])
    return len(finished)


def count_decisions(worker: Child) -> int:
    with worker.log_path.open(errors="replace") as log:
        return sum(1 for line in log if DECISION in line)


def when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def run(opts: argparse.Namespace) -> Outcome:
    sdrs = opts.followups_sdrs or (10 if opts.quick else 50)
    per_sdr = opts.followups_per_sdr or (50 if opts.quick else 200)
    total = sdrs * per_sdr
    out = Outcome(NAME, data={"settings": {"sdrs": sdrs, "per_sdr": per_sdr, "total": total}})
    with children(NAME) as procs:
        sandbox = start_sandbox(procs, sdrs=sdrs, latency_ms=LATENCY_MS, jitter_ms=JITTER_MS)
        extra = {
            "LEADTERRA_SDR_API_KEYS": sdr_keys(sdrs),
            "FOLLOWUP_POLL_SECONDS": "1",
            "FOLLOWUP_LIMIT": "200",
            "LOG_LEVEL": "INFO",
        }
        service = Service(start_redis(procs), sandbox, extra=extra)
        skips = seed(service, sdrs, per_sdr)
        say(f"seeded {total} due follow-ups on {sdrs} SDRs ({skips} on finished threads)")
        worker = service.start_workers(procs, 1, THREADS)[0]
        since = sandbox.control.last_seq()
        beat = service.start_beat(procs)
        meter = CpuMeter({"worker": worker.pid, "beat": beat.pid}).start()
        started = datetime.now().timestamp()
        wait_until(
            lambda: count_decisions(worker) >= total,
            max(120.0, total / 20),
            0.5,
            what=f"{total} follow-up decisions",
            alive=[worker, beat],
        )
        meter.stop()
        beat.stop()
        worker.stop()
        calls = sandbox.control.calls(since=since)
        events = list(worker.events())
    out.data["result"] = result = measure(events, calls, total, sdrs, started, meter)
    say(
        f"{result['decided']} decided in {result['seconds_to_route_all']} s; "
        f"{result['calls_per_followup']} calls and {result['cpu_ms_per_followup']} ms CPU each; "
        f"inbox reads {result['inbox_first_pages']} for {result['polls_with_claims']} poll(s)"
    )
    table(out, result, sdrs)
    return out


def measure(
    events: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    total: int,
    sdrs: int,
    started: float,
    meter: CpuMeter,
) -> dict[str, Any]:
    decisions = [e for e in events if str(e.get("event", "")).startswith("followup.")]
    polled = [e for e in events if e.get("event") == "followups.polled"]
    with_claims = [e for e in polled if int(e.get("claimed", 0)) > 0]
    endpoints = Counter(str(c["endpoint"]) for c in calls)
    inbox = [c for c in calls if c["endpoint"] == "GET /v1/sdr/inbox"]
    first_pages = [c for c in inbox if "offset=" not in str(c.get("query") or "")]
    per_key = Counter(str(c["key"]) for c in first_pages)
    due_calls = [c for c in calls if c["endpoint"] == "GET /v1/sdr/followups/due"]
    poll_at = sorted(float(c["at"]) for c in [*due_calls, *inbox] if float(c["at"]) > 0)
    first_claims = [c for c in due_calls if c["key"] != "workspace"][: max(sdrs, 1)]
    poll_span = (
        max(float(c["at"]) for c in inbox) - float(first_claims[0]["at"])
        if inbox and first_claims
        else 0.0
    )
    last = max(when(e) for e in decisions)
    first_due = min((float(c["at"]) for c in due_calls), default=started)
    cpu = meter.used["worker"] + meter.used["beat"]
    return {
        "followups": total,
        "decided": len(decisions),
        "decisions": dict(Counter(str(e["event"]) for e in decisions)),
        "distinct_decided": len({e.get("followup_id") for e in decisions}),
        "seconds_to_route_all": round(last - started, 2),
        "seconds_from_first_poll": round(last - first_due, 2),
        "polls": len(polled),
        "polls_skipped": sum(1 for e in events if e.get("event") == "followups.poll_skipped"),
        "polls_with_claims": len(with_claims),
        "poll_with_claims_ms": [e.get("duration_ms") for e in with_claims],
        "poll_span_s": round(poll_span, 2),
        "poll_calls": len(first_claims) + len(inbox),
        "poll_mean_gap_ms": round(poll_span / max(len(first_claims) + len(inbox) - 1, 1) * 1000, 1),
        "due_and_inbox_calls": len(poll_at),
        "calls": len(calls),
        "calls_by_endpoint": dict(endpoints),
        "calls_per_followup": round(len(calls) / total, 4),
        "inbox_calls": len(inbox),
        "inbox_first_pages": len(first_pages),
        "inbox_first_pages_per_sdr": [
            min(per_key.values(), default=0),
            max(per_key.values(), default=0),
        ],
        "expected_inbox_reads": sdrs * len(with_claims),
        "cpu_s": meter.used,
        "cpu_ms_per_followup": round(cpu / total * 1000, 3),
    }


def table(out: Outcome, r: dict[str, Any], sdrs: int) -> None:
    out.row(
        f"time to route {r['followups']} due follow-ups",
        r["seconds_to_route_all"],
        "s",
        reference=f"{r['seconds_from_first_poll']} s after the first due read; the poll "
        f"with claims took {r['poll_with_claims_ms']} ms: {r['poll_calls']} calls "
        f"(up to 8 SDR keys at a time), one every {r['poll_mean_gap_ms']} ms",
    )
    out.row(
        "follow-up decisions",
        r["decided"],
        "",
        reference=str(r["decisions"]),
        target=f"{r['followups']}, each once",
        met=r["decided"] == r["followups"] == r["distinct_decided"],
    )
    out.row("CPU per follow-up, worker + beat", round(r["cpu_ms_per_followup"] * 1000), "us")
    out.row(
        "Leadterra calls per follow-up",
        r["calls_per_followup"],
        "",
        reference=", ".join(f"{k.split(' ', 1)[1]} {v}" for k, v in r["calls_by_endpoint"].items()),
    )
    ok = r["inbox_first_pages"] <= r["expected_inbox_reads"]
    out.row(
        "inbox reads (first pages) vs SDRs x polls with claims",
        r["inbox_first_pages"],
        "",
        reference=f"{sdrs} x {r['polls_with_claims']} = {r['expected_inbox_reads']}; "
        f"{r['inbox_calls']} inbox pages in all; per SDR {r['inbox_first_pages_per_sdr']}",
        target="shared per SDR per poll",
        met=ok,
    )
