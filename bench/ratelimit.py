"""Rate limit: a backlog drained under LEADTERRA_MAX_RPS=50, measured at the sandbox's door.

The backlog is enqueued through the receiver with no worker running; then one worker starts
(enough threads to go far faster than the limit) and drains it. The sandbox's call log stamps
every /v1 call on arrival: the achieved rate is calls / (last - first), and the worst overshoot is
the most calls in any 1-second sliding window minus the limit.
"""

from __future__ import annotations

import argparse
import bisect
from typing import Any

from bench import loadgen
from bench.common import Outcome, children, say
from bench.e2e import DISCONNECTED, JITTER_MS, LATENCY_MS, SDRS
from bench.procfs import CpuMeter
from bench.services import PREFIX, SECRET, Service, start_redis, start_sandbox

NAME = "ratelimit"
LIMIT, BURST = 50, 5
THREADS = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ratelimit")
    group.add_argument("--rate-backlog", type=int, help="replies enqueued first (2000; quick 300)")


def max_in_window(times: list[float], window: float = 1.0) -> tuple[int, float]:
    """The most timestamps in any window [t, t + window) of the sorted `times`, and its start."""
    counts = ((bisect.bisect_left(times, t + window) - i, t) for i, t in enumerate(times))
    return max(counts, default=(0, 0.0))


def run(opts: argparse.Namespace) -> Outcome:
    backlog = opts.rate_backlog or (300 if opts.quick else 2000)
    out = Outcome(NAME, data={"settings": {"backlog": backlog, "limit": LIMIT, "burst": BURST}})
    with children(NAME) as procs:
        sandbox = start_sandbox(
            procs, sdrs=SDRS, disconnected=DISCONNECTED, latency_ms=LATENCY_MS, jitter_ms=JITTER_MS
        )
        service = Service(
            start_redis(procs),
            sandbox,
            extra={"LEADTERRA_MAX_RPS": str(LIMIT), "LEADTERRA_BURST": str(BURST)},
        )
        web = service.start_web(procs)
        sandbox.control.seed_replies(count=backlog, prefix="rpl_rate_")
        spec = {
            "mode": "count",
            "url": service.webhook_url,
            "secret": SECRET,
            "prefix": "rpl_rate_",
            "connections": 20,
            "count": backlog,
        }
        loadgen.run(procs, "loadgen-backlog", spec)
        with service.redis.client() as client:
            queued = int(client.llen(f"{PREFIX}assign"))
        say(f"backlog of {queued} enqueued with no worker running; starting the worker")
        since = sandbox.control.last_seq()
        worker = service.start_workers(procs, 1, THREADS)[0]
        meter = CpuMeter({"worker": worker.pid}).start()
        sandbox.wait_handoffs(backlog, backlog / LIMIT * 2 + 60, [web, worker])
        meter.stop()
        calls = sandbox.control.calls(since=since)
    out.data["result"] = result = measure(calls, queued, meter.used["worker"])
    say(
        f"{result['calls']} calls at {result['calls_per_s']}/s ({result['share_of_limit']:.1%}), "
        f"worst 1 s window {result['max_calls_in_1s']} (over by {result['overshoot']})"
    )
    table(out, result)
    return out


def measure(calls: list[dict[str, Any]], queued: int, worker_cpu: float) -> dict[str, Any]:
    times = sorted(float(c["at"]) for c in calls)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span else 0.0
    worst, worst_at = max_in_window(times)
    later, _ = max_in_window([t for t in times if t >= times[0] + 1.0]) if times else (0, 0.0)
    statuses: dict[str, int] = {}
    endpoints: dict[str, int] = {}
    for call in calls:
        statuses[str(call["status"])] = statuses.get(str(call["status"]), 0) + 1
        endpoints[call["endpoint"]] = endpoints.get(call["endpoint"], 0) + 1
    return {
        "queued": queued,
        "calls": len(times),
        "span_s": round(span, 2),
        "calls_per_s": round(rate, 2),
        "share_of_limit": round(rate / LIMIT, 4),
        "max_calls_in_1s": worst,
        "overshoot": worst - LIMIT,
        "worst_window_starts_s": round(worst_at - times[0], 2) if times else None,
        "max_calls_in_1s_after_first_s": later,
        "statuses": statuses,
        "endpoints": endpoints,
        "worker_cpu_ms_per_call": round(worker_cpu / max(len(times), 1) * 1000, 3),
    }


def table(out: Outcome, result: dict[str, Any]) -> None:
    share = result["share_of_limit"]
    out.row(
        f"achieved calls/s, limit {LIMIT}",
        result["calls_per_s"],
        "/s",
        reference=f"{result['calls']} calls over {result['span_s']} s; {result['endpoints']}",
        ratio=share,
        target=">= 0.95 x limit",
        met=share >= 0.95,
    )
    out.row(
        "worst 1 s sliding window minus limit",
        result["overshoot"],
        "calls",
        reference=f"max {result['max_calls_in_1s']} calls in 1 s, from +"
        f"{result['worst_window_starts_s']} s; after the first second at most "
        f"{result['max_calls_in_1s_after_first_s']}; statuses {result['statuses']}",
        target=f"<= burst ({BURST})",
        met=result["overshoot"] <= BURST,
    )
    out.row(
        "worker CPU per call while limited",
        round(result["worker_cpu_ms_per_call"] * 1000),
        "us",
        reference=f"1 worker x {THREADS} threads",
    )
