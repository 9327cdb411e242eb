"""What CELERY_EVENTS costs per assignment, measured inside the e2e scenario (bench/e2e.py).

The same replies go through one fresh worker process at the e2e's top concurrency with task
events off and on, interleaved (off-on, then on-off, ...) on the same receiver, sandbox and
Redis, so drift on a shared machine falls on both sides. With events on, Flower listens (when
installed), as in docker-compose.yml's `monitoring` profile, and its CPU is counted apart: the
service's cost is the worker's and Redis's. Figures are medians over the rounds; the ratios
on / off are within this run.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from typing import Any

from bench.common import Outcome, say
from bench.pipeline import run_replies
from bench.services import Service
from worker.children import Child, Children
from worker.deadline import wait_http
from worker.embedded_redis import free_port


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--e2e-events-rounds",
        type=int,
        help="off/on pairs comparing CELERY_EVENTS (2; quick 1; 0 skips them)",
    )


def rounds(opts: argparse.Namespace) -> int:
    given = opts.e2e_events_rounds
    return given if given is not None else (1 if opts.quick else 2)


def start_flower(procs: Children, service: Service) -> Child | None:
    """Flower on the deployment, as the monitoring profile runs it; None when not installed."""
    if importlib.util.find_spec("flower") is None:
        return None
    port = free_port()
    argv = [sys.executable, "-m", "celery", "--app", "worker.jobs.monitor:app", "flower"]
    flower = procs.start("flower", [*argv, f"--port={port}", "--address=127.0.0.1"], service.env())
    wait_http(f"http://127.0.0.1:{port}/healthcheck", 60, ok=(200,), alive=[flower])
    return flower


def one_run(
    procs: Children, service: Service, web: Child, *, events: bool, n: int, count: int, c: int
) -> dict[str, Any]:
    mode = "on" if events else "off"
    flower = start_flower(procs, service) if events else None
    workers = service.start_workers(
        procs, 1, c, name=f"worker-events-{mode}{n}", CELERY_EVENTS=str(events).lower()
    )
    watch = {"flower": flower.pid} if flower else {}
    try:
        result = run_replies(
            procs, service, name=f"events-{mode}{n}", count=count, web=web, workers=workers,
            watch=watch,
        )  # fmt: skip
    finally:
        for child in [*workers, *([flower] if flower else [])]:
            child.stop()
    result["redis_cpu_ms_per_assignment"] = round(result["cpu_s"]["redis"] / count * 1000, 3)
    if flower:
        result["flower_cpu_ms_per_assignment"] = round(result["cpu_s"]["flower"] / count * 1000, 3)
    return result


def compare(
    procs: Children, service: Service, web: Child, *, count: int, concurrency: int, pairs: int
) -> dict[str, Any]:
    """`pairs` off/on pairs; the medians of each side and the ratios on / off."""
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for n in range(pairs):
        for events in (False, True) if n % 2 == 0 else (True, False):
            result = one_run(procs, service, web, events=events, n=n, count=count, c=concurrency)
            runs["on" if events else "off"].append(result)
    keys = ("worker_cpu_ms_per_assignment", "redis_cpu_ms_per_assignment", "assignments_per_s")
    medians = {
        side: {k: statistics.median(r[k] for r in results) for k in keys}
        for side, results in runs.items()
    }
    flower = [
        r["flower_cpu_ms_per_assignment"] for r in runs["on"] if "flower_cpu_ms_per_assignment" in r
    ]
    summary = {
        "concurrency": concurrency,
        "replies": count,
        "pairs": pairs,
        "medians": medians,
        "ratios": {k: round(medians["on"][k] / max(medians["off"][k], 1e-9), 3) for k in keys},
        "flower_cpu_ms_per_assignment": statistics.median(flower) if flower else None,
        "runs": runs,
    }
    flower_ms = summary["flower_cpu_ms_per_assignment"]
    say(f"events: on/off ratios {summary['ratios']}, Flower {flower_ms} ms/assignment")
    return summary


def table(out: Outcome, summary: dict[str, Any]) -> None:
    off, on, ratio = summary["medians"]["off"], summary["medians"]["on"], summary["ratios"]
    c, pairs = summary["concurrency"], summary["pairs"]
    out.row(
        f"CELERY_EVENTS on/off: worker CPU/assignment @c{c}",
        f"{on['worker_cpu_ms_per_assignment']} / {off['worker_cpu_ms_per_assignment']}",
        "ms",
        reference=f"median of {pairs} interleaved pair(s)",
        ratio=ratio["worker_cpu_ms_per_assignment"],
    )
    out.row(
        f"CELERY_EVENTS on/off: assignments/s @c{c}",
        f"{on['assignments_per_s']} / {off['assignments_per_s']}",
        "/s",
        ratio=ratio["assignments_per_s"],
    )
    out.row(
        f"CELERY_EVENTS on/off: Redis CPU/assignment @c{c}",
        f"{on['redis_cpu_ms_per_assignment']} / {off['redis_cpu_ms_per_assignment']}",
        "ms",
        ratio=ratio["redis_cpu_ms_per_assignment"],
    )
    if summary["flower_cpu_ms_per_assignment"] is not None:
        out.row(
            f"Flower CPU/assignment, listening @c{c}",
            summary["flower_cpu_ms_per_assignment"],
            "ms",
            reference="its own process, not the service's",
        )
