"""Ingest: signed webhooks at the receiver as fast as it accepts them, against two floors.

For each connection count, each server in turn (the receiver at LOG_LEVEL=INFO as users run it,
the receiver at WARNING as the old rows ran it, the stack floor, the durable floor; one at a
time, each freshly started, the same uvicorn settings), the generator (its own process) keeps
every connection busy for a warm-up and a measured window. At the fewest connections (the
targets') the four run `--ingest-rounds` times in turn, and the round whose receiver/durable ratio
is the median is reported (every ratio in its reference): this machine's CPU speed drifts by
±20% over minutes, and a ratio of figures taken a minute apart moved by as much. No worker runs,
so the queue grows; Redis is flushed between runs. The generator, the server and Redis share the
two cores: each one's CPU over the window is reported. The generator's ceiling is its requests
per CPU-second on the stack floor.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import loadgen
from bench.common import Outcome, children, say
from bench.services import LOG_LEVEL, QUIET_LOG_LEVEL, SECRET, Service, start_redis
from worker.children import Children

NAME = "ingest"
TARGETS = ("receiver", "quiet", "stack", "durable")  # quiet: the receiver at QUIET_LOG_LEVEL
#: at the fewest connections, at LOG_LEVEL: accepted/s at least this share of the durable floor's
#: in the same run, and p99 at most this many ms
FLOOR_SHARE, P99_MS = 0.40, 25.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ingest")
    group.add_argument("--ingest-seconds", type=float, help="measured window (20; quick 3)")
    group.add_argument("--ingest-warmup", type=float, help="warm-up before it (2; quick 1)")
    group.add_argument(
        "--ingest-connections", help="comma-separated connection counts (50,200,500; quick 50)"
    )
    group.add_argument(
        "--ingest-rounds", type=int, help="rounds at the fewest connections (3; quick 1)"
    )


def settings(opts: argparse.Namespace) -> dict[str, Any]:
    quick = opts.quick
    conns = opts.ingest_connections or ("50" if quick else "50,200,500")
    return {
        "seconds": opts.ingest_seconds or (3.0 if quick else 20.0),
        "warmup": opts.ingest_warmup or (1.0 if quick else 2.0),
        "connections": [int(c) for c in conns.split(",")],
        "rounds": opts.ingest_rounds or (1 if quick else 3),
    }


def measure(
    procs: Children, service: Service, target: str, conns: int, cfg: dict[str, Any], server: int
) -> dict[str, Any]:
    service.redis.flush()
    spec = {
        "mode": "duration",
        "url": service.webhook_url,
        "secret": SECRET,
        "prefix": f"rpl_ing_{target}_{conns}_",
        "connections": conns,
        "seconds": cfg["seconds"],
        "warmup": cfg["warmup"],
        "prebuild": int((cfg["seconds"] + cfg["warmup"]) * 12_000),
        "watch": {"server": server, "redis": service.redis.proc.pid},
    }
    report = loadgen.run(procs, f"loadgen-{target}-{conns}", spec)
    lat = report["latency"]
    say(
        f"{target:8} {conns:3} conns: {report['accepted_per_s']:8.0f}/s  p50 {lat['p50_ms']} ms  "
        f"p99 {lat['p99_ms']} ms  errors {report['errors']}  cores {report['cores']}"
    )
    return report


def run(opts: argparse.Namespace) -> Outcome:
    cfg = settings(opts)
    out = Outcome(NAME, data={"settings": cfg})
    results: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in TARGETS}
    with children(NAME) as procs:
        redis = start_redis(procs)
        service = Service(redis)
        # every server at one connection count, then the next count: the floors are measured
        # within a minute or so of the receiver, as this machine's CPU speed drifts over minutes
        for conns in cfg["connections"]:
            rounds = cfg["rounds"] if conns == min(cfg["connections"]) else 1
            measured = [one_round(procs, service, conns, cfg) for _ in range(rounds)]
            ratios = [ratio(r) for r in measured]
            median = sorted(range(rounds), key=lambda i: ratios[i])[rounds // 2]
            for target in TARGETS:
                results[target][conns] = measured[median][target]
            if rounds > 1:
                out.data.setdefault("round_ratios", {})[str(conns)] = ratios
                say(f"receiver/durable by round at {conns} conns: {ratios}; median round kept")
    out.data["runs"] = {t: {str(c): r for c, r in v.items()} for t, v in results.items()}
    table(out, results, cfg["connections"])
    return out


def one_round(
    procs: Children, service: Service, conns: int, cfg: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each server in turn at `conns` connections: the receiver at INFO and WARNING, the floors."""
    reports = {}
    for target in TARGETS:
        if target == "receiver":
            server = service.start_web(procs)
        elif target == "quiet":
            server = service.start_web(procs, LOG_LEVEL=QUIET_LOG_LEVEL)
        else:
            server = service.start_floor(procs, target)
        reports[target] = measure(procs, service, target, conns, cfg, server.pid)
        server.stop()
    return reports


def ratio(reports: dict[str, dict[str, Any]]) -> float:
    """The receiver's (INFO) accepted/s over the durable floor's, in one round."""
    rate = float(reports["receiver"]["accepted_per_s"])
    return round(rate / max(float(reports["durable"]["accepted_per_s"]), 1e-9), 3)


def cpu_us(report: dict[str, Any]) -> float:
    """Server CPU per accepted request, in microseconds (steadier than rates on a busy box)."""
    accepted = max(int(report["accepted"]), 1)
    return round(float(report["cpu_s"]["server"]) / accepted * 1e6, 1)


def cores(report: dict[str, Any]) -> str:
    c = report["cores"]
    return f"{c['server']} / {c['redis']} / {c['loadgen']} / {report['other_cores']}"


def table(out: Outcome, results: dict[str, dict[int, dict[str, Any]]], conns: list[int]) -> None:
    for c in conns:
        stack, durable = results["stack"][c], results["durable"][c]
        first = c == min(conns)
        for target, level in (("receiver", LOG_LEVEL), ("quiet", QUIET_LOG_LEVEL)):
            receiver_rows(
                out, results[target][c], stack, durable, c, level, first and level == LOG_LEVEL
            )
        for name, floor in (("stack", stack), ("durable", durable)):
            flat = floor["latency"]
            out.row(
                f"{name} floor accepted/s @{c} conns",
                floor["accepted_per_s"],
                "/s",
                reference=f"p50/p99 {flat['p50_ms']}/{flat['p99_ms']} ms, {cpu_us(floor)} us "
                f"CPU/req, cores {cores(floor)}, errors {floor['errors']}",
            )
    ceilings = [
        results["stack"][c]["accepted"] / max(results["stack"][c]["cpu_s"]["loadgen"], 1e-9)
        for c in conns
    ]
    best_stack = max(results["stack"][c]["accepted_per_s"] for c in conns)
    ceiling = min(ceilings)
    out.data["loadgen_ceiling_per_cpu_s"] = round(ceiling)
    out.row(
        "loadgen ceiling (requests per CPU-second)",
        round(ceiling),
        "/s",
        reference=f"best stack floor {best_stack:.0f}/s",
        ratio=ceiling / max(best_stack, 1e-9),
        target="> 1 (generator not the bottleneck)",
        met=ceiling > best_stack,
    )


def receiver_rows(
    out: Outcome,
    rec: dict[str, Any],
    stack: dict[str, Any],
    durable: dict[str, Any],
    c: int,
    level: str,
    targets: bool,
) -> None:
    """The receiver's rows at one connection count and log level; `targets` on the first."""
    rate, lat = rec["accepted_per_s"], rec["latency"]
    at = f"@{c} conns, {level}"
    ratio_d = rate / max(durable["accepted_per_s"], 1e-9)
    rounds = out.data.get("round_ratios", {}).get(str(c))
    out.row(
        f"receiver accepted/s {at}",
        rate,
        "/s",
        reference=f"durable floor {durable['accepted_per_s']:.0f}/s"
        + (f"; by round {rounds} (the median's figures)" if targets and rounds else ""),
        ratio=ratio_d,
        target=f">= {FLOOR_SHARE:.2f} x durable floor" if targets else "",
        met=ratio_d >= FLOOR_SHARE if targets else None,
    )
    out.row(
        f"receiver accepted/s vs stack floor {at}",
        rate,
        "/s",
        reference=f"stack floor {stack['accepted_per_s']:.0f}/s",
        ratio=rate / max(stack["accepted_per_s"], 1e-9),
    )
    out.row(
        f"receiver p50/p99/max {at}",
        f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']}",
        "ms",
        reference=f"errors {rec['errors']} {rec['statuses']}",
        target=f"p99 <= {P99_MS:g} ms" if targets else "",
        met=(lat["p99_ms"] or 1e9) <= P99_MS if targets else None,
    )
    out.row(
        f"receiver CPU per request {at}",
        cpu_us(rec),
        "us",
        reference=f"durable {cpu_us(durable)} us, stack {cpu_us(stack)} us",
        ratio=cpu_us(durable) / max(cpu_us(rec), 1e-9),
    )
    out.row(
        f"cores server/redis/loadgen/other {at}",
        cores(rec),
        "cores",
        reference="receiver run; 2 cores shared with other work",
    )
