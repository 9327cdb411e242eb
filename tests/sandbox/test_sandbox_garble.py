"""The sandbox's garbled answers over real HTTP, as the project's client meets them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from leadterra_sandbox.client import ControlError
from leadterra_sandbox.process import SandboxProcess
from worker import errors
from worker.deadline import wait_until
from worker.leadterra.client import LeadterraClient

pytestmark = pytest.mark.integration

ASSIGN = "POST /v1/replies/{id}/assign"
MAPPED = {
    "encoding": (errors.ServerError, "does not decode as its Content-Encoding (gzip)"),
    "not_json": (errors.ServerError, "not JSON"),
    "deep": (errors.ServerError, "not JSON"),
    "shape": (errors.UnexpectedAnswer, "without handoffId"),
    "chunks": (errors.TransportFailure, "RemoteProtocolError"),
    "truncated": (errors.TransportFailure, "RemoteProtocolError"),
    "drip": (errors.TransportFailure, "no whole answer within its deadline (1 s)"),
}


@pytest.fixture
def client(sandbox: SandboxProcess) -> Iterator[LeadterraClient]:
    leadterra = LeadterraClient(
        sandbox.api_url, SecretStr("sk_test_workspace"), timeout=httpx.Timeout(1.0), call_seconds=1
    )
    yield leadterra
    leadterra.close()


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("kind", sorted(MAPPED))
def test_each_garbled_answer_maps_onto_the_error_tree_and_the_next_call_is_clean(
    sandbox: SandboxProcess, client: LeadterraClient, kind: str, phase: str
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    sandbox.control.garble_next(ASSIGN, 1, kind, phase=phase, drip_ms=100)
    error, text = MAPPED[kind]
    with pytest.raises(error) as caught:
        client.assign_reply("rpl_1", "sdr_1")
    assert text in str(caught.value)
    again = client.assign_reply("rpl_1", "sdr_1")  # the fault was one-shot
    assert again.already_assigned is (phase == "after")  # "after": it took effect, then garbled
    assert len(sandbox.control.handoffs("rpl_1")) == 1
    garbled = wait_until(  # a drip is recorded once the client has hung up on it
        lambda: [c for c in sandbox.control.calls(endpoint=ASSIGN) if c["fault"] == "garble"],
        10,
        what="the garbled call in the call log",
    )
    assert [c["status"] for c in garbled] == [200]


def test_a_garbled_list_is_an_unexpected_answer(
    sandbox: SandboxProcess, client: LeadterraClient
) -> None:
    sandbox.control.garble_next("GET /v1/sdrs", 1, "shape")
    with pytest.raises(errors.UnexpectedAnswer, match="id: Field required"):
        client.list_sdrs()
    assert len(client.list_sdrs()) == 6


def test_a_drip_sends_the_whole_answer_to_a_patient_client(sandbox: SandboxProcess) -> None:
    sandbox.control.garble_next("GET /v1/sdrs", 1, "drip", phase="after", drip_ms=1)
    started = time.monotonic()
    answer = httpx.get(
        f"{sandbox.api_url}/v1/sdrs", headers={"Authorization": "Bearer sk_test_workspace"}
    )
    assert answer.json()["data"][0]["id"] == "sdr_1"
    assert time.monotonic() - started >= 0.001 * len(answer.content)


@pytest.mark.parametrize(
    "fault", [{"garble": "sideways"}, {"garble": "drip", "drop": True}, {"garble": 3}]
)
def test_the_control_api_refuses_a_garble_it_does_not_know(
    sandbox: SandboxProcess, fault: dict[str, object]
) -> None:
    with pytest.raises(ControlError) as caught:
        sandbox.control._call("POST", "/faults/next", {"endpoint": ASSIGN, **fault})
    assert caught.value.status == 400
