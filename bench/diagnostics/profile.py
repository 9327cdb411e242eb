"""Profiles of the hot paths: the receiver under ingest, a worker under the end-to-end load.

py-spy samples from outside the process (`--nonblocking`, so the target is never paused; it
still takes some CPU of the two cores, which is why this is a scenario of its own and not part of
the measured runs). The worker is recorded three ways at once: its first seconds (all active
threads: the start-up), then the steady state counting only the thread holding the GIL (where
Python spends CPU) and counting every active thread (which also shows threads waiting on locks).
The raw stacks stay in bench/results/logs/profile/ for flame graphs.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import loadgen
from bench.common import Outcome, children, say
from bench.diagnostics import monitor, profiling
from bench.diagnostics.monitor import CommandLog
from bench.e2e import deployment
from bench.pipeline import run_replies
from bench.services import SECRET, Service, start_redis
from worker.children import Children

NAME = "profile"
WORKER_THREADS = 64
STARTUP_SECONDS = 2
MONITORED = 200  # replies sent with Redis's MONITOR on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("profile")
    group.add_argument("--profile-seconds", type=float, help="seconds recorded (12; quick 4)")
    group.add_argument(
        "--profile-replies", type=int, help="replies through the worker (4000; quick 1200)"
    )
    group.add_argument(
        "--profile-threads", type=int, help=f"the worker's threads ({WORKER_THREADS})"
    )


def profile_receiver(procs: Children, seconds: float) -> dict[str, Any]:
    service = Service(start_redis(procs))
    web = service.start_web(procs)
    spy, raw = profiling.record(procs, "receiver", web.pid, seconds, delay=2)
    spec = {
        "mode": "duration",
        "url": service.webhook_url,
        "secret": SECRET,
        "prefix": "rpl_prof_",
        "connections": 50,
        "warmup": 1.0,
        "seconds": seconds + 2,
        "prebuild": int((seconds + 3) * 6000),
    }
    load = loadgen.run(procs, "loadgen-profile", spec)
    spy.popen.wait(30)
    summary = profiling.summarize(raw, kind="receiver")
    say(f"receiver at {load['accepted_per_s']}/s: {profiling.describe(summary)}")
    web.stop()
    service.redis.proc.stop()
    return {"load": {k: v for k, v in load.items() if k != "accepted_at"}, "profile": summary}


def profile_worker(
    procs: Children, seconds: float, replies: int, threads: int = WORKER_THREADS
) -> dict[str, Any]:
    service, web = deployment(procs)
    worker = service.start_workers(procs, 1, threads)[0]
    spies = {
        "startup": profiling.record(procs, "worker-startup", worker.pid, STARTUP_SECONDS),
        "gil": profiling.record(
            procs, "worker-gil", worker.pid, seconds, gil=True, delay=STARTUP_SECONDS + 0.5
        ),
        "all": profiling.record(
            procs, "worker-all", worker.pid, seconds, delay=STARTUP_SECONDS + 0.5
        ),
    }
    run = run_replies(procs, service, name="prof", count=replies, web=web, workers=[worker])
    out: dict[str, Any] = {"run": run}
    for name, (spy, raw) in spies.items():
        spy.popen.wait(60)
        out[name] = profiling.summarize(raw, kind="worker")
        say(f"worker ({name}): {profiling.describe(out[name])}")
    with CommandLog(service.redis.url) as log:
        run_replies(procs, service, name="monitor", count=MONITORED, web=web, workers=[worker])
    per = log.per_process({"web": web.pid, "worker": worker.pid}, MONITORED)
    out["redis_commands_per_assignment"] = per
    say(f"Redis commands per assignment: {monitor.summary(per)}; {per}")
    return out


def run(opts: argparse.Namespace) -> Outcome:
    seconds = opts.profile_seconds or (4.0 if opts.quick else 12.0)
    replies = opts.profile_replies or (1200 if opts.quick else 4000)
    threads = opts.profile_threads or WORKER_THREADS
    settings = {"seconds": seconds, "replies": replies, "threads": threads}
    out = Outcome(NAME, data={"settings": settings})
    with children(NAME) as procs:
        out.data["receiver"] = profile_receiver(procs, seconds)
        out.data["worker"] = profile_worker(procs, seconds, replies, threads)
    rows(out, "receiver", out.data["receiver"]["profile"])
    rows(out, f"worker c{threads} (GIL)", out.data["worker"]["gil"])
    rows(out, f"worker c{threads} start-up", out.data["worker"]["startup"], 3, 0)
    per = out.data["worker"]["redis_commands_per_assignment"]
    for who, commands in sorted(per.items()):
        top = ", ".join(f"{c} {n}" for c, n in list(commands.items())[:8])
        out.row(
            f"Redis commands per assignment: {who}", monitor.summary(per)[who], "", reference=top
        )
    return out


def rows(out: Outcome, who: str, summary: dict[str, Any], buckets: int = 7, top: int = 4) -> None:
    """The largest buckets and functions (owners and the rest are in the JSON)."""
    for bucket, share in summary["buckets"][:buckets]:
        out.row(f"{who}: {bucket}"[:110], f"{share:.1%}", "samples")
    for frame, share in summary["self"][:top]:
        out.row(f"{who}: self {frame}"[:110], f"{share:.1%}", "samples")
