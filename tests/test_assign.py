import json

import httpx
import pytest
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from worker import errors
from worker.routing.assign import assign
from worker.runtime import Runtime


@pytest.fixture
def fake() -> FakeLeadterra:
    return FakeLeadterra()


@pytest.fixture
def rt(fake_redis, fake) -> Runtime:
    return Runtime(make_settings(), client=fake_redis, leadterra=fake.client())


def reply(reply_id: str = "rpl_1") -> dict:
    return {
        "id": reply_id,
        "email": "lead@acme.io",
        "classification": "interested",
        "acceptedAt": 0.0,
    }


def run(rt: Runtime, r: dict | None = None) -> tuple[str, list[dict]]:
    with capture_logs() as logs:
        outcome = assign(rt, r or reply(), attempt=1, retries=0)
    return outcome, logs


def test_a_2xx_assigns_with_the_settings_category_and_logs_the_thread(rt, fake) -> None:
    outcome, logs = run(rt)
    assert outcome == "assigned"
    [(path, body)] = fake.assigns()
    assert path == "/v1/replies/rpl_1/assign"
    assert body == {"sdrId": "sdr_1", "category": "A", "skipIcpCheck": True}
    [event] = [e for e in logs if e["event"] == "reply.assigned"]
    assert event["thread_id"] == "t1"
    assert {"reply_id", "sdr_id", "attempt", "duration_ms", "outcome"} <= set(event)
    assert rt.redis.exists(rt.keys.done("rpl_1"))


def test_category_and_icp_flag_come_from_settings(fake_redis, fake) -> None:
    rt = Runtime(
        make_settings(assign_category="C", assign_skip_icp_check=False),
        client=fake_redis,
        leadterra=fake.client(),
    )
    run(rt)
    assert fake.assigns()[0][1] == {"sdrId": "sdr_1", "category": "C", "skipIcpCheck": False}


def test_a_409_is_success_logged_as_already_assigned_and_not_retried(rt, fake) -> None:
    fake.assign_script.append(httpx.Response(409, json={"error": {"code": "already"}}))
    outcome, logs = run(rt)
    assert outcome == "already_assigned"
    assert [e["event"] for e in logs if e["event"].startswith("reply.")] == [
        "reply.already_assigned"
    ]
    assert len(fake.assigns()) == 1


def test_an_icp_rejection_is_recorded_and_not_retried(rt, fake) -> None:
    fake.assign_script.append(httpx.Response(400, json={"icpFailed": True}))
    outcome, logs = run(rt)
    assert outcome == "icp_rejected"
    assert any(e["event"] == "reply.icp_rejected" for e in logs)
    assert json.loads(rt.redis.get(rt.keys.done("rpl_1")))["outcome"] == "icp_rejected"


def test_a_second_run_for_the_same_reply_calls_nobody(rt, fake) -> None:
    run(rt)
    outcome, logs = run(rt)
    assert outcome == "duplicate"
    assert len(fake.assigns()) == 1
    assert any(e["event"] == "reply.duplicate" for e in logs)


def test_a_twin_held_while_the_first_run_assigned_the_reply_is_no_longer_held(rt, fake) -> None:
    run(rt)
    rt.redis.hset(rt.keys.held, "rpl_1", json.dumps({"since": 1.0, "reason": "nobody"}))
    outcome, _ = run(rt)
    assert outcome == "duplicate"
    assert not rt.redis.hexists(rt.keys.held, "rpl_1")


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, errors.ServerError), (429, errors.RateLimited), (401, errors.AuthError)],
)
def test_other_failures_raise_for_the_retry_policy(rt, fake, status, error) -> None:
    fake.assign_script.append(httpx.Response(status, headers={"Retry-After": "2"}))
    with pytest.raises(error):
        run(rt)
    assert not rt.redis.exists(rt.keys.done("rpl_1"))


def test_a_retry_goes_to_the_same_sdr_without_moving_the_rotation(rt, fake) -> None:
    fake.assign_script.append(httpx.Response(503))
    with pytest.raises(errors.ServerError):
        run(rt)
    run(rt)
    assert [b["sdrId"] for _, b in fake.assigns()] == ["sdr_1", "sdr_1"]
    run(rt, reply("rpl_2"))
    assert fake.assigns()[-1][1]["sdrId"] == "sdr_2"


def test_nobody_eligible_holds_the_reply_in_redis(rt, fake) -> None:
    fake.sdrs = [{"id": "sdr_1", "gmailConnected": False}]
    outcome, logs = run(rt)
    assert outcome == "held"
    assert fake.assigns() == []
    [event] = [e for e in logs if e["event"] == "reply.no_eligible_sdr"]
    assert event["excluded"] == {"sdr_1": "not_connected"}
    assert "rpl_1" in rt.holds.list()
    assert rt.delayed.count() == 1


def test_a_held_reply_is_released_from_the_held_list_once_assigned(rt, fake) -> None:
    fake.sdrs = [{"id": "sdr_1", "gmailConnected": False}]
    run(rt)
    fake.sdrs = [{"id": "sdr_1", "gmailConnected": True}]
    rt.rotation.invalidate()
    assert run(rt)[0] == "assigned"
    assert rt.holds.list() == {}


def test_an_sdr_that_lost_gmail_since_the_cache_is_replaced_by_another(rt, fake) -> None:
    run(rt, reply("rpl_0"))  # warms the cache: sdr_1, sdr_2, sdr_3 connected
    fake.sdrs = [
        {"id": "sdr_1", "gmailConnected": True},
        {"id": "sdr_2", "gmailConnected": False},
        {"id": "sdr_3", "gmailConnected": True},
    ]
    fake.assign_script.append(httpx.Response(422, json={"error": {"code": "gmail_not_connected"}}))
    outcome, logs = run(rt)
    assert outcome == "assigned"
    assert [b["sdrId"] for _, b in fake.assigns()] == ["sdr_1", "sdr_2", "sdr_3"]
    assert any(e["event"] == "reply.sdr_unavailable" for e in logs)


def test_a_404_for_a_reply_that_is_gone_is_permanent(rt, fake) -> None:
    fake.assign_script.append(httpx.Response(404, json={"error": {"code": "reply_not_found"}}))
    with pytest.raises(errors.NotFound):
        run(rt)
