"""Threads after a handoff, over HTTP: a status set as the SDR's action would set it shows in the
inbox, and a forced second forward opens a new thread for the new SDR beside the first one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from leadterra_sandbox.client import ControlError
from leadterra_sandbox.process import SandboxProcess
from leadterra_sandbox.records import THREAD_STATUSES
from tests.sandbox.conftest import sdr_key

pytestmark = pytest.mark.integration

MakeApi = Callable[..., httpx.Client]
SKIP = {"category": "A", "skipIcpCheck": True}


def _assign(api: MakeApi, reply_id: str, sdr_id: str, **extra: Any) -> str:
    response = api().post(f"/v1/replies/{reply_id}/assign", json={"sdrId": sdr_id, **SKIP, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["threadId"])


def _inbox(api: MakeApi, sdr_id: str, *statuses: str) -> dict[str, str]:
    """The SDR's inbox as thread id -> status, filtered by `statuses` when given."""
    response = api(sdr_key(sdr_id)).get("/v1/sdr/inbox", params={"status": list(statuses)})
    assert response.status_code == 200, response.text
    return {t["id"]: t["status"] for t in response.json()["data"]["threads"]}


def test_a_status_set_through_the_control_api_shows_in_the_sdrs_inbox(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    thread_id = _assign(api, "rpl_1", "sdr_1")
    assert _inbox(api, "sdr_1", "new") == {thread_id: "new"}
    thread = sandbox.control.set_thread_status(thread_id, "replied")
    assert (thread["id"], thread["status"], thread["sdrId"]) == (thread_id, "replied", "sdr_1")
    assert _inbox(api, "sdr_1", "new") == {}
    assert _inbox(api, "sdr_1", "replied") == {thread_id: "replied"}
    assert _inbox(api, "sdr_1") == {thread_id: "replied"}


def test_every_documented_status_can_be_set(sandbox: SandboxProcess, api: MakeApi) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    thread_id = _assign(api, "rpl_1", "sdr_1")
    for status in THREAD_STATUSES:
        assert sandbox.control.set_thread_status(thread_id, status)["status"] == status
        assert _inbox(api, "sdr_1", status) == {thread_id: status}


@pytest.mark.parametrize("first_status", ["new", "archived"])
def test_force_forward_opens_a_new_thread_for_the_new_sdr_and_keeps_the_first(
    sandbox: SandboxProcess, api: MakeApi, first_status: str
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    first = _assign(api, "rpl_1", "sdr_1")
    sandbox.control.set_thread_status(first, first_status)
    second = _assign(api, "rpl_1", "sdr_2", forceForward=True)
    assert second != first
    assert _inbox(api, "sdr_2", "new") == {second: "new"}
    assert _inbox(api, "sdr_1") == {first: first_status}
    threads = sandbox.control.threads(reply_id="rpl_1")
    assert [(t["id"], t["sdrId"], t["status"]) for t in threads] == [
        (first, "sdr_1", first_status),
        (second, "sdr_2", "new"),
    ]


def test_threads_filter_by_sdr_reply_and_status(sandbox: SandboxProcess, api: MakeApi) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}, {"id": "rpl_2"}])
    one = _assign(api, "rpl_1", "sdr_1")
    two = _assign(api, "rpl_2", "sdr_1")
    three = _assign(api, "rpl_2", "sdr_3", forceForward=True)
    sandbox.control.set_thread_status(two, "meeting_booked")

    def ids(**filters: Any) -> list[str]:
        return [t["id"] for t in sandbox.control.threads(**filters)]

    assert ids() == [one, two, three]
    assert ids(sdr_id="sdr_1") == [one, two]
    assert ids(reply_id="rpl_2") == [two, three]
    assert ids(status="new") == [one, three]
    assert ids(status=["meeting_booked", "won"]) == [two]
    assert ids(sdr_id="sdr_3", status="meeting_booked") == []
    assert [t["replyId"] for t in sandbox.control.threads()] == ["rpl_1", "rpl_2", "rpl_2"]


def test_an_unknown_thread_is_404(sandbox: SandboxProcess) -> None:
    with pytest.raises(ControlError) as caught:
        sandbox.control.set_thread_status("thr_missing", "replied")
    assert caught.value.status == 404
    assert caught.value.body["error"]["code"] == "thread_not_found"


@pytest.mark.parametrize("status", ["done", "", "NEW", None, 3, ["new"]])
def test_a_status_outside_the_documented_ones_is_422_and_changes_nothing(
    sandbox: SandboxProcess, api: MakeApi, status: Any
) -> None:
    sandbox.control.seed_replies([{"id": "rpl_1"}])
    thread_id = _assign(api, "rpl_1", "sdr_1")
    with pytest.raises(ControlError) as caught:
        sandbox.control.set_thread_status(thread_id, status)
    assert caught.value.status == 422
    assert caught.value.body["error"]["code"] == "invalid_request"
    assert _inbox(api, "sdr_1") == {thread_id: "new"}
