"""The one-click routes on the public app (TestClient, fakeredis, the fake Leadterra behind
httpx.MockTransport, Slack's response_url behind another): the confirmation page changes nothing,
the send is once, refusals change nothing, and Slack's buttons are verified, authorized and
answered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import fakeredis
import httpx
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from tests.test_drafts_send import (
    ACTION_SECRET,
    COMPLETE,
    SDR_KEYS,
    SEND,
    blocked_answer,
    events,
    followup,
    make_fake,
    make_record,
    queued,
    sent_answer,
    state,
    thread,
)
from worker.deadline import wait_until
from worker.drafts.record import DraftRecord, DraftStore
from worker.oneclick.links import sign_link
from worker.oneclick.slack_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_slack
from worker.oneclick.web_routes import OneClick
from worker.receiver.web import create_app
from worker.runtime import Runtime

SLACK_SECRET = "slack-signing-secret-0123456789"
SDR_USER, ADMIN, STRANGER = "U024BE7LH", "UADMIN01", "USTRANGER1"
RESPONSE_URL = "https://hooks.slack.com/actions/T1/2/secret-token"
SKIP = "/v1/sdr/followups/fu_1/skip"
RESCHEDULE = "/v1/sdr/followups/fu_1/reschedule"


def link(
    record: DraftRecord | None = None, *, secret: str = ACTION_SECRET, expires: int = 0
) -> str:
    """The send link's path and query, as the notification carries it."""
    record = record or make_record()
    url = sign_link(
        secret,
        draft_id=record.draft_id,
        followup_id=record.followup_id,
        sdr_id=record.sdr_id,
        expires_at=expires or int(time.time()) + 3600,
        base_url="https://leadrouter.example.test",
    )
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def query(path: str) -> str:
    return path.partition("?")[2]


@dataclass
class World:
    client: TestClient
    rt: Runtime
    fake: FakeLeadterra
    oneclick: OneClick
    slack: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> None:
        """Wait for the Slack work in flight (it runs on the app's loop)."""
        assert self.oneclick.slack is not None
        self.client.portal.call(self.oneclick.slack.drain)  # type: ignore[union-attr]

    def snapshot(self) -> dict[bytes, Any]:
        """Every key but the rate limiter's own bookkeeping, with its value."""
        found = {}
        for key in self.rt.redis.keys("*"):
            if b"ratelimit" not in key:
                found[key] = self.rt.redis.dump(key)
        return found


def build(fake_server: Any, tmp_path: Path, **overrides: Any) -> Iterator[World]:
    roster = tmp_path / "roster.toml"
    roster.write_text(f'[sdr.sdr_1]\nslack_user_id = "{SDR_USER}"\n')
    values = {
        "leadterra_sdr_api_keys": SDR_KEYS,
        "action_secret": ACTION_SECRET,
        "slack_signing_secret": SLACK_SECRET,
        "slack_admin_user_ids": ADMIN,
        "roster_file": str(roster),
        **overrides,
    }
    settings = make_settings(**values)
    fake = make_fake()
    rt = Runtime(settings, client=fakeredis.FakeRedis(server=fake_server), leadterra=fake.client())
    DraftStore(rt.redis, rt.keys).save(make_record())
    posted: list[dict[str, Any]] = []

    def slack(request: httpx.Request) -> httpx.Response:
        posted.append({"url": str(request.url), "body": json.loads(request.content)})
        return httpx.Response(200, text="ok")

    aredis = fakeredis.FakeAsyncRedis(server=fake_server)
    oneclick = OneClick(
        settings, aredis, rt.metrics, runtime=rt, slack_transport=httpx.MockTransport(slack)
    )
    app = create_app(settings, client=aredis, metrics=rt.metrics, oneclick=oneclick)
    with TestClient(app) as client:
        yield World(client, rt, fake, oneclick, posted)
    rt.close()


@pytest.fixture
def world(fake_server: Any, tmp_path: Path) -> Iterator[World]:
    yield from build(fake_server, tmp_path)


def drafts(world: World, event: str) -> float:
    registry = world.rt.metrics.registry
    return registry.get_sample_value("leadrouter_drafts_total", {"event": event}) or 0.0


# -- the confirmation page ---------------------------------------------------------------------


def test_the_page_shows_the_draft_escaped_and_changes_nothing(world: World) -> None:
    before = world.snapshot()
    response = world.client.get(link())
    assert response.status_code == 200
    page = response.text
    assert "Re: pricing &lt;b&gt;now&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "Ada &lt;Lovelace&gt; &lt;ada@acme.io&gt;" in page
    assert '<form method="post"><button type="submit">Send</button></form>' in page
    assert "sig=" not in page and "<link" not in page and "src=" not in page
    assert world.snapshot() == before
    assert world.fake.to(SEND) == [] and state(world.rt) is None
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-robots-tag"] == "noindex, nofollow"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_the_page_says_when_the_draft_can_no_longer_go(world: World) -> None:
    world.fake.inbox["sdr_1"] = [thread("replied")]
    page = world.client.get(link()).text
    assert "can no longer be sent: the thread is replied now" in page
    assert "<form" not in page


def test_the_page_still_shows_the_draft_when_leadterra_cannot_be_read(world: World) -> None:
    world.fake.answers["/v1/sdr/inbox"] = httpx.Response(503)
    response = world.client.get(link())
    assert response.status_code == 200
    assert "could not be read just now" in response.text and "<form" in response.text


def test_the_page_of_a_sent_draft_has_no_button(world: World) -> None:
    assert world.client.post(link()).status_code == 200
    calls = len(world.fake.calls)
    page = world.client.get(link()).text
    assert "sent already" in page and "<form" not in page
    assert len(world.fake.calls) == calls  # a recorded send needs no reads


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda q: q.replace("sig=", "sig=A"), "signature"),
        (lambda q: q.replace("d=draft_1", "d=draft_2"), "signature"),
        (lambda q: q.replace("s=sdr_1", "s=sdr_2"), "signature"),
        (lambda q: q.split("&sig=")[0], "missing"),
        (lambda q: q.replace("e=", "e=-"), "malformed"),
    ],
    ids=["forged", "other-draft", "other-sdr", "unsigned", "bad-expiry"],
)
def test_a_forged_or_altered_link_is_403_and_changes_nothing(
    world: World, method: str, mangle: Any, reason: str
) -> None:
    path = link()
    bad = "/actions/send?" + mangle(query(path))
    before = world.snapshot()
    with capture_logs() as logs:
        response = world.client.request(method, bad)
    assert response.status_code == 403 and "not valid" in response.text
    assert world.snapshot() == before and world.fake.calls == []
    [event] = events(logs, "draft.link_refused")
    assert event["reason"] == reason
    signature = query(path).split("sig=")[1]
    assert signature not in json.dumps(logs, default=str)
    assert drafts(world, "link_refused") == 1


def test_an_expired_link_is_403_and_says_so(world: World) -> None:
    expired = link(expires=int(time.time()) - 1)
    for method in ("GET", "POST"):
        response = world.client.request(method, expired)
        assert response.status_code == 403 and "expired" in response.text
    assert world.fake.calls == [] and state(world.rt) is None


def test_a_link_signed_with_another_secret_is_403(world: World) -> None:
    other = link(secret="another-secret-0123456789-abcdefghij")
    assert world.client.post(other).status_code == 403
    assert world.fake.calls == []


def test_a_link_for_a_draft_we_do_not_keep_is_404(world: World) -> None:
    other = link(make_record(draft_id="draft_9"))
    for method in ("GET", "POST"):
        assert world.client.request(method, other).status_code == 404
    assert world.client.get("/actions/check?" + query(other)).status_code == 404
    assert world.fake.calls == []


# -- the send -------------------------------------------------------------------------------------


def test_post_sends_once_and_a_second_post_is_409(world: World) -> None:
    with capture_logs() as logs:
        first = world.client.post(link())
    assert first.status_code == 200 and "Sent" in first.text and "gmsg_1" in first.text
    assert first.headers["cache-control"] == "no-store"
    assert events(logs, "draft.sent")[0]["actor"] == "link"
    second = world.client.post(link())
    assert second.status_code == 409 and "sent already" in second.text
    assert len(world.fake.to(SEND)) == 1 and len(queued(world.rt)) == 1


def test_two_concurrent_posts_send_once(world: World) -> None:
    """The second POST comes while the first one's send is in Leadterra's hands (held there
    until the second POST has started)."""
    sending_now, release = threading.Event(), threading.Event()

    def held(request: httpx.Request) -> httpx.Response:
        sending_now.set()
        release.wait(10)
        return sent_answer()

    world.fake.answers[SEND] = held
    codes: list[int] = []

    def post() -> None:
        codes.append(world.client.post(link()).status_code)

    first = threading.Thread(target=post)
    first.start()
    wait_until(sending_now.is_set, 10, 0.01, what="the first POST sending")
    second = threading.Thread(target=post)
    second.start()
    release.set()
    for worker in (first, second):
        worker.join(20)
    assert sorted(codes) == [200, 409]
    assert len(world.fake.to(SEND)) == 1 and len(queued(world.rt)) == 1


def test_post_after_the_prospect_replied_is_409_stale(world: World) -> None:
    world.fake.inbox["sdr_1"] = [thread("replied", last="2026-06-29T10:00:00.000Z")]
    response = world.client.post(link())
    assert response.status_code == 409 and "no longer be sent" in response.text
    assert world.fake.to(SEND) == [] and state(world.rt) is None


def test_post_blocked_shows_the_issues_escaped_and_may_be_pressed_again(world: World) -> None:
    world.fake.answers[SEND] = blocked_answer("<i>Too pushy</i>")
    response = world.client.post(link())
    assert response.status_code == 422
    assert "&lt;i&gt;Too pushy&lt;/i&gt;" in response.text and "<i>" not in response.text
    assert "<form" in response.text and state(world.rt) is None
    assert world.fake.to(COMPLETE) == []
    world.fake.answers[SEND] = lambda request: sent_answer()
    assert world.client.post(link()).status_code == 200


def test_a_timeout_is_502_with_a_check_link_and_is_never_sent_again(world: World) -> None:
    world.fake.answers[SEND] = httpx.ReadTimeout("timed out")
    path = link()
    response = world.client.post(path)
    assert response.status_code == 502 and "Outcome unknown" in response.text
    check = "check?" + query(path)
    assert f'href="{check.replace("&", "&amp;")}"' in response.text
    world.fake.answers[SEND] = lambda request: sent_answer()
    again = world.client.post(path)
    assert again.status_code == 502 and len(world.fake.to(SEND)) == 1
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    world.fake.inbox["sdr_1"] = [thread("awaiting_reply", last=later)]
    before = world.snapshot()
    checked = world.client.get("/actions/" + check)
    assert checked.status_code == 200 and "awaiting_reply" in checked.text
    assert "most likely went" in checked.text
    assert world.snapshot() == before and len(world.fake.to(SEND)) == 1
    shown = world.client.get(path)
    assert shown.status_code == 200 and "<form" not in shown.text
    assert f'href="{check.replace("&", "&amp;")}"' in shown.text


def test_gmail_not_connected_is_502_not_sent(world: World) -> None:
    world.fake.answers[SEND] = httpx.Response(422, json={"error": {"code": "gmail_not_connected"}})
    response = world.client.post(link())
    assert response.status_code == 502 and "Gmail is not connected" in response.text
    assert state(world.rt) is None


def test_leadterra_busy_is_503(world: World) -> None:
    world.fake.answers[SEND] = httpx.Response(429, headers={"retry-after": "1"})
    assert world.client.post(link()).status_code == 503
    assert state(world.rt) is None


# -- mounting -------------------------------------------------------------------------------------


def test_no_routes_without_an_action_secret(fake_server: Any) -> None:
    app = create_app(make_settings(), client=fakeredis.FakeAsyncRedis(server=fake_server))
    with TestClient(app) as client:
        assert client.get("/actions/send?d=x").status_code == 404
        assert client.post("/slack/actions").status_code == 404


def test_the_routes_are_mounted_in_polling_mode_too(fake_server: Any, tmp_path: Path) -> None:
    for world in build(fake_server, tmp_path, intake="polling"):
        assert world.client.get(link()).status_code == 200
        assert world.client.post("/webhooks/leadterra").status_code == 404


def test_no_slack_route_without_a_signing_secret(fake_server: Any, tmp_path: Path) -> None:
    for world in build(fake_server, tmp_path, slack_signing_secret=None):
        assert world.client.post("/slack/actions").status_code == 404
        assert world.client.get(link()).status_code == 200


# -- Slack's buttons ------------------------------------------------------------------------------


def slack_body(user: str, action_id: str, value: str, **extra: Any) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action_id, "value": value}],
        "response_url": RESPONSE_URL,
        **extra,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_post(
    world: World,
    body: bytes,
    *,
    secret: str = SLACK_SECRET,
    timestamp: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    timestamp = timestamp or str(int(time.time()))
    signature = signature or sign_slack(secret, body=body, timestamp=timestamp)
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature,
        "content-type": "application/x-www-form-urlencoded",
    }
    return world.client.post("/slack/actions", content=body, headers=headers)


def press(world: World, user: str, action: str = "leadrouter_send", **kw: Any) -> httpx.Response:
    response = slack_post(world, slack_body(user, action, query(link())), **kw)
    world.drain()
    return response


def test_slack_send_by_the_sdr_sends_and_replaces_the_message(world: World) -> None:
    with capture_logs() as logs:
        response = slack_post(world, slack_body(SDR_USER, "leadrouter_send", query(link())))
        assert response.status_code == 200 and response.content == b""
        world.drain()
    [call] = world.fake.to(SEND)
    assert call.authorization == "Bearer sk_sdr_one_123"
    [posted] = world.slack
    assert posted["url"] == RESPONSE_URL
    message = posted["body"]
    assert message["replace_original"] is True
    shown = json.dumps(message)
    assert f"Sent by {SDR_USER}." in shown
    assert "Ada &lt;Lovelace&gt;" in shown and "sig=" not in shown
    assert not any(block.get("type") == "actions" for block in message["blocks"])
    assert events(logs, "draft.sent")[0]["actor"] == f"slack:{SDR_USER}"
    assert RESPONSE_URL not in json.dumps(logs, default=str)


def test_slack_admin_may_send_for_any_sdr(world: World) -> None:
    assert press(world, ADMIN).status_code == 200
    assert len(world.fake.to(SEND)) == 1


def test_slack_a_stranger_is_refused_with_an_ephemeral_note(world: World) -> None:
    with capture_logs() as logs:
        assert press(world, STRANGER).status_code == 200
    assert world.fake.to(SEND) == [] and state(world.rt) is None
    [posted] = world.slack
    assert posted["body"]["response_type"] == "ephemeral"
    assert posted["body"]["replace_original"] is False
    [event] = events(logs, "draft.action_refused")
    assert (event["slack_user_id"], event["sdr_id"]) == (STRANGER, "sdr_1")


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("v0=" + "0" * 64, None),
        (None, str(int(time.time()) - 3600)),
        ("", None),
    ],
    ids=["forged", "stale", "missing"],
)
def test_slack_without_a_valid_signature_is_401_and_nothing_happens(
    world: World, signature: str | None, timestamp: str | None
) -> None:
    body = slack_body(SDR_USER, "leadrouter_send", query(link()))
    if signature == "":
        response = world.client.post("/slack/actions", content=body)
    else:
        response = slack_post(world, body, signature=signature, timestamp=timestamp)
    world.drain()
    assert response.status_code == 401
    assert world.fake.calls == [] and world.slack == []


def test_slack_signed_with_another_secret_is_401(world: World) -> None:
    assert press(world, SDR_USER, secret="another-slack-secret-987654").status_code == 401
    assert world.fake.calls == []


def test_slack_a_replayed_request_is_401(world: World) -> None:
    body = slack_body(SDR_USER, "leadrouter_skip", query(link()))
    timestamp = str(int(time.time()))
    assert slack_post(world, body, timestamp=timestamp).status_code == 200
    world.drain()
    with capture_logs() as logs:
        assert slack_post(world, body, timestamp=timestamp).status_code == 401
    world.drain()
    assert events(logs, "slack.refused")[0]["reason"] == "replay"
    assert len(world.fake.to(SKIP)) == 1 and len(world.slack) == 1


def test_slack_skip_skips_with_the_users_name(world: World) -> None:
    with capture_logs() as logs:
        assert press(world, SDR_USER, "leadrouter_skip").status_code == 200
    [call] = world.fake.to(SKIP)
    assert call.body == {"reason": f"skipped from Slack by {SDR_USER}"}
    assert call.authorization == "Bearer sk_sdr_one_123"
    [posted] = world.slack
    assert posted["body"]["replace_original"] is True
    assert "Follow-up skipped by" in json.dumps(posted["body"])
    assert events(logs, "followup.skipped")[0]["slack_user_id"] == SDR_USER


def test_slack_snooze_reschedules_a_day_on(world: World) -> None:
    assert press(world, SDR_USER, "leadrouter_snooze").status_code == 200
    [call] = world.fake.to(RESCHEDULE)
    due = datetime.fromisoformat(call.body["dueAt"].replace("Z", "+00:00"))
    assert abs((due - datetime.now(UTC)) - timedelta(days=1)) < timedelta(minutes=1)
    assert "snoozed" in json.dumps(world.slack[0]["body"])


def test_slack_skip_after_the_send_does_nothing(world: World) -> None:
    press(world, SDR_USER)
    press(world, SDR_USER, "leadrouter_skip")
    assert world.fake.to(SKIP) == []
    assert "Not done" in json.dumps(world.slack[1]["body"])


def test_slack_a_blocked_send_is_an_ephemeral_note_and_the_buttons_stay(world: World) -> None:
    world.fake.answers[SEND] = blocked_answer("Too <!channel> pushy")
    press(world, SDR_USER)
    [posted] = world.slack
    assert posted["body"]["response_type"] == "ephemeral"
    assert "Too &lt;!channel&gt; pushy" in posted["body"]["text"]


def test_slack_an_expired_link_is_an_ephemeral_note(world: World) -> None:
    value = query(link(expires=int(time.time()) - 1))
    assert slack_post(world, slack_body(SDR_USER, "leadrouter_send", value)).status_code == 200
    world.drain()
    assert world.fake.calls == []
    assert "expired" in world.slack[0]["body"]["text"]


@pytest.mark.parametrize(
    "body",
    [
        b"payload=not-json",
        b"nothing=here",
        urlencode({"payload": json.dumps({"user": {"id": SDR_USER}})}).encode(),
    ],
)
def test_slack_a_malformed_payload_is_400(world: World, body: bytes) -> None:
    assert slack_post(world, body).status_code == 400


def test_slack_a_response_url_that_is_not_slacks_is_400(world: World) -> None:
    body = slack_body(SDR_USER, "leadrouter_send", query(link()), response_url="https://evil.test/")
    assert slack_post(world, body).status_code == 400
    assert world.fake.calls == []


def test_slack_a_body_over_the_cap_is_413(world: World) -> None:
    assert slack_post(world, b"payload=" + b"a" * 70_000).status_code == 413


def test_slack_an_unknown_action_is_ignored(world: World) -> None:
    assert press(world, SDR_USER, "leadrouter_open").status_code == 200
    assert world.fake.calls == [] and world.slack == []


def test_slack_a_failed_response_post_is_logged_without_the_url(
    fake_server: Any, tmp_path: Path
) -> None:
    for world in build(fake_server, tmp_path):
        world.oneclick.slack.http._transport = httpx.MockTransport(  # type: ignore[union-attr]
            lambda request: httpx.Response(500)
        )
        with capture_logs() as logs:
            press(world, SDR_USER)
        [event] = events(logs, "slack.respond_failed")
        assert event["status"] == 500
        assert RESPONSE_URL not in json.dumps(logs, default=str)
        assert len(world.fake.to(SEND)) == 1


def test_followups_due_are_read_with_the_sdrs_key_for_slack_too(world: World) -> None:
    world.fake.due["sdr_1"] = [followup(status="completed")]
    press(world, SDR_USER)
    assert world.fake.to(SEND) == []
    assert world.slack[0]["body"]["replace_original"] is True
