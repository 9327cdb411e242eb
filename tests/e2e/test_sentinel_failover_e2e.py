"""Sentinel failover under load: no webhook answered 202 is lost, none is assigned twice.

A primary, one replica and three Sentinels on loopback (worker/embedded_sentinel.py); web, worker
and beat reach Redis only through the Sentinels (REDIS_URL's host is a closed port) with
REDIS_MIN_REPLICAS_ACK=1, against the sandbox. The sandbox posts interested replies at a steady
rate and retries anything not 2xx on Leadterra's schedule (scaled down). Half-way the primary is
killed with SIGKILL; the Sentinels promote the replica, and the killed node comes back as its
replica (with a single replica, REDIS_MIN_REPLICAS_ACK=1 answers 503 until there is one again:
the trade the README describes). The reconcile sweep is off, so it cannot hide a loss.

bench/failover.py runs the same with REDIS_MIN_REPLICAS_ACK=0 and counts what that loses.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from leadterra_sandbox.client import replies_answered
from leadterra_sandbox.clock import parse_iso
from tests.support.service import SECRET, Service
from worker.deadline import wait_until
from worker.embedded_sentinel import SentinelGroup

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

REPLIES, RATE = 300, 25.0  # 12 s of webhooks; the primary dies after 6 s
ENV = {
    "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there: Sentinel names the host
    "REDIS_MIN_REPLICAS_ACK": "1",
    "RECONCILE_SECONDS": "0",
    # a worker's message is back within seconds if its run is cut by the failover
    "VISIBILITY_TIMEOUT": "12",
    "LEADTERRA_TIMEOUT_CONNECT": "1",
    "LEADTERRA_TIMEOUT_READ": "2",
    "LEADTERRA_TIMEOUT_POOL": "1",
}


def after_the_kill(service: Service, report: dict[str, Any], killed_at: float) -> str:
    """Seconds from the kill to the next handoff (a call in flight may end just after it), and
    to the first handoff of a reply first sent after the kill (the service back at work)."""
    handed = {h["replyId"]: parse_iso(h["at"]) or 0.0 for h in service.handoffs()}
    later = [t for t in handed.values() if t > killed_at]
    fresh = [
        handed[d["replyId"]]
        for d in report["deliveries"]
        if d["attempts"] and d["attempts"][0]["at"] > killed_at and d["replyId"] in handed
    ]
    next_any = round(min(later) - killed_at, 2) if later else None
    next_fresh = round(min(fresh) - killed_at, 2) if fresh else None
    times = sorted(handed.values())
    gaps = [b - max(a, killed_at) for a, b in zip(times, times[1:], strict=False) if b > killed_at]
    gap = round(max(gaps), 2) if gaps else None
    return (
        f"next assignment {next_any} s after the kill (a call in flight), the first of a reply "
        f"sent after it {next_fresh} s after; no assignment for {gap} s at the longest"
    )


def test_a_failover_loses_no_acknowledged_webhook_and_doubles_none(service_factory) -> None:
    group = SentinelGroup(replicas=1).start()
    service = service_factory(sdrs=6, disconnected=0, redis_server=group, **group.env(), **ENV)
    control = service.control
    job = control.send_webhooks(
        service.webhook_url,
        SECRET,
        REPLIES,
        rate=RATE,
        concurrency=10,
        mix={"interested": 1.0},
        reply_id_prefix="rpl_fo_",
        retry_scale=0.005,  # Leadterra's 1 min, 5 min, 30 min become 0.3 s, 1.5 s, 9 s
        timeout=5,
    )
    wait_until(
        lambda: control.webhook_job(job["id"], deliveries=False)["events"] >= REPLIES // 2,
        30,
        0.05,
        what="half the webhooks sent",
    )
    old = group.primary_port()
    killed_at, killed_mono = time.time(), time.monotonic()
    killed = group.kill_primary()
    group.wait_failover(old or 0)
    failover_s = round(time.monotonic() - killed_mono, 2)
    group.revive(killed)
    replica_back_s = round(time.monotonic() - killed_mono, 2)

    report = control.wait_webhook_job(job["id"], timeout=60)
    # 202, or 200 for a retry of one answered 503 whose enqueue a replica confirmed since
    taken = replies_answered(report, 202, 200)
    service.wait_assigned(taken, timeout=45)
    tally = service.tally(taken, prefix="rpl_fo_")
    statuses = report["attemptResults"]
    print(
        f"\nfailover: primary killed after {REPLIES // 2} webhooks; new primary named in "
        f"{failover_s} s, a replica again at {replica_back_s} s; "
        f"{after_the_kill(service, report, killed_at)}; attempts {statuses}; "
        f"{len(replies_answered(report, 202))} of {REPLIES} replies answered 202, "
        f"{len(taken)} 2xx; "
        f"{tally}"
    )
    assert tally == {
        "assigned": len(taken),
        "duplicates": 0,
        "lost": 0,
        "stray": 0,
        "dead_lettered": 0,
    }
    # every reply was taken in the end: Leadterra's retries got through after the failover
    assert report["outcomes"] == {"delivered": REPLIES}
    assert len(taken) == REPLIES
