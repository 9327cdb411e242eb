"""Footprint: the service's processes at the defaults, idle; their memory and their time to ready.

The service is the Procfile's `web` and `worker`: beat's schedule runs in the worker
(WORKER_BEAT, worker/jobs/beat_lease.py), so what the issue measures as web + worker + beat is
these two processes. Each run is a fresh deployment: a Redis of its own and the sandbox, then
the Procfile's commands started together, as honcho starts them, with nothing set but what
connects them (REDIS_URL, KEY_PREFIX, the sandbox's URL and keys, free ports; LOG_LEVEL,
WORKER_CONCURRENCY and the rate limit at their defaults). From the moment they are spawned
it polls the admin listener's /readyz (ADMIN_PORT) every 20 ms until it answers 200, noting
when the listener first answered and when the worker first blocked in BRPOP. Then it leaves
them idle until `--footprint-idle` seconds after the spawn (65: past beat's first follow-up
poll at FOLLOWUP_POLL_SECONDS=60, so every periodic task but the 300 s reconcile sweep has run
once), measures each process's CPU over 5 s (to show they are idle) and reads VmRSS.

VmRSS counts the pages a process maps, its own and shared ones (libpython, libcrypto): the sum
over processes is what the issue's target is written against, not what the machine loses.
Targets: the summed idle VmRSS at most 150 MiB, from spawn to /readyz 200 at most 3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import httpx

from bench.common import Outcome, children, say
from bench.procfs import CpuMeter, rss_mb
from bench.services import Service, start_redis, start_sandbox
from worker.children import Child, Children
from worker.cli.run import SERVICE
from worker.embedded_redis import free_port

NAME = "footprint"
SERVICES = tuple(SERVICE)
#: what services.Service sets for the throughput scenarios, left at the defaults here
AT_DEFAULTS = ("LOG_LEVEL", "WORKER_CONCURRENCY", "LEADTERRA_MAX_RPS")
TARGET_MIB, TARGET_READY_S = 150.0, 3.0
POLL_S, READY_TIMEOUT_S, CPU_WINDOW_S = 0.02, 30.0, 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("footprint")
    group.add_argument("--footprint-runs", type=int, help="fresh deployments (3; quick 1)")
    group.add_argument(
        "--footprint-idle", type=float, help="seconds from spawn to the reading (65; quick 10)"
    )


def _wait_ready(service: Service, admin: int, started: list[Child], t0: float) -> dict[str, float]:
    """Seconds from spawn to: the admin listener answering, the worker in BRPOP, /readyz 200."""
    marks: dict[str, float] = {}
    url = f"http://127.0.0.1:{admin}/readyz"
    with httpx.Client(timeout=0.5) as http:
        while "ready_s" not in marks:
            now = time.monotonic() - t0
            if now > READY_TIMEOUT_S:
                raise TimeoutError(f"/readyz not 200 after {READY_TIMEOUT_S:g} s ({marks})")
            for child in started:
                child.check_alive()
            if "consuming_s" not in marks and service.redis.blocked_consumers():
                marks["consuming_s"] = round(now, 3)
            try:
                status = http.get(url).status_code
            except httpx.HTTPError:
                status = 0
            if status and "admin_s" not in marks:
                marks["admin_s"] = round(time.monotonic() - t0, 3)
            if status == 200:
                marks["ready_s"] = round(time.monotonic() - t0, 3)
            else:
                time.sleep(POLL_S)
    return marks


def _idle_reading(started: list[Child], t0: float, idle_s: float) -> dict[str, Any]:
    """CPU over the last CPU_WINDOW_S before `idle_s` after spawn, then VmRSS and threads."""
    time.sleep(max(0.0, t0 + idle_s - CPU_WINDOW_S - time.monotonic()))
    meter = CpuMeter({child.name: child.pid for child in started}).start()
    time.sleep(CPU_WINDOW_S)
    meter.stop()
    for child in started:
        child.check_alive()
    rss = {child.name: rss_mb(child.pid) or 0.0 for child in started}
    return {
        "rss_mb": rss,
        "total_mb": round(sum(rss.values()), 1),
        "threads": {child.name: _threads(child.pid) for child in started},
        "cores": meter.cores(),
        "other_cores": meter.others_cores(),
        "seconds_after_spawn": round(time.monotonic() - t0, 1),
    }


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _deployment(procs: Children, idle_s: float) -> dict[str, Any]:
    service = Service(start_redis(procs), start_sandbox(procs, sdrs=6, disconnected=1))
    admin = free_port()
    env = service.env(ADMIN_PORT=str(admin))
    for key in AT_DEFAULTS:
        env.pop(key, None)
    load = [round(x, 2) for x in os.getloadavg()]
    t0 = time.monotonic()
    started = [procs.start(name, SERVICE[name], env) for name in SERVICES]  # the Procfile's
    marks = _wait_ready(service, admin, started, t0)
    say(f"ready after {marks['ready_s']} s ({marks}); idle until {idle_s:g} s after the spawn")
    return {"load_average": load, **marks, **_idle_reading(started, t0, idle_s)}


def run(opts: argparse.Namespace) -> Outcome:
    runs_wanted = opts.footprint_runs or (1 if opts.quick else 3)
    idle_s = opts.footprint_idle or (10.0 if opts.quick else 65.0)
    out = Outcome(NAME, data={"settings": {"runs": runs_wanted, "idle_s": idle_s}})
    runs = []
    for n in range(1, runs_wanted + 1):
        with children(f"{NAME}-{n}") as procs:
            runs.append(_deployment(procs, idle_s))
        r = runs[-1]
        say(f"run {n}: VmRSS {r['rss_mb']} = {r['total_mb']} MiB, ready {r['ready_s']} s")
        _run_rows(out, n, r)
    out.data["runs"] = runs
    _summary_rows(out, runs)
    return out


def _run_rows(out: Outcome, n: int, r: dict[str, Any]) -> None:
    rss, threads, cores = r["rss_mb"], r["threads"], r["cores"]
    out.row(
        f"run {n}: idle VmRSS " + " / ".join(SERVICES),
        " / ".join(f"{rss[s]:.1f}" for s in SERVICES),
        "MiB",
        reference=f"{r['seconds_after_spawn']} s after spawn; threads "
        + " / ".join(str(threads[s]) for s in SERVICES)
        + "; cores "
        + " / ".join(str(cores[s]) for s in SERVICES)
        + f", other {r['other_cores']}; load {r['load_average'][0]}",
    )
    out.row(
        f"run {n}: spawn to /readyz 200",
        r["ready_s"],
        "s",
        reference=f"admin answering {r.get('admin_s')} s, worker in BRPOP {r.get('consuming_s')} s",
    )


def _summary_rows(out: Outcome, runs: list[dict[str, Any]]) -> None:
    figures = (
        (
            "idle VmRSS " + " + ".join(SERVICES) + " (beat in the worker)",
            "total_mb",
            "MiB",
            TARGET_MIB,
        ),
        ("spawn to /readyz 200", "ready_s", "s", TARGET_READY_S),
    )
    for label, key, unit, target in figures:
        values = [r[key] for r in runs]
        worst = max(values)
        out.row(
            f"{label} (worst of {len(runs)})",
            worst,
            unit,
            reference=f"median {statistics.median(values)} {unit}; runs {values}",
            ratio=worst / target,
            target=f"<= {target:g} {unit}",
            met=worst <= target,
        )
