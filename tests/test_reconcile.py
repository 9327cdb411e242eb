"""The reconcile sweep (worker/intake/sweep.py) against the fake Leadterra and fakeredis: the
stopping rule, the watermark, truncation and resume, the lookback cap, every envelope, paging
that the server ignores, duplicates, and a reply by both paths assigned once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fakeredis
import httpx
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import REPLIES_PATH, FakeLeadterra
from tests.test_web import body_for, post, sign
from worker import errors
from worker.intake.sweep import load_state, reconcile
from worker.jobs.deadletter import DeadLetter
from worker.keys import QUEUE_ASSIGN, TASK_ASSIGN, Keys
from worker.leadterra.client import LeadterraClient
from worker.receiver.web import create_app
from worker.routing.assign import assign
from worker.runtime import Runtime

KEYS = Keys("test:")
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
OVERLAP = 900


def iso(moment: float, ms: bool = False) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    if ms:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def reply(n: int, at: float, classification: str = "interested", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"rpl_{n}",
        "email": f"lead{n}@acme.io",
        "campaignId": "camp_1",
        "classification": classification,
        "receivedAt": iso(at),
        "threadSnippet": "Sounds great",
        **extra,
    }


def spread(count: int, newest: float = NOW, step: float = 10.0, first: int = 0) -> list[dict]:
    """`count` interested replies, `step` seconds apart, the newest at `newest`."""
    return [reply(first + i, newest - i * step) for i in range(count)]


@pytest.fixture
def fake() -> FakeLeadterra:
    return FakeLeadterra(max_calls=400)


@pytest.fixture
def make_rt(fake_redis: fakeredis.FakeRedis, fake: FakeLeadterra) -> Callable[..., Runtime]:
    def build(**overrides: Any) -> Runtime:
        return Runtime(make_settings(**overrides), client=fake_redis, leadterra=fake.client())

    return build


@pytest.fixture
def rt(make_rt: Callable[..., Runtime]) -> Runtime:
    return make_rt()


def payloads(redis: fakeredis.FakeRedis) -> list[dict[str, Any]]:
    """The assign tasks' payloads on the queue, oldest first."""
    found = []
    for raw in reversed(redis.lrange(KEYS.queue(QUEUE_ASSIGN), 0, -1)):
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        found.append(body[0][0])
    return found


def ids(redis: fakeredis.FakeRedis) -> list[str]:
    return sorted(p["id"] for p in payloads(redis))


def set_watermark(redis: fakeredis.FakeRedis, at: float) -> None:
    redis.set(KEYS.reconcile_watermark, repr(at))


def pages_read(fake: FakeLeadterra) -> list[int]:
    return [int(c.params["page"]) for c in fake.to(REPLIES_PATH)]


# -- the stopping rule and the watermark ------------------------------------------------------


def test_a_sweep_reads_until_a_page_ends_below_the_watermark_minus_the_overlap(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    set_watermark(fake_redis, NOW - 1000)
    fake.replies = spread(300, step=10)  # pages of 50 cover 500 s each
    result = reconcile(rt, now=NOW)
    # the floor is NOW - 1900: page 4 (1500..1990 s old) is the first to pass it
    assert result.complete and pages_read(fake) == [1, 2, 3, 4]
    assert ids(fake_redis) == sorted(f"rpl_{i}" for i in range(191))  # 0..1900 s old
    assert load_state(rt) == (NOW, None)  # the newest receivedAt read


def test_fewer_than_a_page_since_the_last_sweep_costs_one_call(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    set_watermark(fake_redis, NOW - 60)
    fake.replies = spread(30, step=10) + spread(200, newest=NOW - 5000, first=100)
    reconcile(rt, now=NOW)
    assert pages_read(fake) == [1]
    assert fake.last.params["perPage"] == "50"


def test_the_watermark_is_leadterras_receivedat_not_our_clock(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    set_watermark(fake_redis, NOW - 600)
    fake.replies = spread(5, newest=NOW - 300)
    reconcile(rt, now=NOW)
    assert load_state(rt)[0] == NOW - 300


def test_a_sweep_that_fails_half_way_leaves_the_watermark_where_it_was(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    set_watermark(fake_redis, NOW - 3000)
    fake.replies = spread(300, step=10)

    def second_page_fails(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return httpx.Response(503, json={"error": "down"})
        return fake.documented(request)

    fake.answers[REPLIES_PATH] = second_page_fails
    with pytest.raises(errors.ServerError):
        reconcile(rt, now=NOW)
    assert load_state(rt) == (NOW - 3000, None)
    assert len(ids(fake_redis)) == 50  # page 1 was enqueued: enqueueing again is a no-op
    assert not fake_redis.exists(KEYS.reconcile_last_success)

    del fake.answers[REPLIES_PATH]
    result = reconcile(rt, now=NOW)
    assert result.complete and load_state(rt) == (NOW, None)
    assert len(ids(fake_redis)) == len(set(ids(fake_redis))) == 300
    assert fake_redis.exists(KEYS.reconcile_last_success)


def test_first_install_starts_at_now_minus_the_overlap(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    fake.replies = spread(10, step=60) + spread(10, newest=NOW - 5 * 86400, first=100)
    with capture_logs() as logs:
        result = reconcile(rt, now=NOW)
    assert result.complete
    # 0..540 s old are inside the overlap; the older ones are for `leadrouter backfill`
    assert ids(fake_redis) == sorted(f"rpl_{i}" for i in range(10))
    assert load_state(rt)[0] == NOW
    assert [e["event"] for e in logs].count("reply.recovered") == 10


def test_first_install_with_nothing_recent_enqueues_nothing(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    fake.replies = spread(40, newest=NOW - 86400)
    reconcile(rt, now=NOW)
    assert ids(fake_redis) == []
    # no watermark from our clock: the next sweep starts at its own now minus the overlap
    assert load_state(rt) == (None, None)
    fake.replies = spread(3, newest=NOW + 300) + fake.replies
    reconcile(rt, now=NOW + 300)
    assert ids(fake_redis) == ["rpl_0", "rpl_1", "rpl_2"]
    assert load_state(rt)[0] == NOW + 300


# -- truncation, resume and the lookback cap ---------------------------------------------------


def test_max_pages_truncates_stores_a_resume_point_and_the_next_sweep_closes_the_gap(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    rt = make_rt(reconcile_max_pages=2)
    set_watermark(fake_redis, NOW - 5000)
    fake.replies = spread(600, step=10)  # the floor, NOW - 5900, is on page 12
    with capture_logs() as logs:
        first = reconcile(rt, now=NOW)
    assert not first.complete and pages_read(fake) == [1, 2]
    [truncated] = [e for e in logs if e["event"] == "reconcile.truncated"]
    assert truncated["log_level"] == "warning" and truncated["resume_page"] == 3
    watermark, resume = load_state(rt)
    assert watermark == NOW - 5000  # untouched until the gap is closed
    assert resume == {"page": 3, "floor": NOW - 5900, "mark": NOW - 5000, "newest": NOW}

    fake.replies = spread(20, newest=NOW + 200, step=10, first=1000) + fake.replies
    fake.calls.clear()
    sweeps = 1
    while load_state(rt)[1] is not None:
        reconcile(rt, now=NOW + 60 * sweeps)
        sweeps += 1
    # pages shift down as replies arrive on top: resuming at page 3 re-reads, never skips
    assert pages_read(fake)[0] == 3
    assert sweeps > 2  # the gap took more than one sweep of two pages
    # the sweep that closed the gap moved the watermark to the newest the first sweep saw
    assert load_state(rt) == (NOW, None)
    reconcile(rt, now=NOW + 60 * sweeps)  # and the next one reads the top
    assert load_state(rt) == (NOW + 200, None)
    found = ids(fake_redis)
    assert len(found) == len(set(found))  # each once
    above = {f"rpl_{i}" for i in range(501)} | {f"rpl_{i}" for i in range(1000, 1020)}
    assert above <= set(found)  # every reply above the old watermark
    assert set(found) <= above | {f"rpl_{i}" for i in range(591)}  # none below the floor


def test_the_lookback_caps_how_far_back_a_sweep_goes(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    rt = make_rt(reconcile_lookback_hours=3)
    set_watermark(fake_redis, NOW - 5 * 86400)  # the service was off for five days
    fake.replies = spread(100, step=300)  # 0 .. 29,700 s old
    with capture_logs() as logs:
        result = reconcile(rt, now=NOW)
    assert result.complete
    assert ids(fake_redis) == sorted(f"rpl_{i}" for i in range(37))  # 0 .. 10,800 s old
    [capped] = [e for e in logs if e["event"] == "reconcile.lookback_capped"]
    assert capped["log_level"] == "warning" and "backfill" in capped["hint"]


def test_the_lookback_also_caps_a_resume_point(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    rt = make_rt(reconcile_lookback_hours=1)
    set_watermark(fake_redis, NOW - 600)
    resume = {"page": 2, "floor": NOW - 86400, "newest": NOW - 600}
    fake_redis.set(KEYS.reconcile_resume, json.dumps(resume))
    fake.replies = spread(200, step=60)
    result = reconcile(rt, now=NOW)
    assert result.complete and load_state(rt) == (NOW, None)
    assert pages_read(fake)[:2] == [2, 1]  # the gap (capped at an hour), then the top
    assert max(int(i.split("_")[1]) for i in ids(fake_redis)) == 60  # at most an hour old


# -- what the server answers -------------------------------------------------------------------


@pytest.mark.parametrize("envelope", ["bare", "data", "replies"])
def test_every_envelope_is_read_alike(
    envelope: str, rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    fake.envelope = envelope
    set_watermark(fake_redis, NOW - 600)
    fake.replies = spread(120, step=10)
    result = reconcile(rt, now=NOW)
    assert result.complete and pages_read(fake) == [1, 2, 3]
    assert ids(fake_redis) == sorted(f"rpl_{i}" for i in range(120))


def test_timestamps_unknown_classifications_and_fields_are_tolerated(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    set_watermark(fake_redis, NOW - 600)
    fake.replies = [
        reply(1, NOW - 10, receivedAt=iso(NOW - 10, ms=True)),
        reply(2, NOW - 20, classification="Interested ", mood={"nested": [1]}),
        reply(3, NOW - 30, classification="referral_someday"),
        reply(4, NOW - 40, receivedAt="yesterday-ish"),
        {"id": 5, "classification": "interested"},  # unreadable: logged and left out
        reply(6, NOW - 60, classification=None),
    ]
    with capture_logs() as logs:
        result = reconcile(rt, now=NOW)
    assert result.complete
    assert ids(fake_redis) == ["rpl_1", "rpl_2"]
    events = {e["event"]: e for e in logs}
    assert events["replies.unreadable"]["count"] == 1
    assert events["reconcile.swept"]["undated"] == 1


def test_a_server_that_ignores_paging_is_read_once_not_max_pages_times(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    fake.ignore_paging = True
    set_watermark(fake_redis, NOW - 3000)
    fake.replies = spread(200, step=10)
    with capture_logs() as logs:
        result = reconcile(rt, now=NOW)
    assert result.complete and pages_read(fake) == [1, 2]
    assert "replies.paging_ignored" in [e["event"] for e in logs]
    assert ids(fake_redis) == sorted(f"rpl_{i}" for i in range(50))


def test_duplicate_heavy_pages_enqueue_each_reply_once(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    set_watermark(fake_redis, NOW - 600)
    base = spread(20, step=10)
    fake.replies = [dict(r) for r in base for _ in range(5)]  # every reply five times
    fake_redis.set(KEYS.seen("rpl_3"), repr(time.time()))  # and one the webhook brought
    with capture_logs() as logs:
        reconcile(rt, now=NOW)
    assert ids(fake_redis) == sorted(r["id"] for r in base if r["id"] != "rpl_3")
    swept = next(e for e in logs if e["event"] == "reconcile.swept")
    assert swept["enqueued"] == 19 and swept["already_handled"] == 100 - 19


def test_a_sweep_goes_through_the_rate_limit_and_the_shared_429_pause(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    rt._leadterra = LeadterraClient.from_settings(
        rt.settings, transport=fake.transport(), observer=rt.recorder
    )
    reconcile(rt, now=NOW)
    assert fake_redis.exists(KEYS.rate_tat)
    assert rt.metrics.calls.labels("GET /v1/replies", "200")._value.get() == 1
    fake.answers[REPLIES_PATH] = httpx.Response(429, headers={"retry-after": "30"})
    with pytest.raises(errors.RateLimited):
        reconcile(rt, now=NOW + 60)
    assert float(fake_redis.get(KEYS.rate_pause)) > 0


def test_one_sweep_at_a_time(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    lock = fake_redis.lock(KEYS.reconcile_lock, timeout=60)
    assert lock.acquire(blocking=False)
    assert reconcile(rt, now=NOW).skipped_lock
    assert fake.to(REPLIES_PATH) == []


# -- both paths, once ---------------------------------------------------------------------------


@pytest.fixture
def web(fake_server: fakeredis.FakeServer) -> TestClient:
    app = create_app(make_settings(), client=fakeredis.FakeAsyncRedis(server=fake_server))
    return TestClient(app)


def test_a_reply_the_webhook_enqueued_is_not_enqueued_again_by_the_sweep(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis, web: TestClient
) -> None:
    body = body_for("rpl_1")
    assert post(web, body, sign(body)).status_code == 202
    fake.replies = [reply(1, NOW - 10), reply(2, NOW - 20)]
    with capture_logs() as logs:
        reconcile(rt, now=NOW)
    assert ids(fake_redis) == ["rpl_1", "rpl_2"]
    assert [e["reply_id"] for e in logs if e["event"] == "reply.recovered"] == ["rpl_2"]
    assert fake_redis.get(KEYS.last_webhook) is not None


def test_a_reply_the_sweep_enqueued_is_a_duplicate_for_the_webhook(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis, web: TestClient
) -> None:
    fake.replies = [reply(1, NOW - 10)]
    reconcile(rt, now=NOW)
    body = body_for("rpl_1")
    answer = post(web, body, sign(body))
    assert answer.status_code == 200 and answer.json()["status"] == "duplicate"
    assert ids(fake_redis) == ["rpl_1"]


# -- where each reply came from ---------------------------------------------------------------


def test_the_source_reaches_the_outcome_record_the_log_and_the_metric(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    fake.replies = [reply(1, NOW - 10)]
    reconcile(rt, now=NOW)
    [payload] = payloads(fake_redis)
    assert payload["source"] == "reconcile" and payload["receivedAt"] == iso(NOW - 10)
    with capture_logs() as logs:
        assert assign(rt, payload, attempt=1, retries=0) == "assigned"
    assert json.loads(fake_redis.get(KEYS.done("rpl_1")))["source"] == "reconcile"
    [assigned] = [e for e in logs if e["event"] == "reply.assigned"]
    assert assigned["source"] == "reconcile"
    assert rt.metrics.assignments.labels("assigned", "reconcile")._value.get() == 1


def test_a_message_queued_before_sources_existed_counts_as_a_webhook(
    rt: Runtime, fake_redis: fakeredis.FakeRedis
) -> None:
    old = {"id": "rpl_9", "classification": "interested", "acceptedAt": NOW}
    assert assign(rt, old, attempt=1, retries=0) == "assigned"
    assert json.loads(fake_redis.get(KEYS.done("rpl_9")))["source"] == "webhook"
    assert rt.metrics.assignments.labels("assigned", "webhook")._value.get() == 1


def test_polling_mode_logs_a_found_reply_at_info_not_as_recovered(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra
) -> None:
    rt = make_rt(intake="polling", leadterra_webhook_secret=None, reconcile_seconds=15)
    fake.replies = [reply(1, NOW - 10)]
    with capture_logs() as logs:
        reconcile(rt, now=NOW)
    [found] = [e for e in logs if e.get("reply_id") == "rpl_1"]
    assert found["event"] == "reply.found" and found["log_level"] == "info"
    assert found["source"] == "reconcile"


def test_a_burst_larger_than_max_pages_inside_the_overlap_does_not_wedge_the_sweep(
    make_rt: Callable[..., Runtime], fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    """600 replies in 600 s (12 pages) against a budget of 2 pages: the gap closes, and once
    the whole burst sits inside the overlap below the watermark, a sweep still completes."""
    rt = make_rt(reconcile_max_pages=2)
    set_watermark(fake_redis, NOW - 1000)
    fake.replies = spread(600, step=1)
    results = [reconcile(rt, now=NOW + n) for n in range(12)]
    assert not results[0].complete
    assert all(r.complete for r in results[-3:])  # no endless truncation
    assert load_state(rt) == (NOW, None)
    assert ids(fake_redis) == sorted(f"rpl_{i}" for i in range(600))  # each once
    fake.calls.clear()
    with capture_logs() as logs:
        assert reconcile(rt, now=NOW + 60).complete
    assert pages_read(fake) == [1, 2]  # the budget, cut inside the overlap
    assert [e["event"] for e in logs].count("reconcile.overlap_cut") == 1


def test_a_dead_letter_an_operator_dropped_is_not_sent_again(
    rt: Runtime, fake: FakeLeadterra, fake_redis: fakeredis.FakeRedis
) -> None:
    set_watermark(fake_redis, NOW - 60)
    fake.replies = spread(1)
    fake_redis.set(KEYS.seen("rpl_0"), repr(time.time() - 600), ex=3600)
    rt.dlq.add(DeadLetter("reply:rpl_0", TASK_ASSIGN, QUEUE_ASSIGN, [{"id": "rpl_0"}], "e", "E", 5))
    assert rt.dlq.drop("reply:rpl_0")
    assert json.loads(fake_redis.get(KEYS.done("rpl_0")))["outcome"] == "dropped"
    assert 0 < fake_redis.ttl(KEYS.done("rpl_0")) <= 3600
    assert reconcile(rt, now=NOW).enqueued == 0
