"""Receive and assign, end to end: the Procfile's web, worker and beat against the sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter

import httpx
import pytest

from tests.support.service import SECRET, dead_letters
from worker.deadline import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ASSIGN = "POST /v1/replies/{id}/assign"
MIX = {
    "interested": 0.45,
    "not_interested": 0.15,
    "out_of_office": 0.1,
    "bounce": 0.1,
    "unsubscribe": 0.1,
    "referral": 0.05,
    "brand_new_label": 0.05,
}


def now_iso() -> str:
    """A fresh signed timestamp: one older than WEBHOOK_TOLERANCE_SECONDS is answered stale."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def signed_post(url: str, reply: dict, secret: str = SECRET) -> httpx.Response:
    body = json.dumps(
        {"event": "reply.received", "timestamp": now_iso(), "data": {"reply": reply}},
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(
        url,
        content=body,
        headers={"X-Leadterra-Signature": signature, "Content-Type": "application/json"},
    )


def given_to(service) -> Counter:
    """Replies each SDR was given, from the service's own decision events."""
    events = service.events("reply.assigned") + service.events("reply.already_assigned")
    return Counter(e["sdr_id"] for e in events)


def test_three_hundred_webhooks_are_assigned_exactly_once_and_fairly(service_factory) -> None:
    service = service_factory(sdrs=8, disconnected=2)
    control = service.control

    # A reply someone already forwarded in Leadterra, first in line.
    control.seed_replies(
        [
            {
                "id": "rpl_pre",
                "email": "pre@acme.io",
                "classification": "interested",
                "forwarded": True,
            }
        ]
    )
    assert (
        signed_post(
            service.webhook_url,
            {"id": "rpl_pre", "classification": "interested", "email": "pre@acme.io"},
        ).status_code
        == 202
    )

    # A bad signature is refused and nothing of it is ever assigned.
    control.seed_replies(
        [{"id": "rpl_forged", "email": "x@acme.io", "classification": "interested"}]
    )
    forged = signed_post(
        service.webhook_url,
        {"id": "rpl_forged", "classification": "interested"},
        secret="not-the-secret",
    )
    assert forged.status_code == 401

    # A burst of 503s on assign, then the stream.
    control.fail_next(ASSIGN, count=5, status=503)
    job = control.send_webhooks(
        service.webhook_url,
        SECRET,
        300,
        rate=150,
        concurrency=20,
        mix=MIX,
        duplicate_share=0.15,
        redeliver_share=0.1,
        email_domains=["acme.io", "globex.com", "initech.io"],
        retry_scale=0.02,  # Leadterra's 1 min first retry becomes 1.2 s
    )
    report = control.wait_webhook_job(job["id"], timeout=120)
    assert report["outcomes"] == {"delivered": len(report["deliveries"])}
    assert report["kinds"]["duplicate"] > 0 and report["kinds"]["redelivery"] > 0
    sent = {d["replyId"]: d["classification"] for d in report["deliveries"]}
    assert set(sent.values()) >= {
        "interested",
        "not_interested",
        "out_of_office",
        "bounce",
        "unsubscribe",
        "referral",
        "brand_new_label",
    }
    interested = {r for r, c in sent.items() if c == "interested"}
    service.wait_handoffs(len(interested), timeout=90)

    # Then a 429 with Retry-After, ridden out with the wait honoured.
    control.fail_next(ASSIGN, count=1, status=429, retry_after=2)
    late = [f"rpl_late_{i}" for i in range(6)]
    control.seed_replies(
        [{"id": r, "email": f"{r}@acme.io", "classification": "interested"} for r in late]
    )
    for reply_id in late:
        assert (
            signed_post(
                service.webhook_url, {"id": reply_id, "classification": "interested"}
            ).status_code
            == 202
        )
    interested |= set(late)
    handoffs = service.wait_handoffs(len(interested), timeout=90)

    # Exactly once, to connected SDRs only, nothing non-positive.
    per_reply = Counter(h["replyId"] for h in handoffs)
    assert set(per_reply) == interested
    assert set(per_reply.values()) == {1}
    assert {h["sdrId"] for h in handoffs} <= {f"sdr_{i}" for i in range(1, 7)}
    wait_until(lambda: len(service.events("reply.already_assigned")) == 1, 20)
    [pre] = service.events("reply.already_assigned")
    assert pre["reply_id"] == "rpl_pre"

    # Fair: the replies each SDR was given differ by at most one.
    counts = given_to(service)
    assert set(counts) == {f"sdr_{i}" for i in range(1, 7)}
    assert max(counts.values()) - min(counts.values()) <= 1
    assert sum(counts.values()) == len(interested) + 1

    # The 503 burst and the 429 really happened, and the 429's wait was honoured by everyone.
    calls = control.calls(endpoint=ASSIGN)
    assert sum(1 for c in calls if c["status"] == 503) == 5
    [limited] = [c for c in calls if c["status"] == 429]
    retried = [c for c in calls if c["path"] == limited["path"] and c["seq"] > limited["seq"]]
    assert retried and retried[0]["at"] >= limited["at"] + 2.0
    # calls already on the wire when the 429 came back may land just after it; none later
    paused = [c for c in calls if limited["at"] + 0.25 < c["at"] < limited["at"] + 1.95]
    assert paused == []
    assert not any(h["replyId"] == "rpl_forged" for h in handoffs)
    assert dead_letters(service) == []
    # every decision event carries its ids and duration
    for event in service.events("reply.assigned"):
        assert {"reply_id", "sdr_id", "attempt", "duration_ms", "outcome", "task_id"} <= set(event)
