"""Scaling: the end-to-end run with 1, 2 and 4 worker processes at equal total threads.

Same deployment as e2e (sandbox at 80-120 ms, 7 of 10 SDRs connected, limiter out of the way);
only the split of the threads over processes changes. On 2 cores more processes can only help
while one process's GIL is the limit; past that they compete with the receiver, Redis and the
sandbox for the same two cores.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.common import Outcome, children
from bench.e2e import API_LATENCY_S, deployment
from bench.pipeline import run_replies

NAME = "scaling"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaling")
    group.add_argument("--scaling-replies", type=int, help="replies per run (5000; quick 400)")
    group.add_argument("--scaling-processes", help="comma-separated process counts (1,2,4)")
    group.add_argument("--scaling-threads", type=int, help="total threads, split evenly (64)")


def run(opts: argparse.Namespace) -> Outcome:
    replies = opts.scaling_replies or (400 if opts.quick else 5000)
    counts = [int(n) for n in (opts.scaling_processes or "1,2,4").split(",")]
    threads = opts.scaling_threads or 64
    cfg = {"replies": replies, "processes": counts, "total_threads": threads}
    out = Outcome(NAME, data={"settings": cfg})
    runs: dict[int, dict[str, Any]] = {}
    with children(NAME) as procs:
        service, web = deployment(procs)
        for n in counts:
            workers = service.start_workers(procs, n, threads // n, name=f"worker-p{n}")
            runs[n] = run_replies(
                procs, service, name=f"p{n}", count=replies, web=web, workers=workers
            )
            for worker in workers:
                worker.stop()
    out.data["runs"] = {str(n): r for n, r in runs.items()}
    base = runs[counts[0]]["assignments_per_s"]
    for n in counts:
        r = runs[n]
        cores = r["cores"]
        worker_cores = round(sum(v for k, v in cores.items() if k.startswith("worker")), 2)
        out.row(
            f"{n} process(es) x {threads // n} threads: assignments/s",
            r["assignments_per_s"],
            "/s",
            reference=f"ideal {threads / API_LATENCY_S:.0f}/s; vs {counts[0]} process(es)",
            ratio=r["assignments_per_s"] / base,
        )
        out.row(
            f"{n} process(es): CPU per assignment (receiver + workers)",
            round(r["cpu_ms_per_assignment"] * 1000),
            "us",
            reference=f"workers {round(r['worker_cpu_ms_per_assignment'] * 1000)} us; "
            f"cores workers {worker_cores}, web {cores['web']}, machine {r['machine_cores']}, "
            f"other {r['other_cores']}",
        )
        lat = r["webhook_to_assigned"]
        rss = max(v or 0 for k, v in r["peak_rss_mb"].items() if k.startswith("worker"))
        out.row(
            f"{n} process(es): webhook->assigned p50/p99 (backlog)",
            f"{lat['p50_ms']} / {lat['p99_ms']}",
            "ms",
            reference=f"peak RSS {rss} MiB per worker",
        )
    return out
