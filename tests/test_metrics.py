"""worker/metrics.py against fakeredis: each process flushes its counters into Redis, and the
receiver's export sums every process's counters with its own and adds gauges read from Redis."""

from __future__ import annotations

import asyncio
import json
import time

import fakeredis
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker.jobs.deadletter import DeadLetter
from worker.keys import TASK_ASSIGN, Keys
from worker.metrics import STALE_AFTER_SECONDS, Metrics
from worker.routing.assign import assign
from worker.runtime import Runtime

KEYS = Keys("test:")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def export(metrics: Metrics, server: fakeredis.FakeServer) -> Samples:
    """`metrics.render` through an async client of `server`, parsed back into samples."""

    async def render() -> bytes:
        client = fakeredis.FakeAsyncRedis(server=server)
        try:
            page, _ = await metrics.render(client, KEYS)
        finally:
            await client.aclose()
        return page

    page = asyncio.run(render())
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page.decode())
        for sample in family.samples
    }


def assigned(samples: Samples, outcome: str = "assigned", source: str = "webhook") -> float | None:
    return samples.get(("leadrouter_assignments_total", (("outcome", outcome), ("source", source))))


def test_flush_writes_this_process_snapshot_under_its_ident(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    metrics = Metrics("host-a:1")
    metrics.assignments.labels("assigned", "webhook").inc(3)
    before = time.time()
    metrics.flush(fake_redis, KEYS)
    stored = json.loads(fake_redis.hget(KEYS.metrics, "host-a:1"))
    assert before <= stored["at"] <= time.time()
    [family] = [f for f in stored["families"] if f["name"] == "leadrouter_assignments"]
    assert family["type"] == "counter"
    assert family["samples"] == [
        ["leadrouter_assignments_total", {"outcome": "assigned", "source": "webhook"}, 3.0]
    ]


def test_a_snapshot_leaves_out_the_created_timestamps() -> None:
    metrics = Metrics("host-a:1")
    metrics.followups.labels("routed").inc()
    metrics.call_seconds.labels("GET /v1/sdrs").observe(0.2)
    names = [s[0] for family in metrics.snapshot() for s in family["samples"]]
    assert "leadrouter_followups_total" in names
    assert "leadrouter_leadterra_call_seconds_count" in names
    assert not [name for name in names if name.endswith("_created")]


def test_flushing_again_replaces_the_process_snapshot(fake_redis: fakeredis.FakeRedis) -> None:
    metrics = Metrics("host-a:1")
    metrics.assignments.labels("assigned", "webhook").inc()
    metrics.flush(fake_redis, KEYS)
    metrics.assignments.labels("assigned", "webhook").inc()
    metrics.flush(fake_redis, KEYS)
    assert fake_redis.hkeys(KEYS.metrics) == [b"host-a:1"]
    [family] = [
        f
        for f in json.loads(fake_redis.hget(KEYS.metrics, "host-a:1"))["families"]
        if f["name"] == "leadrouter_assignments"
    ]
    assert family["samples"][0][2] == 2.0


def test_the_export_sums_every_process_counters_by_label(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    receiver, worker_1, worker_2 = Metrics("web:1"), Metrics("worker:2"), Metrics("worker:3")
    receiver.webhooks.labels("enqueued").inc(5)
    worker_1.assignments.labels("assigned", "webhook").inc(2)
    worker_2.assignments.labels("assigned", "webhook").inc(3)
    worker_2.assignments.labels("held", "webhook").inc()
    worker_1.flush(fake_redis, KEYS)
    worker_2.flush(fake_redis, KEYS)

    samples = export(receiver, fake_server)

    assert assigned(samples) == 5.0
    assert assigned(samples, "held") == 1.0
    assert samples[("leadrouter_webhooks_total", (("outcome", "enqueued"),))] == 5.0


def test_the_export_merges_histograms_bucket_by_bucket(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    receiver, worker = Metrics("web:1"), Metrics("worker:2")
    receiver.observe_call("GET /v1/sdrs", "200", 0.04)
    worker.observe_call("GET /v1/sdrs", "200", 0.3)
    worker.observe_call("GET /v1/sdrs", "429", 3.0)
    worker.flush(fake_redis, KEYS)

    samples = export(receiver, fake_server)

    endpoint = (("endpoint", "GET /v1/sdrs"),)
    assert samples[("leadrouter_leadterra_call_seconds_count", endpoint)] == 3.0
    assert samples[("leadrouter_leadterra_call_seconds_sum", endpoint)] == pytest.approx(3.34)
    bucket = (
        "leadrouter_leadterra_call_seconds_bucket",
        (("endpoint", "GET /v1/sdrs"), ("le", "0.5")),
    )
    assert samples[bucket] == 2.0
    calls = "leadrouter_leadterra_calls_total"
    assert samples[(calls, (("endpoint", "GET /v1/sdrs"), ("status", "200")))] == 2.0
    assert samples[(calls, (("endpoint", "GET /v1/sdrs"), ("status", "429")))] == 1.0


def test_the_exporter_counts_itself_live_not_from_its_last_flush(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    receiver = Metrics("web:1")
    receiver.assignments.labels("assigned", "webhook").inc()
    receiver.flush(fake_redis, KEYS)
    receiver.assignments.labels("assigned", "webhook").inc(2)
    assert assigned(export(receiver, fake_server)) == 3.0


def test_a_snapshot_older_than_a_day_is_left_out_and_deleted(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    gone, alive = Metrics("worker:gone"), Metrics("worker:alive")
    gone.assignments.labels("assigned", "webhook").inc(100)
    alive.assignments.labels("assigned", "webhook").inc(1)
    old = {"at": time.time() - STALE_AFTER_SECONDS - 60, "families": gone.snapshot()}
    fake_redis.hset(KEYS.metrics, gone.ident, json.dumps(old))
    alive.flush(fake_redis, KEYS)

    samples = export(Metrics("web:1"), fake_server)

    assert assigned(samples) == 1.0
    assert fake_redis.hkeys(KEYS.metrics) == [b"worker:alive"]


def test_the_export_reads_queue_depths_dead_letters_and_held_replies_from_redis(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(KEYS.queue("assign"), "m1", "m2")
    fake_redis.lpush(KEYS.queue("followups"), "m3")
    fake_redis.hset(KEYS.dlq, "task-1", "{}")
    fake_redis.zadd(KEYS.delayed, {"assign\nm4": 1.0, "assign\nm5": 2.0, "assign\nm6": 3.0})
    now = time.time()
    for reply_id, age in (("rpl_1", 100.0), ("rpl_2", 10.0)):
        entry = {"since": now - age, "reason": "no_eligible_sdr", "checked": now}
        fake_redis.hset(KEYS.held, reply_id, json.dumps(entry))

    samples = export(Metrics("web:1"), fake_server)
    scraped_within = time.time() - now

    depth = "leadrouter_queue_messages"
    assert samples[(depth, (("queue", "assign"),))] == 2.0
    assert samples[(depth, (("queue", "followups"),))] == 1.0
    assert samples[(depth, (("queue", "default"),))] == 0.0
    assert samples[("leadrouter_redis_up", ())] == 1.0
    assert samples[("leadrouter_dead_letters", ())] == 1.0
    assert samples[("leadrouter_delayed_messages", ())] == 3.0
    assert samples[("leadrouter_held_replies", ())] == 2.0
    oldest = samples[("leadrouter_oldest_held_reply_age_seconds", ())]
    assert 100.0 <= oldest <= 100.0 + scraped_within


def test_with_nothing_held_the_oldest_held_age_is_zero(
    fake_server: fakeredis.FakeServer,
) -> None:
    samples = export(Metrics("web:1"), fake_server)
    assert samples[("leadrouter_held_replies", ())] == 0.0
    assert samples[("leadrouter_oldest_held_reply_age_seconds", ())] == 0.0


def test_with_redis_down_the_export_still_serves_its_own_counters(
    fake_server: fakeredis.FakeServer,
) -> None:
    receiver = Metrics("web:1")
    receiver.webhooks.labels("enqueued").inc(4)
    fake_server.connected = False

    samples = export(receiver, fake_server)

    assert samples[("leadrouter_redis_up", ())] == 0.0
    assert samples[("leadrouter_webhooks_total", (("outcome", "enqueued"),))] == 4.0
    assert ("leadrouter_queue_messages", (("queue", "assign"),)) not in samples


def held_gauges(server: fakeredis.FakeServer) -> tuple[float, float]:
    samples = export(Metrics("web:1"), server)
    return (
        samples[("leadrouter_held_replies", ())],
        samples[("leadrouter_oldest_held_reply_age_seconds", ())],
    )


def test_held_reply_gauges_are_right_after_every_path(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    """Held, then assigned, dead-lettered, dropped or replayed: the gauges follow each time."""
    fake = FakeLeadterra()
    rt = Runtime(make_settings(key_prefix=KEYS.prefix), client=fake_redis, leadterra=fake.client())
    replies = {n: {"id": f"rpl_{n}", "email": f"lead{n}@acme.io"} for n in range(1, 5)}
    long_ago = time.time() - 500
    for reply in replies.values():
        rt.holds.hold(reply, "no_eligible_sdr", retries=0)
    fake_redis.hset(KEYS.held, "rpl_1", json.dumps({"since": long_ago, "reason": "x"}))
    count, oldest = held_gauges(fake_server)
    assert count == 4 and oldest >= 500

    assign(rt, replies[1], attempt=1, retries=0)  # assigned
    count, oldest = held_gauges(fake_server)
    assert count == 3 and oldest < 500

    def letter(n: int) -> DeadLetter:
        return DeadLetter(f"reply:rpl_{n}", TASK_ASSIGN, "assign", [replies[n]], "e", "E", 3)

    rt.dlq.add(letter(2))  # dead-lettered
    assert held_gauges(fake_server)[0] == 2
    rt.dlq.add_many([letter(3)])  # dead-lettered, in bulk
    assert held_gauges(fake_server)[0] == 1
    rt.dlq.replay(letter(2).id)  # replayed: queued again, not held until it is held again
    assert held_gauges(fake_server)[0] == 1
    rt.holds.hold(replies[3], "no_eligible_sdr", retries=0)  # held again after an old letter
    rt.dlq.drop(letter(3).id)  # dropped
    rt.dlq.add(letter(4))
    assert held_gauges(fake_server) == (0.0, 0.0)
