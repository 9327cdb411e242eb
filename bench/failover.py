"""Failover: what a Sentinel failover loses at REDIS_MIN_REPLICAS_ACK=0, and what 1 costs.

Each drill is a fresh deployment: a primary, one replica and three Sentinels on loopback
(worker/embedded_sentinel.py), the sandbox, and web, one worker and beat reaching Redis only
through the Sentinels, with the reconcile sweep off (it would find a lost reply later, within
RECONCILE_SECONDS). The sandbox posts interested replies at a steady rate and retries what is
not 2xx on Leadterra's schedule (scaled down); half-way the primary is killed with SIGKILL, the
Sentinels promote the replica, and the killed node comes back as its replica. Assignments are
held to DRILL_MAX_RPS by the rate limit, below the webhooks' rate, so a backlog is queued when the
primary dies.

    kill, ack 0       the failover test's drill (tests/e2e/test_sentinel_failover_e2e.py) at 0
    cut+kill, ack 0   the replica cut off from the primary for LAG_S before the kill (its
                      replication user disabled and its link dropped, while clients still reach
                      the primary): a partition, or a replica far behind, when the primary dies.
                      On loopback a healthy replica is microseconds behind, and a paused one
                      (SIGSTOP) would go on taking the stream into its socket buffer.
    cut+kill, ack 1   the same with REDIS_MIN_REPLICAS_ACK=1

Counted: replies answered 2xx that were never assigned and that nothing holds any more (lost:
Leadterra does not send a 2xx again), replies assigned twice, and the seconds from the kill to
the next assignment. Then the ingest cost of REDIS_MIN_REPLICAS_ACK=1: the receiver alone at 50
connections through the Sentinels, 0 and 1 alternated, accepted/s and p50/p99.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import redis

from bench import loadgen
from bench.common import Outcome, children, say
from bench.services import SECRET, Service, start_sandbox
from leadterra_sandbox.client import replies_answered
from leadterra_sandbox.clock import parse_iso
from worker.children import Children
from worker.deadline import wait_until
from worker.embedded_sentinel import SentinelGroup
from worker.keys import Keys

NAME = "failover"
PREFIX = "bench:"
LAG_S = 1.0
DRILLS = (("kill", 0), ("cut+kill", 0), ("cut+kill", 1))
ENV = {
    "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there: Sentinel names the host
    "RECONCILE_SECONDS": "0",
    "VISIBILITY_TIMEOUT": "12",
    "LEADTERRA_TIMEOUT_CONNECT": "1",
    "LEADTERRA_TIMEOUT_READ": "2",
    "LEADTERRA_TIMEOUT_POOL": "1",
    "LOG_LEVEL": "INFO",
}
#: assignments held below the ingest rate by the rate limit, as after a burst, so a backlog is
#: queued when the primary dies (with none, the worker has taken every message off the primary
#: and assigned it before a kill can lose it)
DRILL_MAX_RPS = "15"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("failover")
    group.add_argument("--failover-replies", type=int, help="webhooks per drill (400; quick 150)")
    group.add_argument("--failover-rate", type=float, help="webhooks per second (25)")
    group.add_argument(
        "--failover-ingest-seconds", type=float, help="each ingest window (5; quick 2)"
    )


def settings(opts: argparse.Namespace) -> dict[str, Any]:
    return {
        "replies": opts.failover_replies or (150 if opts.quick else 400),
        "rate": opts.failover_rate or 25.0,
        "ingest_seconds": opts.failover_ingest_seconds or (2.0 if opts.quick else 5.0),
        "lag_s": LAG_S,
    }


@dataclass
class GroupRedis:
    """What bench.services.Service asks of its Redis, for a SentinelGroup's current primary."""

    group: SentinelGroup

    @property
    def url(self) -> str:
        return self.group.url

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def blocked_consumers(self) -> int:
        with self.client() as client:
            return sum(1 for c in client.client_list() if c.get("cmd") == "brpop")

    def pid(self) -> int:
        port = self.group.primary_port()
        process = self.group.node(port or 0).process
        return process.pid if process else 0


def fault(group: SentinelGroup, kind: str) -> tuple[float, float]:
    """The drill's fault; (when the primary was killed, unix; seconds to a new primary)."""
    if kind == "cut+kill":
        group.cut_replication()
        time.sleep(LAG_S)  # the fault itself: the primary takes writes its replica misses
    old = group.primary_port() or 0
    killed_at, started = time.time(), time.monotonic()
    killed = group.kill_primary()
    group.wait_failover(old, timeout=60)
    failover_s = time.monotonic() - started
    group.revive(killed)
    return killed_at, failover_s


def settle(service: Service, taken: set[str]) -> tuple[set[str], dict[str, int]]:
    """Wait until every reply in `taken` is assigned or held nowhere (not in flight: nothing
    will ever deliver it); the lost ones and handoffs per reply."""
    keys = Keys(PREFIX)
    control = service.sandbox.control if service.sandbox else None
    assert control is not None

    def handoffs() -> dict[str, int]:
        count: dict[str, int] = {}
        for handoff in control.handoffs():
            count[handoff["replyId"]] = count.get(handoff["replyId"], 0) + 1
        return count

    def settled() -> tuple[set[str], dict[str, int]] | None:
        handed = handoffs()
        waiting = sorted(r for r in taken if r not in handed)
        with redis.Redis.from_url(service.redis.url) as client:
            held = [bool(h) for h in client.hmget(keys.inflight, waiting)] if waiting else []
        if any(held):
            return None
        return set(waiting), handed

    found: tuple[set[str], dict[str, int]] = wait_until(settled, 90, 0.5, what="replies settled")
    return found


def drill(kind: str, acks: int, cfg: dict[str, Any]) -> dict[str, Any]:
    label = f"{kind}-ack{acks}"
    with children(f"{NAME}-{label}") as procs:
        group = SentinelGroup(replicas=1).start()
        procs.on_exit(group.stop)
        sandbox = start_sandbox(procs, sdrs=6)
        extra = {
            **group.env(),
            **ENV,
            "REDIS_MIN_REPLICAS_ACK": str(acks),
            "LEADTERRA_MAX_RPS": DRILL_MAX_RPS,
        }
        service = Service(GroupRedis(group), sandbox, extra=extra)  # type: ignore[arg-type]
        service.start_web(procs)
        service.start_workers(procs, 1, 16)
        service.start_beat(procs)
        count = int(cfg["replies"])
        job = sandbox.control.send_webhooks(
            service.webhook_url,
            SECRET,
            count,
            rate=cfg["rate"],
            concurrency=10,
            mix={"interested": 1.0},
            reply_id_prefix=f"rpl_{label}_",
            retry_scale=0.005,
            timeout=5,
        )
        wait_until(
            lambda: (
                sandbox.control.webhook_job(job["id"], deliveries=False)["events"] >= count // 2
            ),
            120,
            0.05,
            what="half the webhooks sent",
        )
        killed_at, failover_s = fault(group, kind)
        report = sandbox.control.wait_webhook_job(job["id"], timeout=120)
        taken = replies_answered(report, 202, 200)
        lost, handed = settle(service, taken)
        times = sorted(parse_iso(h["at"]) or 0.0 for h in sandbox.control.handoffs())
    later = [t for t in times if t > killed_at]
    # the assignments' outage: the longest wait between two handoffs, from the kill on
    gaps = [b - max(a, killed_at) for a, b in zip(times, times[1:], strict=False) if b > killed_at]
    result = {
        "drill": kind,
        "acks": acks,
        "webhooks": count,
        "answered_2xx": len(taken),
        "answered_202": len(replies_answered(report, 202)),
        "attempts": report["attemptResults"],
        "lost": len(lost),
        "lost_ids": sorted(lost)[:20],
        "twice": sum(n - 1 for n in handed.values() if n > 1),
        "failover_s": round(failover_s, 2),
        "next_assignment_s": round(min(later) - killed_at, 2) if later else None,
        "longest_gap_s": round(max(gaps), 2) if gaps else None,
    }
    say(f"{label}: {result}")
    return result


def ingest_cost(cfg: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The receiver alone at 50 connections through the Sentinels, ack 0 and 1 alternated."""
    runs: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    with children(f"{NAME}-ingest") as procs:
        group = SentinelGroup(replicas=1).start()
        procs.on_exit(group.stop)
        service = Service(GroupRedis(group), extra={**group.env(), **ENV})  # type: ignore[arg-type]
        for round_no in range(2):
            for acks in (0, 1):
                runs[acks].append(measure(procs, service, acks, round_no, cfg))
    return runs


def measure(
    procs: Children, service: Service, acks: int, round_no: int, cfg: dict[str, Any]
) -> dict[str, Any]:
    redis_side = service.redis
    redis_side.flush()
    web = service.start_web(procs, REDIS_MIN_REPLICAS_ACK=str(acks))
    seconds = float(cfg["ingest_seconds"])
    spec = {
        "mode": "duration",
        "url": service.webhook_url,
        "secret": SECRET,
        "prefix": f"rpl_ack{acks}_{round_no}_",
        "connections": 50,
        "seconds": seconds,
        "warmup": 1.0,
        "prebuild": int((seconds + 1.0) * 12_000),
        "watch": {"server": web.pid, "redis": redis_side.pid()},  # type: ignore[attr-defined]
    }
    report = loadgen.run(procs, f"loadgen-ack{acks}-{round_no}", spec)
    web.stop()
    lat = report["latency"]
    say(
        f"ingest ack {acks} round {round_no + 1}: {report['accepted_per_s']:.0f}/s "
        f"p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms errors {report['errors']}"
    )
    return report


def run(opts: argparse.Namespace) -> Outcome:
    cfg = settings(opts)
    out = Outcome(NAME, data={"settings": cfg})
    drills = [drill(kind, acks, cfg) for kind, acks in DRILLS]
    out.data["drills"] = drills
    for d in drills:
        out.row(
            f"{d['drill']}, REDIS_MIN_REPLICAS_ACK={d['acks']}: lost",
            d["lost"],
            "replies",
            reference=f"of {d['answered_2xx']} answered 2xx; {d['twice']} assigned twice; "
            f"attempts {d['attempts']}",
            target="0" if d["acks"] else "",
            met=d["lost"] == 0 if d["acks"] else None,
        )
        out.row(
            f"{d['drill']}, REDIS_MIN_REPLICAS_ACK={d['acks']}: no assignment for",
            d["longest_gap_s"],
            "s",
            reference=f"the longest gap from the kill on; next assignment "
            f"{d['next_assignment_s']} s after the kill (a call in flight); new primary named "
            f"{d['failover_s']} s after it",
        )
    runs = ingest_cost(cfg)
    out.data["ingest"] = {str(k): v for k, v in runs.items()}
    rates = {k: sum(r["accepted_per_s"] for r in v) / len(v) for k, v in runs.items()}
    for acks in (0, 1):
        p99 = max(r["latency"]["p99_ms"] or 0 for r in runs[acks])
        p50 = max(r["latency"]["p50_ms"] or 0 for r in runs[acks])
        out.row(
            f"ingest @50 conns through Sentinel, REDIS_MIN_REPLICAS_ACK={acks}",
            round(rates[acks]),
            "/s",
            reference=f"p50 {p50} ms, p99 {p99} ms (worst of {len(runs[acks])} windows)",
            ratio=rates[acks] / max(rates[0], 1e-9),
        )
    return out
