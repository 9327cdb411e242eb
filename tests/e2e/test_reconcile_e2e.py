"""The second path end to end: webhooks lost on purpose, the reconcile sweep and `leadrouter
backfill` find the replies, and each interested reply is handed off exactly once.

One deployment (web, worker, beat; the sweep every 15 s, the shortest allowed) serves every test
here: each sends replies under its own id prefix, counts only those, and undoes what it changed
in the sandbox (faults, the clock). The sweep's watermark is shared, which is the point: each
test leaves it where a running deployment would.
"""

from __future__ import annotations

import calendar
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability import scenarios
from tests.reliability.scenarios import reconcile_service, send_dropping
from tests.support.service import Service
from worker.deadline import wait_until
from worker.jobs.orphans import ORPHAN_AFTER_SECONDS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SWEEP = float(scenarios.RECONCILE_ENV["RECONCILE_SECONDS"])
LIST = "GET /v1/replies"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    deployment = reconcile_service(tmp_path_factory.mktemp("reconcile"))
    yield deployment
    deployment.close()
    for child in deployment.children:  # pytest shows this only when a test failed
        print(f"--- {child.name} (exit {child.returncode}) ---")
        print(child.tail(4000))


@pytest.fixture(autouse=True)
def undo(service: Service) -> Iterator[None]:
    yield
    service.control.clear_faults()
    service.control.set_clock_offset(0)
    service.control.drop_webhooks(0)


def own(service: Service, prefix: str, interested: set[str]) -> dict[str, int]:
    """Handoffs among one test's replies: assigned, duplicates, lost, stray (not interested)."""
    counts = service.tally(interested, prefix=prefix)
    return {k: counts[k] for k in ("assigned", "duplicates", "lost", "stray")}


def sweeps(service: Service) -> list[dict[str, Any]]:
    return service.events("reconcile.swept")


def wait_sweeps(service: Service, after: int, count: int) -> list[dict[str, Any]]:
    """The first `count` complete sweeps logged after the first `after`."""
    found = wait_until(
        lambda: (s := sweeps(service)) and len(s) >= after + count and s,
        count * SWEEP + 30,
        0.25,
        what=f"{count} more reconcile sweeps",
    )
    return list(found[after : after + count])


def ids_of(service: Service, event: str, prefix: str) -> list[str]:
    return [
        str(e["reply_id"])
        for e in service.events(event)
        if str(e.get("reply_id", "")).startswith(prefix)
    ]


def watermark(service: Service) -> float | None:
    raw = service.redis().get(service.keys.reconcile_watermark)
    return float(raw) if raw else None


def test_every_webhook_dropped_for_200_replies_is_assigned_once_within_two_sweeps(
    service: Service,
) -> None:
    job = send_dropping(service, 200, "rpl_all_", drop_share=1.0)
    report = service.control.wait_webhook_job(job, timeout=30)
    interested = {d["replyId"] for d in report["deliveries"] if d["classification"] == "interested"}
    assert report["outcomes"] == {"dropped": 200} and len(interested) == 120
    before = len(sweeps(service))
    recovered = wait_until(
        lambda: len(r := ids_of(service, "reply.recovered", "rpl_all_")) >= len(interested) and r,
        2 * SWEEP + 30,
        0.25,
        what="every interested reply recovered",
    )
    assert sorted(recovered) == sorted(interested)  # each found once
    finders = {
        e["task_id"] for e in service.events("reply.recovered") if e["reply_id"] in interested
    }
    done = wait_until(
        lambda: (found := sweeps(service)) and finders <= {s["task_id"] for s in found} and found,
        SWEEP + 30,
        0.25,
        what="the finding sweeps to end",
    )
    assert finders <= {s["task_id"] for s in done[before : before + 2]}  # within two sweeps
    service.wait_assigned(interested, timeout=60)
    assert own(service, "rpl_all_", interested) == {
        "assigned": 120,
        "duplicates": 0,
        "lost": 0,
        "stray": 0,
    }
    sources = {
        e.get("source") for e in service.events("reply.assigned") if e["reply_id"] in interested
    }
    assert sources == {"reconcile"}


def test_half_dropped_and_the_rest_duplicated_racing_the_sweep_are_each_assigned_once(
    service: Service,
) -> None:
    before = len(sweeps(service))
    # 13 s of traffic (about one sweep): each delivered webhook twice at once, half of
    # them once more 6 s later (a lost acknowledgement), half of all never sent
    job = send_dropping(
        service,
        200,
        "rpl_half_",
        drop_share=0.5,
        duplicate_share=1.0,
        redeliver_share=0.5,
        retry_scale=0.1,
        rate=15,
    )
    report = service.control.wait_webhook_job(job, timeout=90)
    interested = {d["replyId"] for d in report["deliveries"] if d["classification"] == "interested"}
    dropped = {r for r in service.control.dropped_webhooks() if r.startswith("rpl_half_")}
    assert len(dropped) == 100 and report["outcomes"]["delivered"] > 100
    wait_until(
        lambda: dropped & interested <= set(ids_of(service, "reply.recovered", "rpl_half_")),
        2 * SWEEP + 30,
        0.25,
        what="every lost interested reply recovered",
    )
    finders = {e["task_id"] for e in service.events("reply.recovered") if e["reply_id"] in dropped}
    during = wait_until(
        lambda: (
            (found := sweeps(service)[before:])
            and finders <= {s["task_id"] for s in found}
            and found
        ),
        SWEEP + 30,
        0.25,
        what="the finding sweeps to end",
    )
    service.wait_assigned(interested, timeout=60)
    assert own(service, "rpl_half_", interested) == {
        "assigned": len(interested),
        "duplicates": 0,
        "lost": 0,
        "stray": 0,
    }
    recovered = set(ids_of(service, "reply.recovered", "rpl_half_"))
    assert dropped & interested <= recovered  # every lost one found by a sweep
    assert sum(s["already_handled"] for s in during) > 0  # sweeps met replies webhooks brought
    assert len(ids_of(service, "reply.recovered", "rpl_half_")) == len(recovered)


def test_a_three_day_outage_is_caught_up_by_backfill_and_a_second_backfill_enqueues_nothing(
    service: Service,
) -> None:
    row = scenarios.three_days_lost_on(service, prefix="rpl_3d_")
    print(row)
    assert (row.assigned, row.lost, row.duplicates, row.dead_lettered) == (row.events_in, 0, 0, 0)
    first, second = row.checks["first"], row.checks["second"]
    assert set(first) == set(second) == {"read", "positive", "already_handled", "enqueued"}
    assert first == {
        "read": 120,
        "positive": row.events_in,
        "already_handled": 0,  # the sweep, its watermark at now, never reached them
        "enqueued": row.events_in,
    }
    assert second == {**first, "already_handled": row.events_in, "enqueued": 0}
    assert row.checks["dropped"] == 120 and row.checks["sources"] == ["backfill"]


def test_a_worker_killed_during_a_sweep_leaves_the_watermark_and_the_next_sweep_finishes(
    service: Service,
) -> None:
    control = service.control
    control.set_fault(LIST, latency_ms=1500)  # each page 1.5 s: a sweep of 4+ pages takes 6 s
    job = send_dropping(service, 200, "rpl_kill_", drop_share=1.0)
    report = control.wait_webhook_job(job, timeout=30)
    interested = {d["replyId"] for d in report["deliveries"] if d["classification"] == "interested"}
    newest = max(r["receivedAt"] for r in control.state()["replies"] if r["id"] in interested)
    since = control.last_seq()

    def mid_sweep() -> bool:
        """Page 1 answered and some of its replies enqueued, page 2 still in its 1.5 s: the
        worker is mid-sweep, and may be taking an assign message off the queue (a kill inside
        kombu's BRPOP-to-unacked window loses that message; the recovery sends it again,
        worker/jobs/orphans.py)."""
        pages = [c["query"] for c in control.calls(since=since, endpoint=LIST)]
        return (
            any("page=1&" in q or q.endswith("page=1") for q in pages)
            and not any("page=2" in q for q in pages)
            and bool(ids_of(service, "reply.recovered", "rpl_kill_"))
        )

    wait_until(mid_sweep, SWEEP + 30, 0.05, what="a sweep between its first two pages")
    mark = watermark(service)
    [worker] = [p for p in service.procs("worker") if p.alive()]
    worker.signal(signal.SIGKILL)  # its whole process group, mid-sweep
    worker.popen.wait(10)
    assert watermark(service) == mark  # a sweep cut short moves nothing
    control.clear_faults()
    lock_ttl = max(0, service.redis().pttl(service.keys.reconcile_lock)) / 1000
    killed = time.monotonic()
    swept_before = len(sweeps(service))
    service.start("worker")
    # a message lost in the kill is sent again once its marker is ORPHAN_AFTER_SECONDS old
    service.wait_assigned(interested, timeout=lock_ttl + ORPHAN_AFTER_SECONDS + 2 * SWEEP + 60)
    print(f"assigned {time.monotonic() - killed:.1f} s after the kill (lock ttl {lock_ttl:.0f} s)")
    assert own(service, "rpl_kill_", interested)["duplicates"] == 0
    assert own(service, "rpl_kill_", interested)["stray"] == 0
    wait_sweeps(service, swept_before, 1)  # a complete sweep by the new worker
    after = watermark(service)
    # no watermark yet when this test runs first (none comes from our clock): then only the
    # replies' own receivedAt bounds it
    assert after is not None
    newest_at = calendar.timegm(time.strptime(newest, "%Y-%m-%dT%H:%M:%SZ"))
    assert after >= max(mark or 0.0, newest_at)
