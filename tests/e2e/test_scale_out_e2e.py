"""Scale-out: two workers and two beats share the rotation, the locks and the dedupe, reaching
Redis the way a multi-host deployment does: through Sentinel (a primary, a replica and three
Sentinels on loopback; REDIS_URL's own host is a closed port)."""

from __future__ import annotations

import json
import re
from collections import Counter

import httpx
import pytest

from tests.support.service import SECRET
from worker.deadline import wait_until
from worker.embedded_sentinel import SentinelGroup

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SDR_KEYS = {f"sdr_{i}": f"sk_test_workspace_sdr_{i}" for i in range(1, 5)}


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus text page (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}(\{{{re.escape(wanted)}\}})? ([0-9.e+-]+)$"
    found = re.search(pattern, text, flags=re.MULTILINE)
    return float(found.group(2)) if found else 0.0


def test_two_workers_and_two_beats_do_no_double_work(service_factory) -> None:
    group = SentinelGroup(replicas=1).start()
    service = service_factory(
        sdrs=4,
        disconnected=0,
        processes=("web", "worker", "worker", "beat", "beat"),
        redis_server=group,
        **group.env(),
        REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens there: the Sentinels name the host
        LEADTERRA_SDR_API_KEYS=json.dumps(SDR_KEYS),
        METRICS_FLUSH_SECONDS="1",
        WORKER_CONCURRENCY="8",
    )
    control = service.control
    control.seed_threads(
        [
            {
                "id": f"th_{n}",
                "sdrId": f"sdr_{n % 4 + 1}",
                "status": "won" if n % 5 == 0 else "needs_followup",
            }
            for n in range(80)
        ]
    )
    control.seed_followups(
        [
            {"id": f"fu_{n}", "threadId": f"th_{n}", "dueAt": "2020-01-01T00:00:00.000Z"}
            for n in range(80)
        ]
    )
    job = control.send_webhooks(
        service.webhook_url,
        SECRET,
        200,
        rate=100,
        concurrency=20,
        mix={"interested": 0.7, "not_interested": 0.3},
        duplicate_share=0.2,
        retry_scale=0.02,
    )
    report = control.wait_webhook_job(job["id"], timeout=60)
    interested = {d["replyId"] for d in report["deliveries"] if d["classification"] == "interested"}
    service.wait_assigned(interested, timeout=90)

    # replies: each exactly once, the rotation even across both workers
    assert service.tally(interested) == {
        "assigned": len(interested),
        "duplicates": 0,
        "lost": 0,
        "stray": 0,
        "dead_lettered": 0,
    }
    per_sdr = Counter(h["sdrId"] for h in service.handoffs())
    assert max(per_sdr.values()) - min(per_sdr.values()) <= 1
    workers = {e["process_id"] for e in service.events("reply.assigned")}
    assert len(workers) == 2, "both workers took a share"

    # follow-ups: each decided once, though two beats sent every poll
    decided = wait_until(
        lambda: (
            (d := service.events("followup.routed") + service.events("followup.skipped"))
            and len(d) >= 80
            and d
        ),
        60,
        what="80 follow-up decisions",
    )
    assert Counter(e["followup_id"] for e in decided) == {f"fu_{n}": 1 for n in range(80)}
    skips = [c for c in control.calls() if c["endpoint"].endswith("/skip")]
    assert len(skips) == 16
    polls = service.events("followups.polled") + service.events("followups.poll_skipped")
    assert len(service.events("followups.poll_skipped")) > 0 or len(polls) > 0

    # counters from both worker processes reach the admin listener's /metrics
    def scraped() -> float:
        page = httpx.get(f"{service.admin_url}/metrics").text
        return metric(page, "leadrouter_assignments_total", outcome="assigned", source="webhook")

    wait_until(lambda: scraped() == len(interested), 20, what="worker counters in /metrics")
    page = httpx.get(f"{service.admin_url}/metrics").text
    assert httpx.get(f"{service.base_url}/metrics").status_code == 404  # not on Leadterra's port
    assert metric(page, "leadrouter_followups_total", decision="skipped") == 16
    assert metric(page, "leadrouter_followups_total", decision="routed") == 64
    assert metric(page, "leadrouter_webhooks_total", outcome="enqueued") == len(interested)
    assert metric(page, "leadrouter_dead_letters") == 0
    assert "leadrouter_leadterra_call_seconds_bucket" in page
