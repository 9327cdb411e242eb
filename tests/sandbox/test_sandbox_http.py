"""The sandbox as a real process, over HTTP: the project's client, outages, the control API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr

from leadterra_sandbox.client import ControlError
from leadterra_sandbox.process import SandboxProcess
from worker import errors
from worker.deadline import wait_until
from worker.leadterra.client import LeadterraClient

pytestmark = pytest.mark.integration

WORKSPACE_KEY = "sk_test_workspace"
MakeApi = Callable[..., httpx.Client]


def sdr_key(sdr_id: str) -> SecretStr:
    return SecretStr(f"{WORKSPACE_KEY}_{sdr_id}")


@pytest.fixture
def client(sandbox: SandboxProcess) -> Iterator[LeadterraClient]:
    leadterra = LeadterraClient(
        sandbox.api_url, SecretStr(WORKSPACE_KEY), timeout=httpx.Timeout(5.0)
    )
    yield leadterra
    leadterra.close()


def test_the_projects_client_assigns_once_and_reads_the_sdrs_followups(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1", "email": "ann.lee@acme.com"}])
    assert [s.id for s in client.list_sdrs() if s.gmail_connected] == [
        f"sdr_{n}" for n in range(1, 6)
    ]
    first = client.assign_reply("rpl_1", "sdr_2")
    again = client.assign_reply("rpl_1", "sdr_2")
    assert first.already_assigned is False and first.result and first.result.thread_id
    assert again.already_assigned is True
    sdr = client.with_key(sdr_key("sdr_2"))
    [followup] = sdr.due_followups(include_upcoming=True)
    assert followup.thread_id == first.result.thread_id and followup.status == "pending"
    assert [t.contact_email for t in sdr.inbox_all()] == ["ann.lee@acme.com"]
    sdr.complete_followup(followup.id)
    with pytest.raises(errors.Conflict):
        sdr.complete_followup(followup.id)
    assert sdr.gmail_status().health_state == "active"
    assert len(sandbox.control.handoffs("rpl_1")) == 1


def test_force_forward_over_http_records_a_second_handoff(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    client.assign_reply("rpl_1", "sdr_1")
    outcome = client.assign_reply("rpl_1", "sdr_3", force_forward=True)
    handoffs = sandbox.control.handoffs("rpl_1")
    assert outcome.already_assigned is False
    assert [(h["sdrId"], h["forced"]) for h in handoffs] == [("sdr_1", False), ("sdr_3", True)]


def test_the_client_sees_icp_rejections_missing_gmail_and_wrong_keys(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_icp", "icpPass": False}, {"id": "rpl_2"}])
    with pytest.raises(errors.IcpRejected):
        client.assign_reply(
            "rpl_icp", "sdr_1", skip_icp_check=False, seniority="VP", employee_count="500"
        )
    with pytest.raises(errors.InvalidRequest) as caught:
        client.assign_reply("rpl_2", "sdr_6")
    assert caught.value.code == "gmail_not_connected"
    with pytest.raises(errors.AuthError):
        client.due_followups()
    with pytest.raises(errors.AuthError):
        client.with_key(SecretStr("sk_test_unknown")).list_sdrs()


def test_a_rate_limited_call_reaches_the_client_with_its_retry_after(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.fail_next("GET /v1/sdrs", 1, 429, retry_after=2)
    with pytest.raises(errors.RateLimited) as caught:
        client.list_sdrs()
    assert caught.value.retry_after == 2.0
    assert len(client.list_sdrs()) == 6


def test_latency_injected_over_http_is_measured_by_the_caller(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    sandbox.control.set_fault("GET /v1/sdrs", latency_ms=200, jitter_ms=50)
    started = time.perf_counter()
    assert api().get("/v1/sdrs").status_code == 200
    assert 0.2 <= time.perf_counter() - started < 1.5


def test_a_dropped_connection_is_a_transport_error_for_the_client(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.drop_next("GET /v1/sdrs")
    with pytest.raises(errors.TransportFailure):
        client.list_sdrs()
    assert len(client.list_sdrs()) == 6
    [dropped, answered] = sandbox.control.calls(endpoint="GET /v1/sdrs")
    assert (dropped["status"], dropped["fault"], answered["status"]) == (0, "drop", 200)


def test_refuse_outage_refuses_connections_and_recovers_with_state_kept(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    http = api()
    assert (
        http.post(
            "/v1/replies/rpl_1/assign", json={"sdrId": "sdr_1", "skipIcpCheck": True}
        ).status_code
        == 200
    )
    sandbox.control.refuse()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sandbox.api_url}/v1/sdrs", timeout=2)
    with pytest.raises(httpx.TransportError):
        http.get("/v1/sdrs")  # the kept-alive connection was closed too
    assert sandbox.control.health()["outage"]["mode"] == "refuse"
    sandbox.control.end_outage()
    assert http.get("/v1/sdrs").status_code == 200
    assert len(sandbox.control.handoffs("rpl_1")) == 1


def test_a_timed_refuse_outage_ends_by_itself(sandbox: SandboxProcess, api: MakeApi) -> None:
    sandbox.control.refuse(seconds=0.4)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sandbox.api_url}/v1/sdrs", timeout=2)

    def answered() -> bool:
        try:
            return bool(api().get("/v1/sdrs").status_code == 200)
        except httpx.TransportError:
            return False

    wait_until(answered, timeout=5)


def test_error_outage_answers_503_until_cleared(sandbox: SandboxProcess, api: MakeApi) -> None:
    sandbox.control.error_outage()
    http = api()
    assert http.get("/v1/sdrs").status_code == 503
    assert http.get("/v1/sdr/inbox").status_code == 503
    sandbox.control.end_outage()
    assert http.get("/v1/sdrs").status_code == 200


def test_calls_read_back_since_a_sequence_number_and_by_endpoint(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    http = api()
    http.get("/v1/sdrs")
    mark = sandbox.control.last_seq()
    http.get("/v1/replies")
    api(None).get("/v1/sdrs")
    newer = sandbox.control.calls(since=mark)
    assert [(c["endpoint"], c["status"], c["key"]) for c in newer] == [
        ("GET /v1/replies", 200, "workspace"),
        ("GET /v1/sdrs", 401, None),
    ]
    assert len(sandbox.control.calls(endpoint="GET /v1/sdrs")) == 2
    assert sandbox.control.summary()["calls"]["byEndpoint"]["GET /v1/sdrs"] == {"200": 1, "401": 1}


def test_advancing_the_clock_makes_the_assign_followup_due(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    client.assign_reply("rpl_1", "sdr_4")
    sdr = client.with_key(sdr_key("sdr_4"))
    assert sdr.due_followups() == []
    sandbox.control.advance_clock(172800 + 1)
    assert len(sdr.due_followups()) == 1
    assert sandbox.control.clock()["offsetSeconds"] == pytest.approx(172801)


def test_gmail_status_follows_a_patched_health_state(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.patch_sdr("sdr_1", healthState="needs_reauth", lastSyncError="token expired")
    status = client.with_key(sdr_key("sdr_1")).gmail_status()
    assert (status.health_state, status.last_sync_error) == ("needs_reauth", "token expired")


def test_webhook_registration_accepts_https_and_rejects_http_when_not_allowed(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    webhook = client.create_webhook("https://router.example.com/hooks", ["reply.received"])
    assert webhook.id.startswith("wh_") and webhook.status == "active"
    sandbox.control.settings(allow_http_webhooks=False)
    with pytest.raises(errors.InvalidRequest):
        client.create_webhook("http://router.example.com/hooks", ["reply.received"])


def test_seeded_sdrs_with_their_own_keys_replace_the_defaults(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    sandbox.control.seed_sdrs(
        [{"id": "alice", "apiKey": "sk_test_alice"}, {"id": "bob", "gmailConnected": False}]
    )
    body = api("sk_test_alice").get("/v1/sdr/gmail/status").json()
    assert body["data"]["connected"] is True
    assert api(f"{WORKSPACE_KEY}_sdr_1").get("/v1/sdrs").status_code == 401
    assert [s["id"] for s in api().get("/v1/sdrs").json()["data"]] == ["alice", "bob"]


def test_the_control_api_rejects_a_bad_seed_with_400(sandbox: SandboxProcess) -> None:
    with pytest.raises(ControlError) as caught:
        sandbox.control.seed_threads([{"sdrId": "sdr_nope"}])
    assert caught.value.status == 400
