"""Due follow-ups, end to end: the Procfile's worker (beat's schedule in it) against the sandbox.

300 due follow-ups across three SDR keys, 30% of them on finished threads, a local listener as
the follow-up webhook. Live ones reach the listener exactly once, signed; finished ones are
skipped in Leadterra; a `leadrouter beat` beside the worker follows its lease and sends nothing,
and polls sent beside beat's (as from a holder starved past the lease's TTL) change nothing; a
follow-up rescheduled (with the CLI) to a minute ahead is routed again once the sandbox clock
passes that minute, not before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from config.settings import Settings
from tests.support.listener import Delivery
from tests.support.service import PREFIX, dead_letters
from worker.children import BIN
from worker.deadline import wait_until
from worker.jobs.celery_app import create_celery
from worker.keys import QUEUE_FOLLOWUPS, TASK_POLL
from worker.leadterra.models import iso_ms

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SDRS = ("sdr_1", "sdr_2", "sdr_3")
TERMINAL = (
    "meeting_booked",
    "won",
    "lost_not_interested",
    "lost_timing",
    "lost_competitor",
    "archived",
)
LIVE = ("new", "awaiting_reply", "needs_followup", "replied")
TOTAL = 300
HOOK_SECRET = "whsec_followups_e2e_4f7a1c"
SKIP = "POST /v1/sdr/followups/{id}/skip"
INBOX = "GET /v1/sdr/inbox"
DUE = "GET /v1/sdr/followups/due"


def header(delivery: Delivery, name: str) -> str:
    lowered = {k.lower(): v for k, v in delivery.headers.items()}
    return lowered[name.lower()]


def assert_signed(delivery: Delivery) -> None:
    """`X-Leadrouter-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "ts." + raw body>`, fresh."""
    parts = dict(p.split("=", 1) for p in header(delivery, "X-Leadrouter-Signature").split(","))
    assert set(parts) == {"t", "v1"}
    signed = f"{parts['t']}.".encode() + delivery.body
    expected = hmac.new(HOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - delivery.at) < 120


def seed(control: Any) -> dict[str, dict[str, Any]]:
    """300 threads (30% finished) with one follow-up each, due in the past: id -> expectation."""
    now = datetime.fromisoformat(control.clock()["now"].replace("Z", "+00:00"))
    threads, followups, expected = [], [], {}
    for n in range(TOTAL):
        sdr = SDRS[n % len(SDRS)]
        finished = n % 10 < 3
        status = TERMINAL[(n // 10) % len(TERMINAL)] if finished else LIVE[n % len(LIVE)]
        thread_id, followup_id = f"thr_e2e_{n:03d}", f"fu_e2e_{n:03d}"
        threads.append(
            {
                "id": thread_id,
                "sdrId": sdr,
                "status": status,
                "contactEmail": f"lead{n}@acme.io",
                "contactName": f"Lead {n}",
                "subject": f"Re: proposal {n}",
                "category": "ABC"[n % 3],
                "priorityScore": 40 + n % 60,
            }
        )
        due = iso_ms(now - timedelta(seconds=3600 - n))
        followups.append({"id": followup_id, "threadId": thread_id, "dueAt": due})
        expected[followup_id] = {
            "sdr": sdr,
            "thread_id": thread_id,
            "status": status,
            "finished": finished,
            "n": n,
        }
    control.seed_threads(threads)
    control.seed_followups(followups)
    return expected


def polled(service: Any) -> list[dict[str, Any]]:
    return service.events("followups.polled")


def poll_runs_since(service: Any, since: float) -> int:
    """Polls run (done, or skipped because another held the lock) since unix time `since`."""
    runs = polled(service) + service.events("followups.poll_skipped")
    return sum(1 for e in runs if datetime.fromisoformat(e["timestamp"]).timestamp() >= since)


def wait_for_polls(service: Any, more: int, timeout: float = 30.0) -> None:
    """Let `more` further polls finish: proof that time passed through the service's loop."""
    start = len(polled(service))
    wait_until(
        lambda: len(polled(service)) >= start + more, timeout, 0.2, what=f"{more} more polls"
    )


def race_polls(service: Any, stop: threading.Event) -> threading.Thread:
    """A second poller beside beat's: a poll task every 0.3 s through the broker."""
    app = create_celery(Settings(redis_url=service.redis_server.url, key_prefix=PREFIX))

    def loop() -> None:
        while not stop.wait(0.3):
            app.send_task(TASK_POLL, queue=QUEUE_FOLLOWUPS)

    thread = threading.Thread(target=loop, name="race-polls", daemon=True)
    thread.start()
    return thread


def test_due_followups_are_routed_once_skipped_when_finished_and_rescheduled_again(
    service_factory, listener, tmp_path
) -> None:
    sdr_keys = {sdr: f"sk_test_workspace_{sdr}" for sdr in SDRS}
    service = service_factory(
        sdrs=3,
        disconnected=0,
        processes=(),
        LEADTERRA_SDR_API_KEYS=json.dumps(sdr_keys),
        FOLLOWUP_WEBHOOK_URL=listener.url,
        FOLLOWUP_WEBHOOK_SECRET=HOOK_SECRET,
        FOLLOWUP_POLL_SECONDS="1",
    )
    control = service.control
    expected = seed(control)
    live = {fid for fid, e in expected.items() if not e["finished"]}
    finished = {fid for fid, e in expected.items() if e["finished"]}
    assert (len(live), len(finished)) == (210, 90)
    seeded = {f["id"]: f for f in control.state()["followups"]}

    # The worker, whose embedded beat takes the lease; a `leadrouter beat` beside it, which
    # follows; and polls sent beside beat's from the start, so they race for the lock and
    # the claims.
    worker = service.start("worker")
    wait_until(
        lambda: any(e.get("event") == "beat.leading" for e in worker.events()),
        30,
        0.1,
        what="the worker's beat leading",
    )
    beat = service.start("beat")
    racing_since, stop_racing = time.time(), threading.Event()
    racer = race_polls(service, stop_racing)

    # Every live follow-up reaches the listener; every finished one is skipped in Leadterra.
    wait_until(lambda: set(listener.per_followup()) >= live, 60, 0.2, what="210 deliveries")

    def skipped_in_sandbox() -> dict[str, dict[str, Any]]:
        return {f["id"]: f for f in control.state()["followups"] if f["status"] == "skipped"}

    skipped = wait_until(
        lambda: (s := skipped_in_sandbox()) and set(s) >= finished and s,
        60,
        0.2,
        what="90 skips",
    )
    # Polls keep racing: more poll runs than one beat sends (one a second) can explain.
    # Nothing is routed or skipped a second time.
    wait_until(
        lambda: poll_runs_since(service, racing_since) >= time.time() - racing_since + 3,
        30,
        0.2,
        what="racing polls",
    )
    stop_racing.set()
    racer.join(5)
    wait_for_polls(service, 2)
    assert beat.alive()
    assert any(e.get("event") == "beat.starting" for e in beat.events())
    assert not [e for e in beat.events() if e.get("event") == "beat.leading"]  # it followed
    first_round = listener.per_followup()
    assert set(first_round) == live
    assert set(first_round.values()) == {1}
    assert set(skipped) == finished
    for fid in finished:
        assert skipped[fid]["skipReason"] == f"thread status {expected[fid]['status']}"
        assert skipped[fid]["closedAt"] is not None
    skip_calls = control.calls(endpoint=SKIP)
    assert len(skip_calls) == len(finished)
    assert {c["status"] for c in skip_calls} == {200}
    assert {c["key"] for c in skip_calls} == set(SDRS)
    pending = {f["id"] for f in control.state()["followups"] if f["status"] == "pending"}
    assert pending == live  # notifying does not close a follow-up; the SDR does

    # Each delivery: signed, with its delivery id, the follow-up and its thread's details.
    for delivery in listener.received():
        assert_signed(delivery)
        body = delivery.payload
        fid = body["followup"]["id"]
        want, due_at = expected[fid], seeded[fid]["dueAt"]
        assert header(delivery, "X-Leadrouter-Delivery") == f"{fid}:{due_at}"
        assert header(delivery, "Content-Type") == "application/json"
        assert body["event"] == "followup.due"
        assert body["deliveryId"] == f"{fid}:{due_at}"
        assert body["sdrId"] == want["sdr"]
        assert body["followup"] == {
            "id": fid,
            "threadId": want["thread_id"],
            "sdrId": want["sdr"],
            "status": "pending",
            "dueAt": due_at,
        }
        n = want["n"]
        assert body["thread"] == body["thread"] | {
            "id": want["thread_id"],
            "status": want["status"],
            "contactEmail": f"lead{n}@acme.io",
            "contactName": f"Lead {n}",
            "subject": f"Re: proposal {n}",
            "category": "ABC"[n % 3],
            "priorityScore": 40 + n % 60,
        }

    # Reschedule one live follow-up a minute ahead with the CLI, as an operator would.
    target = min(fid for fid in live if expected[fid]["sdr"] == "sdr_1")
    sandbox_now = datetime.fromisoformat(control.clock()["now"].replace("Z", "+00:00"))
    new_due = iso_ms(sandbox_now + timedelta(seconds=60))
    cli = subprocess.run(
        [
            str(BIN / "leadrouter"),
            "followups",
            "reschedule",
            target,
            "--due-at",
            new_due,
            "--sdr",
            "sdr_1",
        ],
        env=service.children.env,
        cwd=tmp_path,  # no developer .env
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == f"rescheduled {target} to {new_due}"
    moved = next(f for f in control.state()["followups"] if f["id"] == target)
    assert (moved["status"], moved["dueAt"]) == ("pending", new_due)
    assert [r["toDueAt"] for r in moved["reschedules"]] == [new_due]

    # Not before its minute: several polls later it has still arrived only once.
    wait_for_polls(service, 3)
    assert len(listener.of(target)) == 1
    advanced_at = time.time()
    control.advance_clock(61)
    again = wait_until(
        lambda: (d := listener.of(target)) and len(d) == 2 and d,
        30,
        0.2,
        what="the rescheduled follow-up routed again",
    )
    second = again[1]
    assert second.at >= advanced_at
    assert_signed(second)
    assert header(second, "X-Leadrouter-Delivery") == f"{target}:{new_due}"
    assert second.payload["followup"]["dueAt"] == new_due
    assert second.payload["deliveryId"] == f"{target}:{new_due}"
    assert second.payload["thread"]["id"] == expected[target]["thread_id"]

    # Still nothing twice (but the target at its two times), and no more skips.
    wait_for_polls(service, 3)
    final = listener.per_followup()
    assert final == Counter({fid: 1 for fid in live}) + Counter({target: 1})
    assert len(control.calls(endpoint=SKIP)) == len(finished)

    # The inbox is read once per poll per SDR, and only by polls that claimed something.
    polls = polled(service)
    claiming = [p for p in polls if p["claimed"] > 0]
    assert sorted(p["claimed"] for p in claiming) == [1, TOTAL]
    calls = control.calls()
    inbox_by_sdr = Counter(c["key"] for c in calls if c["endpoint"] == INBOX)
    assert inbox_by_sdr == {"sdr_1": 2, "sdr_2": 1, "sdr_3": 1}
    assert sum(inbox_by_sdr.values()) <= len(SDRS) * len(claiming)
    due_calls = [c for c in calls if c["endpoint"] == DUE]
    assert len(due_calls) >= len(SDRS) * len(polls)
    for sdr in SDRS:  # between two due reads of an SDR, at most one inbox read of it
        mine = [c["endpoint"] for c in calls if c["key"] == sdr and c["endpoint"] in (DUE, INBOX)]
        assert mine[0] == DUE
        assert all(not (a == b == INBOX) for a, b in zip(mine, mine[1:], strict=False))
    assert {c["key"] for c in calls if c["endpoint"].startswith("GET /v1/sdr/")} <= set(SDRS)

    # The service's own account agrees, and nothing was dead-lettered.
    routed = Counter(e["followup_id"] for e in service.events("followup.routed"))
    assert routed == final
    assert Counter(e["followup_id"] for e in service.events("followup.skipped")) == Counter(
        finished
    )
    assert service.events("notification.dead_lettered") == []
    assert dead_letters(service) == []
