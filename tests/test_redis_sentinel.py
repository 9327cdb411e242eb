"""worker/redis_conn.py on real processes: a primary, a replica and three Sentinels on loopback.

The clients find the primary through the Sentinels, their pools wait for a connection, and a
failover is followed. REDIS_MIN_REPLICAS_ACK: the receiver's enqueue and the assign's outcome
record are confirmed by WAIT, and when fewer replicas than asked confirm in time the receiver
answers 503 and the assign raises NotReplicated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from tests.test_web import body_for, sign
from worker import errors
from worker.deadline import wait_until
from worker.embedded_sentinel import MASTER, SentinelGroup
from worker.receiver.web import create_app, redis_for_web
from worker.redis_conn import REPLICA_ACK_TIMEOUT_MS, redis_client, sync_client
from worker.routing.assign import assign
from worker.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def group() -> Iterator[SentinelGroup]:
    with SentinelGroup(replicas=1) as started:
        yield started


def through(group: SentinelGroup, **overrides: object):
    """Settings that reach `group` through its Sentinels only: REDIS_URL's host is unused."""
    return make_settings(
        redis_url="redis://127.0.0.1:1/0",
        redis_sentinels=group.addresses,
        redis_sentinel_master=MASTER,
        **overrides,
    )


@pytest.fixture
def clean(group: SentinelGroup) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(group.url)
    client.flushall()
    yield client
    client.close()


def test_the_workers_client_finds_the_primary_through_the_sentinels(group, clean) -> None:
    client = redis_client(through(group), 4)
    client.set("k", "v")
    assert clean.get("k") == b"v"
    assert client.connection_pool.master_address == ("127.0.0.1", group.primary_port())
    client.close()


def test_the_workers_pool_waits_for_a_connection_then_gives_up(group, clean) -> None:
    client = sync_client(through(group), pool_size=1, pool_wait=0.3)
    held = client.connection_pool.get_connection()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match="No connection available"):
        client.connection_pool.get_connection()
    assert time.monotonic() - started >= 0.3
    client.connection_pool.release(held)
    assert client.ping()
    client.close()


def test_the_receivers_client_finds_the_primary_and_its_pool_waits(group, clean) -> None:
    async def scenario() -> tuple[bytes | None, float]:
        client = redis_for_web(through(group))
        client.connection_pool.timeout = 0.3
        client.connection_pool.max_connections = 1
        await client.set("k", "async")
        held = await client.connection_pool.get_connection()
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError, match="No connection available"):
            await client.connection_pool.get_connection()
        waited = time.monotonic() - started
        await client.connection_pool.release(held)
        value = await client.get("k")
        await client.aclose()
        return value, waited

    value, waited = asyncio.run(scenario())
    assert value == b"async"
    assert waited >= 0.3


def post(test_client: TestClient, reply_id: str):
    body = body_for(reply_id)
    return test_client.post(
        "/webhooks/leadterra", content=body, headers={"X-Leadterra-Signature": sign(body)}
    )


def test_the_receiver_answers_202_once_a_replica_confirmed_the_enqueue(group, clean) -> None:
    settings = through(group, redis_min_replicas_ack=1)
    with TestClient(create_app(settings)) as test_client:
        clean.script_flush()  # as on a primary new since a failover: the script is loaded again
        assert post(test_client, "rpl_acked").status_code == 202
        assert post(test_client, "rpl_acked").json()["status"] == "duplicate"
    assert clean.exists("test:seen:rpl_acked")


def test_the_receiver_answers_503_when_too_few_replicas_confirm_in_time(group, clean) -> None:
    settings = through(group, redis_min_replicas_ack=2)  # the group has one replica
    with TestClient(create_app(settings)) as test_client, capture_logs() as logs:
        started = time.monotonic()
        answer = post(test_client, "rpl_short")
        took = time.monotonic() - started
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not_replicated",
        "reply_id": "rpl_short",
        "error": "queue not replicated",
    }
    assert took >= REPLICA_ACK_TIMEOUT_MS / 1000
    [event] = [e for e in logs if e["event"] == "webhook.replica_ack_timeout"]
    assert (event["wanted"], event["acked"], event["reply_id"]) == (2, 1, "rpl_short")
    # the primary has it: Leadterra's retry is answered once a replica confirms (or 503 again)
    assert clean.exists("test:seen:rpl_short")


def runtime(group: SentinelGroup, acks: int, fake: FakeLeadterra) -> Runtime:
    settings = through(group, redis_min_replicas_ack=acks)
    return Runtime(settings, leadterra=fake.client())


def interested(reply_id: str) -> dict:
    return {"id": reply_id, "email": "lead@acme.io", "acceptedAt": time.time()}


def test_the_assign_records_its_outcome_once_a_replica_confirmed_it(group, clean) -> None:
    fake = FakeLeadterra()
    rt = runtime(group, 1, fake)
    assert assign(rt, interested("rpl_ok"), attempt=1, retries=0) == "assigned"
    assert clean.exists("test:done:rpl_ok")
    rt.close()


def test_an_outcome_too_few_replicas_confirmed_is_retried_and_the_retry_calls_nobody(
    group, clean
) -> None:
    fake = FakeLeadterra()
    rt = runtime(group, 2, fake)
    with pytest.raises(errors.NotReplicated) as short:
        assign(rt, interested("rpl_short"), attempt=1, retries=0)
    assert (short.value.wanted, short.value.acked) == (2, 1)
    assert short.value.retryable
    rt.close()
    rt = runtime(group, 1, fake)
    assert assign(rt, interested("rpl_short"), attempt=2, retries=1) == "duplicate"
    assert len(fake.assigns()) == 1
    rt.close()


def test_clients_follow_a_failover() -> None:
    with SentinelGroup(replicas=1) as own:
        settings = through(own)
        sync = redis_client(settings, 4)
        sync.set("before", "1")
        old = own.primary_port()
        assert old is not None
        killed = own.kill_primary()
        new = own.wait_failover(old)

        def written() -> bool:
            try:
                return bool(sync.set("after", "2"))
            except redis.ConnectionError:
                return False

        wait_until(written, 20, 0.1, what="a write through the client to the new primary")
        assert sync.connection_pool.master_address == ("127.0.0.1", new)
        assert sync.get("before") == b"1"  # the replica had it

        async def async_side() -> bytes | None:
            client = redis_for_web(settings)
            value = await client.get("after")
            await client.aclose()
            return value

        assert asyncio.run(async_side()) == b"2"
        own.revive(killed)
        assert redis.Redis(port=killed.port).role()[0] == b"slave"
        sync.close()
