"""Mailbox health (worker/routing/mailbox_health.py): each SDR's Gmail, checked with its own key."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.conftest import API_KEY, make_settings
from worker.errors import NoEligibleSdr
from worker.leadterra.client import LeadterraClient
from worker.leadterra.models import Sdr
from worker.routing.mailbox_health import check_mailboxes
from worker.routing.rotation import Policy
from worker.runtime import Runtime

SDR_KEYS = {"sdr_1": "sk_sdr_one_1111", "sdr_2": "sk_sdr_two_2222", "sdr_3": "sk_sdr_three_333"}
OWNERS = {key: sdr for sdr, key in SDR_KEYS.items()}
SDRS = [Sdr(id=sdr, gmail_connected=True) for sdr in SDR_KEYS]
FAILING = "503"


class FakeGmail:
    """GET /v1/sdr/gmail/status answered per SDR, told apart by the Authorization header.

    `states[sdr]` is a healthState, `disconnected` (sent as `connected: false`) or FAILING.
    """

    def __init__(self) -> None:
        self.states = dict.fromkeys(SDR_KEYS, "active")
        self.calls: list[str] = []
        self.barrier: threading.Barrier | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/sdr/gmail/status":
            return httpx.Response(404, json={"error": {"code": "not_found"}})
        sdr = OWNERS.get(request.headers["Authorization"].removeprefix("Bearer "))
        if sdr is None:
            return httpx.Response(401, json={"error": {"code": "unauthorized"}})
        self.calls.append(sdr)
        if self.barrier is not None:  # both checkers hold the answer before either records it
            self.barrier.wait(timeout=5)
        state = self.states[sdr]
        if state == FAILING:
            return httpx.Response(503, json={"error": {"code": "unavailable"}})
        body: dict[str, Any] = {"connected": state != "disconnected", "email": f"{sdr}@acme.test"}
        # a disconnected mailbox may still carry a stale healthState; `connected` wins
        body["healthState"] = "active" if state == "disconnected" else state
        return httpx.Response(200, json={"data": body})


@pytest.fixture
def gmail() -> FakeGmail:
    return FakeGmail()


def runtime(client: redis.Redis, gmail: FakeGmail, **settings: Any) -> Runtime:
    leadterra = LeadterraClient(
        "http://leadterra.test", SecretStr(API_KEY), transport=httpx.MockTransport(gmail.handler)
    )
    values: dict[str, Any] = {"leadterra_sdr_api_keys": SDR_KEYS, **settings}
    return Runtime(make_settings(**values), client=client, leadterra=leadterra)


@pytest.fixture
def rt(fake_redis, gmail: FakeGmail) -> Runtime:
    return runtime(fake_redis, gmail)


def recorded(rt: Runtime) -> dict[str, str]:
    return rt.rotation.mailbox_health()


def events(logs: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(e["event"], e["sdr_id"], e.get("state")) for e in logs]


# -- states recorded --------------------------------------------------------------------------


def test_each_sdr_is_checked_with_its_own_key_and_its_state_recorded(rt, gmail) -> None:
    gmail.states.update(sdr_2="needs_reauth", sdr_3="rate_limited")
    states = check_mailboxes(rt)
    expected = {"sdr_1": "active", "sdr_2": "needs_reauth", "sdr_3": "rate_limited"}
    assert states == expected
    assert recorded(rt) == expected
    assert sorted(gmail.calls) == ["sdr_1", "sdr_2", "sdr_3"]


def test_a_mailbox_not_connected_is_recorded_as_disconnected(rt, gmail) -> None:
    gmail.states["sdr_1"] = "disconnected"
    check_mailboxes(rt)
    assert recorded(rt)["sdr_1"] == "disconnected"


def test_the_health_hash_expires_after_three_check_intervals(fake_redis, gmail) -> None:
    rt = runtime(fake_redis, gmail, mailbox_health_seconds=20)
    check_mailboxes(rt)
    assert 0 < fake_redis.ttl(rt.keys.mailbox_health) <= 60


def test_only_sdrs_with_their_own_key_are_checked(fake_redis, gmail) -> None:
    rt = runtime(fake_redis, gmail, leadterra_sdr_api_keys={"sdr_2": SDR_KEYS["sdr_2"]})
    assert check_mailboxes(rt) == {"sdr_2": "active"}
    assert gmail.calls == ["sdr_2"]


def test_an_sdr_whose_key_was_removed_is_no_longer_held_by_its_old_state(fake_redis, gmail) -> None:
    """A state nobody checks any more must not keep the SDR out of the rotation for good."""
    gmail.states["sdr_3"] = "needs_reauth"
    check_mailboxes(runtime(fake_redis, gmail))
    keys = {"sdr_1": SDR_KEYS["sdr_1"], "sdr_2": SDR_KEYS["sdr_2"]}
    rt = runtime(fake_redis, gmail, leadterra_sdr_api_keys=keys)
    check_mailboxes(rt)
    assert recorded(rt) == {"sdr_1": "active", "sdr_2": "active"}


# -- each change logged once ----------------------------------------------------------------------


@pytest.mark.parametrize("state", ["needs_reauth", "rate_limited", "disconnected"])
def test_an_unhealthy_mailbox_is_logged_once_per_change(rt, gmail, state: str) -> None:
    check_mailboxes(rt)
    gmail.states["sdr_2"] = state
    with capture_logs() as first:
        check_mailboxes(rt)
    with capture_logs() as second:
        check_mailboxes(rt)
    assert len(first) == 1
    event = first[0]
    assert event["event"] == "sdr.mailbox_unhealthy"
    assert event["log_level"] == "warning"
    assert event["sdr_id"] == "sdr_2"
    assert event["state"] == state
    assert event["previous"] == "active"
    assert event["outcome"] == "ineligible"
    assert event["duration_ms"] >= 0
    assert second == []


def test_the_first_check_logs_only_unhealthy_mailboxes(rt, gmail) -> None:
    gmail.states["sdr_3"] = "needs_reauth"
    with capture_logs() as logs:
        check_mailboxes(rt)
    assert events(logs) == [("sdr.mailbox_unhealthy", "sdr_3", "needs_reauth")]
    assert logs[0]["previous"] is None


def test_moving_between_unhealthy_states_is_a_change(rt, gmail) -> None:
    gmail.states["sdr_1"] = "needs_reauth"
    check_mailboxes(rt)
    gmail.states["sdr_1"] = "rate_limited"
    with capture_logs() as logs:
        check_mailboxes(rt)
    assert events(logs) == [("sdr.mailbox_unhealthy", "sdr_1", "rate_limited")]
    assert logs[0]["previous"] == "needs_reauth"


def test_going_back_to_active_logs_a_recovery_once(rt, gmail) -> None:
    gmail.states["sdr_1"] = "needs_reauth"
    check_mailboxes(rt)
    gmail.states["sdr_1"] = "active"
    with capture_logs() as first:
        check_mailboxes(rt)
    with capture_logs() as second:
        check_mailboxes(rt)
    assert len(first) == 1
    assert first[0]["event"] == "sdr.mailbox_recovered"
    assert first[0]["log_level"] == "info"
    assert first[0]["sdr_id"] == "sdr_1"
    assert first[0]["previous"] == "needs_reauth"
    assert first[0]["outcome"] == "eligible"
    assert second == []
    assert recorded(rt)["sdr_1"] == "active"


def test_a_failing_status_call_is_logged_and_keeps_the_previous_state(rt, gmail) -> None:
    gmail.states["sdr_2"] = "needs_reauth"
    check_mailboxes(rt)
    gmail.states["sdr_2"] = FAILING
    with capture_logs() as logs:
        states = check_mailboxes(rt)
    assert events(logs) == [("sdr.mailbox_check_failed", "sdr_2", None)]
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["error_type"] == "ServerError"
    assert "sdr_2" not in states
    assert recorded(rt)["sdr_2"] == "needs_reauth"
    assert states == {"sdr_1": "active", "sdr_3": "active"}


def test_a_failing_first_check_records_nothing(rt, gmail) -> None:
    gmail.states["sdr_1"] = FAILING
    check_mailboxes(rt)
    assert "sdr_1" not in recorded(rt)


@pytest.mark.parametrize("backend", ["fake_redis", "real_redis"])
def test_two_checkers_racing_log_each_change_once(request, gmail, backend: str) -> None:
    client = request.getfixturevalue(backend)
    first, second = runtime(client, gmail), runtime(client, gmail)
    check_mailboxes(first)
    gmail.states.update(sdr_1="needs_reauth", sdr_3="disconnected")
    gmail.barrier = threading.Barrier(2)
    results: list[dict[str, str]] = []
    with capture_logs() as logs:
        threads = [
            threading.Thread(target=lambda rt=rt: results.append(check_mailboxes(rt)))
            for rt in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(results) == 2
    assert sorted(events(logs)) == [
        ("sdr.mailbox_unhealthy", "sdr_1", "needs_reauth"),
        ("sdr.mailbox_unhealthy", "sdr_3", "disconnected"),
    ]


def test_two_checkers_one_after_the_other_log_each_change_once(fake_redis, gmail) -> None:
    first, second = runtime(fake_redis, gmail), runtime(fake_redis, gmail)
    check_mailboxes(first)
    gmail.states["sdr_2"] = "rate_limited"
    with capture_logs() as logs:
        check_mailboxes(first)
        check_mailboxes(second)
    assert events(logs) == [("sdr.mailbox_unhealthy", "sdr_2", "rate_limited")]


# -- the rotation reads the hash -------------------------------------------------------------


def pick(rt: Runtime, reply_id: str, use_health: bool = True):
    return rt.rotation.pick(reply_id, Policy(use_health=use_health), lambda: SDRS)


def test_the_rotation_skips_an_unhealthy_mailbox_until_it_is_active_again(rt, gmail) -> None:
    gmail.states["sdr_2"] = "needs_reauth"
    check_mailboxes(rt)
    picks = [pick(rt, f"rpl_{i}") for i in range(6)]
    assert {p.sdr_id for p in picks} == {"sdr_1", "sdr_3"}
    assert all(p.excluded == {"sdr_2": "mailbox:needs_reauth"} for p in picks)
    gmail.states["sdr_2"] = "active"
    check_mailboxes(rt)
    again = [pick(rt, f"rpl_again_{i}") for i in range(6)]
    assert {p.sdr_id for p in again} == {"sdr_1", "sdr_2", "sdr_3"}
    assert all(p.excluded == {} for p in again)


def test_nobody_is_eligible_when_every_mailbox_is_unhealthy(rt, gmail) -> None:
    gmail.states.update(sdr_1="needs_reauth", sdr_2="rate_limited", sdr_3="disconnected")
    check_mailboxes(rt)
    with pytest.raises(NoEligibleSdr) as none:
        pick(rt, "rpl_1")
    assert none.value.excluded == {
        "sdr_1": "mailbox:needs_reauth",
        "sdr_2": "mailbox:rate_limited",
        "sdr_3": "mailbox:disconnected",
    }


def test_without_use_health_the_hash_is_ignored(rt, gmail) -> None:
    gmail.states["sdr_2"] = "needs_reauth"
    check_mailboxes(rt)
    picks = [pick(rt, f"rpl_{i}", use_health=False) for i in range(3)]
    assert [p.sdr_id for p in picks] == ["sdr_1", "sdr_2", "sdr_3"]
    assert all(p.excluded == {} for p in picks)


def test_the_policy_turns_health_on_with_sdr_keys(rt, gmail) -> None:
    from datetime import UTC, datetime

    gmail.states["sdr_1"] = "needs_reauth"
    check_mailboxes(rt)
    policy = rt.policy.policy(datetime.now(UTC), None)
    assert policy.use_health is True
    chosen = rt.rotation.pick("rpl_1", policy, lambda: SDRS)
    assert chosen.excluded == {"sdr_1": "mailbox:needs_reauth"}
