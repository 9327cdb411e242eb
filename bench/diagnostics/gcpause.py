"""GC pauses of the receiver under ingest, as it is and with the suggested fix (opt-in: `gc`).

The receiver runs through bench/diagnostics/gcprobe.py (the service's own command plus a timer on
every collection) at 50 connections, once untouched and once per GC setting from the suggestion;
the service code is not changed. Runs alternate, so drift on the shared machine hits each alike.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench import loadgen
from bench.common import Outcome, children, say
from bench.procfs import peak_rss_mb
from bench.services import SECRET, Service, start_redis
from worker.children import Children
from worker.deadline import wait_http

NAME = "gc"
SETTINGS = ("none", "freeze", "both")
CONNECTIONS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gc")
    group.add_argument("--gc-seconds", type=float, help="measured window per run (10; quick 3)")
    group.add_argument("--gc-rounds", type=int, help="rounds of all settings (2; quick 1)")


def one(procs: Children, service: Service, tune: str, n: int, seconds: float) -> dict[str, Any]:
    stats = procs.folder / f"gc-{tune}-{n}.json"
    web = procs.start(
        f"web-{tune}-{n}",
        [sys.executable, "-m", "bench.diagnostics.gcprobe", "web"],
        service.env(GC_TUNE=tune, GC_OUT=str(stats)),
    )
    wait_http(service.url + "/healthz", 30, ok=(200,), alive=[web])
    service.redis.flush()
    spec = {
        "mode": "duration",
        "url": service.webhook_url,
        "secret": SECRET,
        "prefix": f"rpl_gc_{tune}_{n}_",
        "connections": CONNECTIONS,
        "seconds": seconds,
        "warmup": 2.0,
        "prebuild": int((seconds + 2) * 6000),
        "watch": {"server": web.pid},
    }
    load = loadgen.run(procs, f"loadgen-{tune}-{n}", spec)
    rss = peak_rss_mb(web.pid)
    web.stop()
    gcs = json.loads(stats.read_text())
    total_ms = sum(g["total_ms"] for g in gcs.values())
    result = {
        "tune": tune,
        "accepted_per_s": load["accepted_per_s"],
        "latency": load["latency"],
        "gc": gcs,
        "gc_share_of_time": round(total_ms / 1000 / (seconds + 2), 3),
        "peak_rss_mb": rss,
    }
    say(
        f"gc={tune}: {load['accepted_per_s']}/s p99 {load['latency']['p99_ms']} ms, full "
        f"collections {gcs['2']['count']} (max {gcs['2']['max_ms']} ms), GC "
        f"{result['gc_share_of_time']:.0%} of the time, peak RSS {rss} MiB"
    )
    return result


def run(opts: argparse.Namespace) -> Outcome:
    seconds = opts.gc_seconds or (3.0 if opts.quick else 10.0)
    rounds = opts.gc_rounds or (1 if opts.quick else 2)
    out = Outcome(NAME, data={"settings": {"seconds": seconds, "rounds": rounds}})
    runs: list[dict[str, Any]] = []
    with children(NAME) as procs:
        service = Service(start_redis(procs))
        for n in range(rounds):
            runs += [one(procs, service, tune, n, seconds) for tune in SETTINGS]
    out.data["runs"] = runs
    for tune in SETTINGS:
        mine = [r for r in runs if r["tune"] == tune]
        p99 = [r["latency"]["p99_ms"] for r in mine]
        full = [r["gc"]["2"] for r in mine]
        shares = " / ".join(f"{r['gc_share_of_time']:.0%}" for r in mine)
        rss = " / ".join(str(r["peak_rss_mb"]) for r in mine)
        out.row(
            f"receiver @{CONNECTIONS} conns, GC {tune}: accepted/s",
            " / ".join(f"{r['accepted_per_s']:.0f}" for r in mine),
            "/s",
            reference=f"GC {shares} of the time; peak RSS {rss} MiB",
        )
        out.row(
            f"receiver @{CONNECTIONS} conns, GC {tune}: p99",
            " / ".join(str(p) for p in p99),
            "ms",
            reference="full collections "
            + " / ".join(f"{g['count']} (max {g['max_ms']} ms)" for g in full),
            target="p99 <= 50 ms",
            met=all((p or 1e9) <= 50 for p in p99),
        )
    return out
