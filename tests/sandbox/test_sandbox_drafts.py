"""AI drafts over HTTP: generate on the SDR's own thread, send once, the guardrail 422, slow and
failing sends through the fault rules, and the prospect answering a thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from leadterra_sandbox.process import SandboxProcess
from tests.sandbox.conftest import sdr_key

pytestmark = pytest.mark.integration

MakeApi = Callable[..., httpx.Client]
SEND = "POST /v1/sdr/drafts/{id}/send"
MOMENT = datetime(2026, 6, 29, 14, 0, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _thread(sandbox: SandboxProcess, api: MakeApi, sdr_id: str = "sdr_1") -> str:
    reply_id = f"rpl_{sdr_id}"
    sandbox.control.seed_replies([{"id": reply_id, "name": "Jane Doe"}])
    body = {"sdrId": sdr_id, "category": "A", "skipIcpCheck": True}
    response = api().post(f"/v1/replies/{reply_id}/assign", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["threadId"])


def _generate(api: MakeApi, thread_id: str, sdr_id: str = "sdr_1", **extra: Any) -> Any:
    response = api(sdr_key(sdr_id)).post(
        "/v1/sdr/drafts/generate", json={"threadId": thread_id, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _draft_id(api: MakeApi, thread_id: str, sdr_id: str = "sdr_1") -> str:
    return str(_generate(api, thread_id, sdr_id)["drafts"][0]["id"])


def _send(api: MakeApi, draft_id: str, sdr_id: str = "sdr_1", **kwargs: Any) -> httpx.Response:
    return api(sdr_key(sdr_id), **kwargs).post(f"/v1/sdr/drafts/{draft_id}/send", json={})


def test_generate_answers_the_documented_shape_and_records_each_draft(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    thread_id = _thread(sandbox, api)
    sandbox.control.set_now(MOMENT)
    data = _generate(api, thread_id, variantCount=3, instructions="keep it short")
    assert set(data) == {"drafts", "insights", "appliedRules"}
    assert len(data["drafts"]) == 3 and data["appliedRules"] == []
    for draft, insight in zip(data["drafts"], data["insights"], strict=True):
        assert set(draft) == {"id", "bodyText", "bodyHtml", "subject"}
        assert draft["subject"] == "Re: Quick question"  # the thread's subject, one "Re:"
        assert "Jane" in draft["bodyText"] and draft["bodyHtml"].startswith("<p>")
        assert insight["draftId"] == draft["id"] and 0 < insight["confidence"] <= 1
    recorded = sandbox.control.drafts(thread_id=thread_id)
    assert [d["id"] for d in recorded] == [d["id"] for d in data["drafts"]]
    first = recorded[0]
    assert (first["threadId"], first["sdrId"], first["instructions"]) == (
        thread_id,
        "sdr_1",
        "keep it short",
    )
    assert _at(first["createdAt"]) >= MOMENT and first["sentAt"] is None
    assert sandbox.control.drafts(sdr_id="sdr_2") == []


def test_generate_defaults_to_one_variant(sandbox: SandboxProcess, api: MakeApi) -> None:
    data = _generate(api, _thread(sandbox, api))
    assert len(data["drafts"]) == 1 and len(data["insights"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "threadId"), ({"threadId": "x", "variantCount": 4}, "variantCount")],
)
def test_a_bad_generate_body_is_a_422(
    sandbox: SandboxProcess, api: MakeApi, body: dict[str, Any], field: str
) -> None:
    response = api(sdr_key("sdr_1")).post("/v1/sdr/drafts/generate", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_generate_on_another_sdrs_or_an_unknown_thread_is_404(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    thread_id = _thread(sandbox, api, "sdr_1")
    for sdr_id, target in (("sdr_2", thread_id), ("sdr_1", "thr_nope")):
        response = api(sdr_key(sdr_id)).post("/v1/sdr/drafts/generate", json={"threadId": target})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "thread_not_found"
    workspace = api().post("/v1/sdr/drafts/generate", json={"threadId": thread_id})
    assert workspace.status_code == 403
    assert sandbox.control.drafts() == []


def test_send_records_it_and_moves_the_thread_as_a_sent_follow_up(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    thread_id = _thread(sandbox, api)
    draft_id = _draft_id(api, thread_id)
    sandbox.control.set_now(MOMENT)
    response = _send(api, draft_id)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["messageId"] and data["guardrails"]["blocked"] is False
    assert data["guardrails"]["issues"] == [] and 0 < data["guardrails"]["scores"]["overall"] <= 1
    (sent,) = sandbox.control.draft_sends(draft_id)
    assert (sent["threadId"], sent["sdrId"], sent["messageId"]) == (
        thread_id,
        "sdr_1",
        data["messageId"],
    )
    (thread,) = sandbox.control.threads(sdr_id="sdr_1")
    assert thread["status"] == "awaiting_reply"
    assert thread["lastMessageAt"] == sent["at"] and _at(sent["at"]) >= MOMENT
    assert sandbox.control.drafts()[0]["sentAt"] == sent["at"]


def test_a_second_send_is_409_already_sent_and_sends_nothing(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    first = _send(api, draft_id)
    second = _send(api, draft_id)
    assert (first.status_code, second.status_code) == (200, 409)
    assert second.json()["error"]["code"] == "already_sent"
    assert second.json()["messageId"] == first.json()["data"]["messageId"]
    assert len(sandbox.control.draft_sends(draft_id)) == 1


def test_concurrent_sends_of_one_draft_send_once(sandbox: SandboxProcess, api: MakeApi) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    clients = [api(sdr_key("sdr_1")) for _ in range(8)]
    with ThreadPoolExecutor(len(clients)) as pool:
        url = f"/v1/sdr/drafts/{draft_id}/send"
        statuses = sorted(pool.map(lambda c: c.post(url, json={}).status_code, clients))
    assert statuses == [200] + [409] * 7
    assert len(sandbox.control.draft_sends(draft_id)) == 1


def test_send_of_an_unknown_or_another_sdrs_draft_is_404(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    for sdr_id, target in (("sdr_2", draft_id), ("sdr_1", "drf_nope")):
        response = _send(api, target, sdr_id)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "draft_not_found"
    assert sandbox.control.draft_sends() == []


def test_the_guardrails_block_the_next_n_sends_with_their_issues(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    issues = [{"type": "spammy_link", "message": "a tracking link"}]
    assert sandbox.control.block_sends(2, issues=issues)["next"] == 2
    for _ in range(2):
        blocked = _send(api, draft_id)
        assert blocked.status_code == 422
        body = blocked.json()
        assert body["error"]["code"] == "guardrail_blocked"
        assert body["guardrails"]["blocked"] is True and body["guardrails"]["issues"] == issues
        assert body["guardrails"]["scores"]["overall"] < 0.5
    assert sandbox.control.draft_sends(draft_id) == []
    assert sandbox.control.guardrails()["next"] == 0
    assert _send(api, draft_id).status_code == 200
    assert sandbox.control.drafts()[0]["blockedCount"] == 2
    assert sandbox.control.threads(sdr_id="sdr_1")[0]["status"] == "awaiting_reply"


def test_the_guardrails_block_a_named_draft_until_cleared(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    thread_id = _thread(sandbox, api)
    blocked_id, other_id = _draft_id(api, thread_id), _draft_id(api, thread_id)
    sandbox.control.block_sends(0, draft_ids=[blocked_id])
    assert [_send(api, blocked_id).status_code for _ in range(3)] == [422] * 3
    assert _send(api, other_id).status_code == 200
    (thread,) = sandbox.control.threads(sdr_id="sdr_1")
    sandbox.control.clear_guardrails()
    assert sandbox.control.guardrails()["draftIds"] == []
    assert _send(api, blocked_id).status_code == 200
    assert [s["draftId"] for s in sandbox.control.draft_sends(thread_id=thread_id)] == [
        other_id,
        blocked_id,
    ]
    assert thread["status"] == "awaiting_reply"


def test_a_slow_send_answers_late(sandbox: SandboxProcess, api: MakeApi) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    sandbox.control.set_fault(SEND, latency_ms=300)
    response = _send(api, draft_id)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.3
    assert len(sandbox.control.draft_sends(draft_id)) == 1


def test_a_send_performed_then_answered_too_late_has_an_unknown_outcome(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    sandbox.control.set_fault(SEND, latency_ms=5000, phase="after")
    with pytest.raises(httpx.ReadTimeout):
        _send(api, draft_id, timeout=0.5)
    assert len(sandbox.control.draft_sends(draft_id)) == 1  # performed before the delay
    sandbox.control.clear_faults(SEND)
    assert _send(api, draft_id).status_code == 409


@pytest.mark.parametrize(("phase", "performed"), [("before", 0), ("after", 1)])
def test_a_failing_send_is_performed_only_in_phase_after(
    sandbox: SandboxProcess, api: MakeApi, phase: str, performed: int
) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    sandbox.control.fail_next(SEND, status=503, phase=phase)
    assert _send(api, draft_id).status_code == 503
    assert len(sandbox.control.draft_sends(draft_id)) == performed
    assert _send(api, draft_id).status_code == (409 if performed else 200)
    assert len(sandbox.control.draft_sends(draft_id)) == 1


def test_the_prospect_answers_a_thread_after_the_draft(
    sandbox: SandboxProcess, api: MakeApi
) -> None:
    thread_id = _thread(sandbox, api)
    draft_id = _draft_id(api, thread_id)
    assert _send(api, draft_id).status_code == 200
    sent_at = sandbox.control.draft_sends(draft_id)[0]["at"]
    thread = sandbox.control.prospect_replies(thread_id)
    assert thread["status"] == "replied" and _at(thread["lastMessageAt"]) > _at(sent_at)
    inbox = api(sdr_key("sdr_1")).get("/v1/sdr/inbox", params={"status": "replied"})
    assert [t["id"] for t in inbox.json()["data"]["threads"]] == [thread_id]
    later = sandbox.control.prospect_replies(thread_id, status="needs_followup", at=MOMENT)
    assert (later["status"], _at(later["lastMessageAt"])) == ("needs_followup", MOMENT)


def test_reset_forgets_drafts_sends_and_guardrails(sandbox: SandboxProcess, api: MakeApi) -> None:
    draft_id = _draft_id(api, _thread(sandbox, api))
    _send(api, draft_id)
    sandbox.control.block_sends(3)
    sandbox.control.reset()
    assert sandbox.control.drafts() == [] and sandbox.control.draft_sends() == []
    assert sandbox.control.guardrails()["next"] == 0
