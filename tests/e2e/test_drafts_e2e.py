"""Drafts on due follow-ups and their one-click send, end to end: the Procfile's web, worker and
beat against the sandbox, a local listener as the follow-up webhook.

14 due follow-ups on live threads, each notified with a draft and its signed `sendUrl`:

* 10 links fetched with GET (nothing sent), then POSTed twice at once: one send each, the other
  click told "already sent", each follow-up completed once;
* a thread the prospect answered after the draft: stale, nothing sent;
* a send the guardrails refuse (422): the issues shown, the follow-up still pending;
* a send that times out after Leadterra performed it: outcome unknown, a second click sends
  nothing more;
* a Slack action with an invalid signature (refused, nothing sent), then a valid one (sent once).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.support.listener import Listener
from worker.deadline import wait_until
from worker.leadterra.models import iso_ms
from worker.oneclick.slack_auth import sign_slack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SDRS = ("sdr_1", "sdr_2")
KEYS = {sdr: f"sk_test_workspace_{sdr}" for sdr in SDRS}
HOOK_SECRET = "whsec_drafts_e2e_5b2d9e"
ACTION_SECRET = "action-secret-drafts-e2e-0123456789abcdef"
SLACK_SECRET = "slack-signing-drafts-e2e-fedcba9876543210"
ADMIN = "UADMIN0001"
NORMAL = 10
STALE, BLOCKED, TIMEOUT, SLACK = "fu_stale", "fu_blocked", "fu_timeout", "fu_slack"
SEND = "POST /v1/sdr/drafts/{id}/send"
COMPLETE = "POST /v1/sdr/followups/{id}/complete"
GENERATE = "POST /v1/sdr/drafts/generate"


def seed(control: Any) -> list[str]:
    """One live thread and one due follow-up per id, alternating SDRs: the follow-up ids."""
    now = datetime.fromisoformat(control.clock()["now"].replace("Z", "+00:00"))
    ids = [f"fu_{n:02d}" for n in range(NORMAL)] + [STALE, BLOCKED, TIMEOUT, SLACK]
    threads, followups = [], []
    for n, followup_id in enumerate(ids):
        thread_id = f"thr_{followup_id}"
        threads.append(
            {
                "id": thread_id,
                "sdrId": SDRS[n % len(SDRS)],
                "status": "awaiting_reply",
                "contactEmail": f"lead{n}@acme.io",
                "contactName": f"Lead {n}",
                "subject": f"Re: proposal {n}",
                "lastMessageAt": iso_ms(now - timedelta(days=3)),
            }
        )
        due = iso_ms(now - timedelta(minutes=10 + n))
        followups.append({"id": followup_id, "threadId": thread_id, "dueAt": due})
    control.seed_threads(threads)
    control.seed_followups(followups)
    return ids


def drafts_by_followup(found: Listener) -> dict[str, dict[str, Any]]:
    """The `draft` each follow-up's webhook carried (the last one, when delivered twice)."""
    return {d.followup_id: d.payload["draft"] for d in found.received() if d.payload.get("draft")}


def sends(control: Any, draft_id: str) -> int:
    return len(control.draft_sends(draft_id))


def completions(control: Any, followup_id: str) -> int:
    calls = control.calls(endpoint=COMPLETE)
    return sum(1 for c in calls if followup_id in c["path"] and 200 <= c["status"] < 300)


def pending(api_url: str, sdr: str, followup_id: str) -> bool:
    answer = httpx.get(
        f"{api_url}/v1/sdr/followups/due",
        params={"limit": 200, "includeUpcoming": "true"},
        headers={"Authorization": f"Bearer {KEYS[sdr]}"},
    )
    answer.raise_for_status()
    return any(f["id"] == followup_id and f["status"] == "pending" for f in answer.json()["data"])


def slack_post(base: str, url: str, user: str, secret: str) -> httpx.Response:
    """A Send button click as Slack posts it: form-encoded `payload`, signed with `secret`."""
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": "leadrouter_send", "value": urlsplit(url).query}],
        "response_url": "https://hooks.slack.com/actions/T0/1/e2e",
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign_slack(secret, body=body, timestamp=stamp),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return httpx.post(f"{base}/slack/actions", content=body, headers=headers)


def start(service_factory: Any, found: Listener) -> Any:
    service = service_factory(
        sdrs=len(SDRS),
        disconnected=0,
        processes=(),
        LEADTERRA_SDR_API_KEYS=json.dumps(KEYS),
        FOLLOWUP_WEBHOOK_URL=found.url,
        FOLLOWUP_WEBHOOK_SECRET=HOOK_SECRET,
        FOLLOWUP_POLL_SECONDS="1",
        FOLLOWUP_DRAFTS="true",
        ACTION_SECRET=ACTION_SECRET,
        SLACK_SIGNING_SECRET=SLACK_SECRET,
        SLACK_ADMIN_USER_IDS=ADMIN,
        # a send that hangs is cut after 2 s: the timeout case below
        LEADTERRA_TIMEOUT_READ="2",
    )
    for name in ("web", "worker", "beat"):
        service.start(name, PUBLIC_BASE_URL=service.base_url)
    return service


def test_drafts_are_sent_once_by_link_and_slack_never_stale_blocked_or_twice(
    service_factory, listener: Listener
) -> None:
    service = start(service_factory, listener)
    control = service.control
    ids = seed(control)
    wait_until(lambda: len(drafts_by_followup(listener)) >= len(ids), 90, 0.2, what="14 drafts")
    drafts = drafts_by_followup(listener)
    assert set(drafts) == set(ids)
    assert len(control.calls(endpoint=GENERATE)) == len(ids)  # one generate per follow-up
    for draft in drafts.values():
        assert draft["sendUrl"].startswith(f"{service.base_url}/actions/send?")
        assert draft["bodyText"] and draft["subject"]

    # GET shows the draft and changes nothing
    for followup_id in ids[:NORMAL]:
        page = httpx.get(drafts[followup_id]["sendUrl"])
        assert page.status_code == 200, page.text
        assert "<form" in page.text and "Send" in page.text
    assert control.draft_sends() == []

    # two clicks at once: one send, one "already sent"
    with ThreadPoolExecutor(8) as pool:
        futures = {
            fid: [pool.submit(httpx.post, drafts[fid]["sendUrl"], timeout=30.0) for _ in "ab"]
            for fid in ids[:NORMAL]
        }
        answers = {fid: [f.result() for f in pair] for fid, pair in futures.items()}
    for fid, pair in answers.items():
        codes = sorted(a.status_code for a in pair)
        assert codes == [200, 409], (fid, [a.text[:300] for a in pair])
        second = next(a for a in pair if a.status_code == 409)
        assert "sent already" in second.text, second.text[-400:]
        assert sends(control, drafts[fid]["id"]) == 1
    wait_until(
        lambda: all(completions(control, fid) >= 1 for fid in ids[:NORMAL]),
        60,
        0.25,
        what="every sent follow-up completed",
    )

    # the prospect wrote after the draft: stale, nothing sent
    control.prospect_replies(f"thr_{STALE}")
    stale = httpx.post(drafts[STALE]["sendUrl"], timeout=30)
    assert stale.status_code == 409 and "no longer be sent" in stale.text, stale.text[:500]
    assert sends(control, drafts[STALE]["id"]) == 0

    # the guardrails refuse: the issues are shown, the follow-up stays pending
    blocked_id = drafts[BLOCKED]["id"]
    control.block_sends(None, draft_ids=[blocked_id], issues=["Too pushy for a first nudge"])
    blocked = httpx.post(drafts[BLOCKED]["sendUrl"], timeout=30)
    assert blocked.status_code == 422 and "Too pushy for a first nudge" in blocked.text
    assert sends(control, blocked_id) == 0
    blocked_sdr = control.drafts(thread_id=f"thr_{BLOCKED}")[0]["sdrId"]
    assert pending(control.api_url, blocked_sdr, BLOCKED)

    # Leadterra sends, then answers too late: unknown, and never sent twice
    control.set_fault(SEND, latency_ms=6000, phase="after")
    unknown = httpx.post(drafts[TIMEOUT]["sendUrl"], timeout=60)
    control.clear_faults(SEND)
    assert unknown.status_code == 502 and "Check the thread" in unknown.text, unknown.text[:500]
    check = httpx.get(drafts[TIMEOUT]["sendUrl"].replace("/actions/send?", "/actions/check?"))
    assert check.status_code == 200 and "awaiting_reply" in check.text, check.text[:500]
    again = httpx.post(drafts[TIMEOUT]["sendUrl"], timeout=30)
    assert again.status_code != 200
    assert sends(control, drafts[TIMEOUT]["id"]) == 1  # the one Leadterra performed

    # Slack: a forged signature does nothing; a signed click by an admin sends once
    forged = slack_post(service.base_url, drafts[SLACK]["sendUrl"], ADMIN, "not-the-secret-xyz")
    assert forged.status_code == 401
    signed = slack_post(service.base_url, drafts[SLACK]["sendUrl"], ADMIN, SLACK_SECRET)
    assert signed.status_code == 200
    wait_until(lambda: sends(control, drafts[SLACK]["id"]) == 1, 30, 0.2, what="the Slack send")
    wait_until(lambda: completions(control, SLACK) >= 1, 60, 0.25, what="its completion")

    # afterwards: one send per sent draft, each follow-up completed once, nothing dead-lettered
    events = service.events()
    names = [e.get("event") for e in events]
    assert names.count("draft.sent") == NORMAL + 1
    assert names.count("draft.stale") == 1 and names.count("draft.blocked") == 1
    assert names.count("draft.unknown_outcome") == 1
    for fid in [*ids[:NORMAL], SLACK]:
        assert completions(control, fid) == 1, fid
    assert not service.redis().hlen(service.keys.dlq)
