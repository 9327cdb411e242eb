"""End to end: interested replies through receiver, queue, rotation and assign, at two
worker concurrencies, against the bare-httpx floors; then p99 at half the saturating load.

The sandbox answers in 80-120 ms (100 ms on average) with 10 SDRs, 7 connected; the rate
limiter is set far above the load so it never binds. Each concurrency gets a fresh worker
process; the receiver stays up. Throughput is replies / (last handoff - first 202). Then
CELERY_EVENTS off against on, interleaved, at the top concurrency (bench/events.py). The
service logs at LOG_LEVEL=INFO; the target runs (the first concurrency, and half load) are
repeated with a receiver and workers at WARNING, the old rows' level, for comparison.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import events
from bench.common import Outcome, children, say
from bench.pipeline import httpx_floor, run_replies
from bench.services import QUIET_LOG_LEVEL, Service, start_redis, start_sandbox
from worker.children import Child, Children

NAME = "e2e"
SDRS, DISCONNECTED = 10, 3
LATENCY_MS, JITTER_MS = 80, 40
API_LATENCY_S = (LATENCY_MS + JITTER_MS / 2) / 1000
CPU_SATURATED = 1.8  # machine busy cores (of 2) above which a run is CPU-bound
GIL_SATURATED = 0.75  # one worker process's cores above which its GIL is the limit
FLOOR_CLIENTS = ("async", "threads")  # bench/httpfloor.py
#: worker CPU per assignment at the first concurrency: at most this many times the sync-threads
#: httpx floor's per call (the worker's own client); p99 webhook->assigned at half load: at most
#: this many ms above the p99 of the sandbox's own answer time in the same run
THREADS_FLOOR_TIMES, HALF_LOAD_OVER_MS = 2.0, 25.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("e2e")
    group.add_argument("--e2e-replies", type=int, help="replies per run (5000; quick 400)")
    group.add_argument(
        "--e2e-concurrency", help="comma-separated worker threads per run (16,64; quick 16,64)"
    )
    group.add_argument(
        "--e2e-half-seconds", type=float, help="length of the half-load run (20; quick 4)"
    )
    group.add_argument(
        "--e2e-floor-calls", type=int, help="calls per httpx floor run (2000; quick 300)"
    )
    events.add_arguments(group)


def settings(opts: argparse.Namespace) -> dict[str, Any]:
    return {
        "replies": opts.e2e_replies or (400 if opts.quick else 5000),
        "concurrency": [int(c) for c in (opts.e2e_concurrency or "16,64").split(",")],
        "half_seconds": opts.e2e_half_seconds or (4.0 if opts.quick else 20.0),
        "floor_calls": opts.e2e_floor_calls or (300 if opts.quick else 2000),
        "events_pairs": events.rounds(opts),
    }


def deployment(procs: Children) -> tuple[Service, Child]:
    """Redis, the sandbox at 80-120 ms with 7 of 10 SDRs connected, and the receiver."""
    redis = start_redis(procs)
    sandbox = start_sandbox(
        procs, sdrs=SDRS, disconnected=DISCONNECTED, latency_ms=LATENCY_MS, jitter_ms=JITTER_MS
    )
    service = Service(redis, sandbox)
    return service, service.start_web(procs)


def run(opts: argparse.Namespace) -> Outcome:
    cfg = settings(opts)
    out = Outcome(NAME, data={"settings": cfg, "api_latency_s": API_LATENCY_S})
    runs: dict[str, dict[str, Any]] = {}
    floors: dict[str, dict[str, Any]] = {}
    count, top = cfg["replies"], max(cfg["concurrency"])
    with children(NAME) as procs:
        service, web = deployment(procs)
        workers: list[Child] = []
        for c in cfg["concurrency"]:
            workers = service.start_workers(procs, 1, c, name=f"worker-c{c}")
            runs[f"c{c}"] = run_replies(
                procs, service, name=f"c{c}", count=count, web=web, workers=workers
            )
            # the floors at once (the worker idle): this machine's CPU speed drifts over minutes
            for client in FLOOR_CLIENTS:
                floors[f"{client}-c{c}"] = httpx_floor(
                    procs,
                    service,
                    name=f"floor-{client}-c{c}",
                    count=min(count, cfg["floor_calls"]),
                    concurrency=c,
                    client=client,
                )
            if c != top:
                for worker in workers:
                    worker.stop()
        best = max(r["assignments_per_s"] for r in runs.values())
        rate = round(best / 2, 1)
        half_count = max(50, min(count, int(rate * cfg["half_seconds"])))
        say(f"half load: {half_count} replies at {rate}/s on the c={top} worker")
        runs["half"] = run_replies(
            procs, service, name="half", count=half_count, web=web, workers=workers, rate=rate
        )
        for worker in workers:
            worker.stop()
        quiet(procs, service, web, cfg, runs, rate, half_count)
        if cfg["events_pairs"]:
            web = service.start_web(procs)  # back at LOG_LEVEL
            out.data["events"] = events.compare(
                procs, service, web, count=count, concurrency=top, pairs=cfg["events_pairs"]
            )
    out.data["runs"] = runs
    out.data["floors"] = floors
    table(out, cfg, runs, floors)
    if "events" in out.data:
        events.table(out, out.data["events"])
    return out


def quiet(
    procs: Children,
    service: Service,
    web: Child,
    cfg: dict[str, Any],
    runs: dict[str, dict[str, Any]],
    rate: float,
    half_count: int,
) -> None:
    """The target runs again with the receiver and workers at QUIET_LOG_LEVEL: the first
    concurrency, and half load at the same rate on the top one. `web` is stopped."""
    web.stop()
    level = {"LOG_LEVEL": QUIET_LOG_LEVEL}
    web = service.start_web(procs, **level)
    first, top = cfg["concurrency"][0], max(cfg["concurrency"])
    for c, name in ((first, f"c{first}"), (top, "half")):
        workers = service.start_workers(procs, 1, c, name=f"worker-quiet-c{c}", **level)
        runs[f"quiet-{name}"] = run_replies(
            procs,
            service,
            name=f"quiet-{name}",
            count=half_count if name == "half" else cfg["replies"],
            web=web,
            workers=workers,
            rate=rate if name == "half" else None,
        )
        for worker in workers:
            worker.stop()
    web.stop()


def table(
    out: Outcome,
    cfg: dict[str, Any],
    runs: dict[str, dict[str, Any]],
    floors: dict[str, dict[str, Any]],
) -> None:
    for c in cfg["concurrency"]:
        r, fa, ft = runs[f"c{c}"], floors[f"async-c{c}"], floors[f"threads-c{c}"]
        ideal = c / API_LATENCY_S
        ratio = r["assignments_per_s"] / ideal
        worker_cores = [v for k, v in r["cores"].items() if k.startswith("worker")]
        saturated = r["machine_cores"] >= CPU_SATURATED or max(worker_cores) >= GIL_SATURATED
        met: bool | str = True if ratio >= 0.8 else ("CPU-bound" if saturated else False)
        out.row(
            f"assignments/s, 1 worker x {c} threads",
            r["assignments_per_s"],
            "/s",
            reference=f"{c} / {API_LATENCY_S:.2f} s = {ideal:.0f}/s",
            ratio=ratio,
            target=">= 0.8 x concurrency/latency (until CPU saturates)",
            met=met,
        )
        lat = r["webhook_to_assigned"]
        out.row(
            f"webhook->assigned p50/p99 @c{c} (backlog)",
            f"{lat['p50_ms']} / {lat['p99_ms']}",
            "ms",
            reference=f"{r['replies']} replies queued at once; drains at the rate above",
        )
        worker_us = r["worker_cpu_ms_per_assignment"] * 1000
        first = c == cfg["concurrency"][0]
        for floor, label, target in ((ft, "threads", first), (fa, "async", False)):
            ratio_cpu = worker_us / max(floor["cpu_us_per_call"], 1e-9)
            out.row(
                f"worker CPU/assignment vs {label} floor @c{c}",
                round(worker_us),
                "us",
                reference=f"httpx {label} floor {floor['cpu_us_per_call']:.0f} us/call",
                ratio=ratio_cpu,
                target=f"<= {THREADS_FLOOR_TIMES:g} x floor" if target else "",
                met=ratio_cpu <= THREADS_FLOOR_TIMES if target else None,
            )
        quiet_run = runs.get(f"quiet-c{c}")
        if quiet_run is not None:
            quiet_us = quiet_run["worker_cpu_ms_per_assignment"] * 1000
            out.row(
                f"worker CPU/assignment vs threads floor @c{c}, {QUIET_LOG_LEVEL}",
                round(quiet_us),
                "us",
                reference=f"receiver {round(quiet_run['web_cpu_ms_per_assignment'] * 1000)} us, "
                f"{quiet_run['assignments_per_s']}/s",
                ratio=quiet_us / max(ft["cpu_us_per_call"], 1e-9),
            )
        out.row(
            f"CPU/assignment, receiver + workers @c{c}",
            round(r["cpu_ms_per_assignment"] * 1000),
            "us",
            reference=f"receiver {round(r['web_cpu_ms_per_assignment'] * 1000)} us",
        )
        cores = r["cores"]
        workers = round(sum(v for k, v in cores.items() if k.startswith("worker")), 2)
        out.row(
            f"cores web/workers/sandbox/redis/other @c{c}",
            f"{cores['web']} / {workers} / {cores['sandbox']} / {cores['redis']} / "
            f"{r['other_cores']}",
            "cores",
            reference=f"machine busy {r['machine_cores']} of 2",
        )
        out.row(
            f"peak RSS @c{c}", ", ".join(f"{k} {v}" for k, v in r["peak_rss_mb"].items()), "MiB"
        )
        for floor, label in ((fa, "async"), (ft, "threads")):
            out.row(
                f"httpx {label} floor @c{c}",
                floor["calls_per_s"],
                "/s",
                reference=f"{floor['cpu_us_per_call']:.0f} us CPU/call, p50/p99 "
                f"{floor['latency']['p50_ms']}/{floor['latency']['p99_ms']} ms",
                ratio=floor["calls_per_s"] / ideal,
            )
    for name, level in (("half", ""), ("quiet-half", f", {QUIET_LOG_LEVEL}")):
        if name in runs:
            half_rows(out, runs[name], level, targets=not level)
    dupes = sum(r["duplicates"] for r in runs.values())
    out.row("replies handed off twice", dupes, "", target="0", met=dupes == 0)


def half_rows(out: Outcome, half: dict[str, Any], level: str, *, targets: bool) -> None:
    """Latency at half load, and how far its p99 is above the sandbox's own answer p99."""
    lat, own = half["webhook_to_assigned"], half["sandbox_answer"]
    out.row(
        f"webhook->assigned p50/p99 at half load{level}",
        f"{lat['p50_ms']} / {lat['p99_ms']}",
        "ms",
        reference=f"{half['replies']} replies at {half['rate_sent']}/s; the sandbox's own "
        f"answer p50/p99 {own['p50_ms']} / {own['p99_ms']} ms",
    )
    over = round((lat["p99_ms"] or 1e9) - (own["p99_ms"] or 0), 1)
    out.row(
        f"half-load p99 above the sandbox's own answer p99{level}",
        over,
        "ms",
        reference=f"{lat['p99_ms']} - {own['p99_ms']} ms",
        target=f"<= {HALF_LOAD_OVER_MS:g} ms" if targets else "",
        met=over <= HALF_LOAD_OVER_MS if targets else None,
    )
