"""Reconcile: what a sweep costs, and how long a reply whose webhook was lost waits.

Part 1, the cost of one sweep with 0, 100 and 10,000 new replies since the last one: a sweep
(`worker.intake.sweep.reconcile`) runs in this process against the sandbox and a Redis of its
own, at the default settings (pages of 50, RECONCILE_MAX_PAGES 50, overlap 900 s), so its CPU is
this process's (the HTTP client, parsing, the enqueue pipeline; Redis's and the sandbox's own CPU
are not in it) and its API calls are the sandbox's call log. 60% of the new replies are
interested. 10,000 new replies need 200 pages: more than one sweep's page budget, so that row
counts every sweep until one completes; the sweep that closes the gap then reads the top again
(the overlap, which the new replies fill) with what is left of its budget. The floor: one call
when nothing arrived, and ceil(new / 50) + 1 pages (the last page crosses the floor) when
something did. The new replies arrive one after another over 300 s (the default interval).

Part 2, time to assignment at RECONCILE_SECONDS=15: web, worker and beat run as deployed, every
webhook of a job is dropped (one reply a second), and each reply's wait is its handoff's time
minus its `receivedAt` (whole seconds, so up to 1 s is rounding). Expected: about half the
interval on average, the interval plus a sweep and an assignment at worst.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import Outcome, children, latency_summary, say
from bench.services import PREFIX, SECRET, Service, start_redis, start_sandbox
from config.settings import Settings
from worker.deadline import wait_until
from worker.intake.sweep import reconcile
from worker.keys import Keys
from worker.logs import configure_logging
from worker.runtime import Runtime

NAME = "reconcile"
LIST = "GET /v1/replies"
SIZES = (0, 100, 10_000)
INTERVAL = 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reconcile")
    group.add_argument("--reconcile-lost", type=int, help="dropped webhooks timed (60; quick 20)")


def _runtime(service: Service) -> Runtime:
    """A worker's runtime in this process. Its log is cut to errors: the CPU measured leaves
    out a worker's `reply.recovered` lines (one per reply found) and `leadterra.call` lines."""
    configure_logging("ERROR", "json")
    env = service.env()
    settings = Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    return Runtime(settings)


def _seed(service: Service, count: int, prefix: str) -> None:
    """`count` replies received one after another over the default sweep interval (300 s),
    after every reply seeded before: the replies a deployment finds at its next sweep."""
    control = service.sandbox.control if service.sandbox else None
    assert control is not None
    state = control.state()
    stamps = [_epoch(r["receivedAt"]) for r in state["replies"]] or [time.time()]
    start, step = max(stamps) + 1, 300 / max(1, count)
    interested = round(count * 0.6)
    replies = [
        {
            "id": f"{prefix}{n:06d}",
            "email": f"lead{n}@example.com",
            "campaignId": "camp_bench",
            "classification": "interested" if n < interested else "not_interested",
            "receivedAt": _iso_ms(start + n * step),
        }
        for n in range(count)
    ]
    for first in range(0, count, 5000):  # slices the control API answers fast
        control.seed_replies(replies[first : first + 5000])


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _iso_ms(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def sweep_cost(service: Service, rt: Runtime, new: int) -> dict[str, Any]:
    """Seed `new` replies, then sweep until a sweep completes: calls, CPU and wall per sweep."""
    control = service.sandbox.control if service.sandbox else None
    assert control is not None
    _seed(service, new, f"rpl_n{new}_")
    since = control.last_seq()
    sweeps = []
    while True:
        cpu, wall = time.process_time(), time.perf_counter()
        result = reconcile(rt)
        sweeps.append(
            {
                "complete": result.complete,
                "pages": result.pages,
                "enqueued": result.enqueued,
                "cpu_ms": round((time.process_time() - cpu) * 1000, 1),
                "wall_ms": round((time.perf_counter() - wall) * 1000, 1),
            }
        )
        if result.complete or len(sweeps) > 20:
            break
    calls = len(control.calls(since=since, endpoint=LIST))
    return {
        "new": new,
        "sweeps": sweeps,
        "sweeps_needed": len(sweeps),
        "calls": calls,
        "calls_floor": 1 if new == 0 else math.ceil(new / 50) + 1,
        "enqueued": sum(s["enqueued"] for s in sweeps),
        "cpu_ms": round(sum(s["cpu_ms"] for s in sweeps), 1),
        "wall_ms": round(sum(s["wall_ms"] for s in sweeps), 1),
    }


def lost_to_assigned(procs: Any, service: Service, count: int) -> dict[str, Any]:
    control = service.sandbox.control if service.sandbox else None
    assert control is not None
    env = {"RECONCILE_SECONDS": str(INTERVAL), "LOG_LEVEL": "INFO"}
    service.start_web(procs, **env)
    service.start_workers(procs, 1, 16, **env)
    service.start_beat(procs, **env)
    swept = Keys(PREFIX).reconcile_last_success
    wait_until(lambda: service.redis.client().exists(swept), 4 * INTERVAL, 0.5, what="a sweep")
    job = control.send_webhooks(
        service.webhook_url, SECRET, count, rate=1.0, drop_share=1.0, reply_id_prefix="rpl_lost_"
    )
    report = control.wait_webhook_job(job["id"], timeout=count + 60)
    ids = {d["replyId"] for d in report["deliveries"]}
    wait_until(
        lambda: len({h["replyId"] for h in control.handoffs() if h["replyId"] in ids}) >= len(ids),
        count + 4 * INTERVAL,
        0.5,
        what=f"{len(ids)} dropped replies assigned",
    )
    state = control.state()
    received = {
        r["id"]: datetime.fromisoformat(r["receivedAt"].replace("Z", "+00:00")).timestamp()
        for r in state["replies"]
        if r["id"] in ids
    }
    waits = []
    for handoff in state["handoffs"]:
        if handoff["replyId"] in ids:
            at = datetime.fromisoformat(handoff["at"].replace("Z", "+00:00")).timestamp()
            waits.append(at - received[handoff["replyId"]])
    return {"lost": len(ids), "handoffs": len(waits), **latency_summary(waits)}


def run(opts: argparse.Namespace) -> Outcome:
    lost = opts.reconcile_lost or (20 if opts.quick else 60)
    out = Outcome(NAME, data={"settings": {"sizes": SIZES, "lost": lost, "interval": INTERVAL}})
    with children(NAME) as procs:
        sandbox = start_sandbox(procs, sdrs=6)
        service = Service(start_redis(procs), sandbox, extra={"LEADTERRA_MAX_RPS": "100000"})
        rt = _runtime(service)
        reconcile(rt)  # the first sweep: nothing yet, so no watermark
        costs = []
        for new in SIZES:
            cost = sweep_cost(service, rt, new)
            say(
                f"{new} new: {cost['sweeps_needed']} sweep(s), {cost['calls']} calls, "
                f"{cost['cpu_ms']} ms CPU, {cost['enqueued']} enqueued"
            )
            costs.append(cost)
        sandbox.control.reset()
        service.redis.flush()
        latency = lost_to_assigned(procs, service, lost)
        say(f"dropped webhook to assignment: {latency}")
    out.data["sweeps"] = costs
    out.data["lost_to_assigned"] = latency
    for cost in costs:
        # a sweep that closes a gap then reads the top again (the overlap) with what is left
        # of its page budget: at most RECONCILE_MAX_PAGES calls more than the floor
        slack = 0 if cost["sweeps_needed"] == 1 else rt.settings.reconcile_max_pages
        out.row(
            f"sweep, {cost['new']:,} new replies: API calls",
            cost["calls"],
            "calls",
            reference=f"floor {cost['calls_floor']}",
            ratio=cost["calls"] / cost["calls_floor"],
            target="= floor" if not slack else f"<= floor + {slack} (the overlap re-read)",
            met=cost["calls"] <= cost["calls_floor"] + slack,
        )
        out.row(
            f"sweep, {cost['new']:,} new replies: CPU",
            cost["cpu_ms"],
            "ms",
            reference=f"{cost['sweeps_needed']} sweep(s), {cost['wall_ms']} ms wall"
            + ("" if cost["sweeps"][-1]["complete"] else ", never complete"),
        )
    p50, worst = latency["p50_ms"], latency["max_ms"]
    out.row(
        f"dropped webhook to assignment at RECONCILE_SECONDS={INTERVAL}: p50",
        None if p50 is None else round(p50 / 1000, 1),
        "s",
        reference=f"half the interval, {INTERVAL / 2:g} s",
        ratio=None if p50 is None else p50 / 1000 / (INTERVAL / 2),
    )
    out.row(
        "dropped webhook to assignment: max",
        None if worst is None else round(worst / 1000, 1),
        "s",
        reference=f"the interval, {INTERVAL} s",
        ratio=None if worst is None else worst / 1000 / INTERVAL,
        target=f"<= {INTERVAL + 5} s",
        met=worst is not None and worst / 1000 <= INTERVAL + 5,
    )
    return out
