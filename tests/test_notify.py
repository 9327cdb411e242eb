"""worker/followups/notify.py through httpx.MockTransport: destinations, bodies, signature, error
mapping."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from config.settings import Settings
from tests.conftest import make_settings
from worker import errors
from worker.followups.notify import (
    DELIVERY_HEADER,
    Notifier,
    delivery_id,
    log_fields,
    webhook_body,
)
from worker.followups.poll import note_for
from worker.followups.slack_blocks import (
    MAX_SLACK_DRAFT,
    draft_outcome_message,
    slack_body,
    slack_paragraphs,
)
from worker.leadterra.client import USER_AGENT
from worker.leadterra.models import FollowUp, Thread
from worker.oneclick.links import sign_link

WEBHOOK_URL = "https://hooks.example.test/leadrouter/followups"
WEBHOOK_PATH = "/leadrouter/followups"
WEBHOOK_SECRET = "whsec_outbound_0123456789"
SLACK_TOKEN = "slackTOKENsecret987"
SLACK_URL = f"https://hooks.slack.test/services/T000/B000/{SLACK_TOKEN}"
SLACK_PATH = f"/services/T000/B000/{SLACK_TOKEN}"
DUE = "2026-06-29T14:00:00.000Z"

FOLLOWUP = {"id": "fu_1", "threadId": "thr_1", "sdrId": "sdr_1", "status": "pending",
            "dueAt": "2026-06-29T14:00:00Z"}  # fmt: skip
THREAD = {"id": "thr_1", "contactEmail": "ada@acme.io", "contactName": "Ada Lovelace",
          "subject": "Re: pricing for 40 seats", "status": "needs_followup", "category": "A",
          "priorityScore": 85}  # fmt: skip


def make_note(thread: dict[str, Any] | None = THREAD, sdr: str | None = "sdr_1") -> dict[str, Any]:
    """A note exactly as `followups.poll` fans it out."""
    model = Thread.model_validate(thread) if thread is not None else None
    return note_for(FollowUp.model_validate(FOLLOWUP), model, sdr)


@dataclass
class Receiver:
    """The webhook and Slack endpoints: answers by path, and every request they saw."""

    answers: dict[str, httpx.Response | Exception] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path not in (WEBHOOK_PATH, SLACK_PATH):
            return httpx.Response(404)
        answer = self.answers.get(request.url.path, httpx.Response(200, text="ok"))
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


def notifier_for(settings: Settings, receiver: Receiver) -> Notifier:
    return Notifier(settings, transport=httpx.MockTransport(receiver.handler))


@pytest.fixture
def notifier(receiver: Receiver) -> Iterator[Notifier]:
    settings = make_settings(
        followup_webhook_url=WEBHOOK_URL,
        followup_webhook_secret=WEBHOOK_SECRET,
        slack_webhook_url=SLACK_URL,
    )
    notifier = notifier_for(settings, receiver)
    yield notifier
    notifier.close()


def verify_signature(header: str, body: bytes, secret: str) -> int:
    """The header's timestamp when `t=<ts>,v1=<hex>` signs `"<ts>." + body` under `secret`."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    assert set(parts) == {"t", "v1"}
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(expected.hexdigest(), parts["v1"])
    return int(parts["t"])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"followup_webhook_url": WEBHOOK_URL}, ["webhook"]),
        ({"slack_webhook_url": SLACK_URL}, ["slack"]),
        (
            {"followup_webhook_url": WEBHOOK_URL, "slack_webhook_url": SLACK_URL},
            ["webhook", "slack"],
        ),  # fmt: skip
    ],
)
def test_destinations_are_those_configured(
    overrides: dict[str, str], expected: list[str], receiver: Receiver
) -> None:
    notifier = notifier_for(make_settings(**overrides), receiver)
    assert notifier.destinations() == expected
    notifier.close()


def test_delivery_id_is_the_followup_id_and_its_due_time() -> None:
    assert delivery_id(make_note()) == f"fu_1:{DUE}"


def test_the_webhook_posts_the_followup_as_json(notifier: Notifier, receiver: Receiver) -> None:
    notifier.deliver("webhook", make_note())
    [request] = receiver.requests
    assert request.method == "POST"
    assert str(request.url) == WEBHOOK_URL
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers[DELIVERY_HEADER] == f"fu_1:{DUE}"
    assert json.loads(request.content) == {
        "id": f"fu_1:{DUE}",
        "type": "followup.due",
        "event": "followup.due",
        "deliveryId": f"fu_1:{DUE}",
        "sdrId": "sdr_1",
        "followup": {**FOLLOWUP, "dueAt": DUE},
        "thread": {**THREAD, "priorityScore": 85.0},
    }


def test_the_webhook_signature_verifies_over_timestamp_and_body(
    notifier: Notifier, receiver: Receiver
) -> None:
    notifier.deliver("webhook", make_note())
    [request] = receiver.requests
    signed_at = verify_signature(
        request.headers["X-Leadrouter-Signature"], request.content, WEBHOOK_SECRET
    )
    assert abs(signed_at - time.time()) < 60


def test_the_webhook_signature_fails_under_another_secret_or_another_body(
    notifier: Notifier, receiver: Receiver
) -> None:
    notifier.deliver("webhook", make_note())
    [request] = receiver.requests
    header = request.headers["X-Leadrouter-Signature"]
    with pytest.raises(AssertionError):
        verify_signature(header, request.content, "whsec_someone_else_000")
    with pytest.raises(AssertionError):
        verify_signature(header, request.content + b" ", WEBHOOK_SECRET)


def test_the_webhook_is_unsigned_without_a_secret(receiver: Receiver) -> None:
    notifier = notifier_for(make_settings(followup_webhook_url=WEBHOOK_URL), receiver)
    notifier.deliver("webhook", make_note())
    [request] = receiver.requests
    assert "X-Leadrouter-Signature" not in request.headers
    assert request.headers[DELIVERY_HEADER] == f"fu_1:{DUE}"
    notifier.close()


def test_the_webhook_body_takes_the_sdr_from_the_followup_without_a_scoped_key() -> None:
    body = webhook_body(make_note(sdr=None))
    assert body["sdrId"] == "sdr_1"


def test_the_webhook_body_carries_a_missing_thread_as_null() -> None:
    body = webhook_body(make_note(thread=None))
    assert body["thread"] is None
    assert body["followup"]["threadId"] == "thr_1"


def rows(message: dict[str, Any]) -> dict[str, str]:
    """The message's rows, label to the plain text shown beside it."""
    found = {}
    for block in message["blocks"][1:]:
        label, value = block["fields"]
        assert label["type"] == "mrkdwn" and value["type"] == "plain_text"
        assert value["emoji"] is False
        found[label["text"].strip("*")] = value["text"]
    return found


def test_slack_gets_a_readable_message(notifier: Notifier, receiver: Receiver) -> None:
    notifier.deliver("slack", make_note())
    [request] = receiver.requests
    assert str(request.url) == SLACK_URL
    assert request.headers[DELIVERY_HEADER] == f"fu_1:{DUE}"
    assert "X-Leadrouter-Signature" not in request.headers
    message = json.loads(request.content)
    assert message["text"] == (
        f"Follow-up due for Ada Lovelace &lt;ada@acme.io&gt;: Re: pricing for 40 seats "
        f"(due {DUE}, SDR sdr_1)"
    )
    assert message["mrkdwn"] is False
    assert message["unfurl_links"] is False and message["unfurl_media"] is False
    assert message["blocks"][0]["text"]["text"] == "Follow-up due"
    assert rows(message) == {
        "Contact": "Ada Lovelace &lt;ada@acme.io&gt;",
        "Subject": "Re: pricing for 40 seats",
        "Category": "A",
        "Priority": "85",
        "Due": DUE,
        "SDR": "sdr_1",
    }


@pytest.mark.parametrize(
    ("thread", "contact"),
    [
        ({"id": "thr_1", "contactEmail": "ada@acme.io"}, "ada@acme.io"),
        ({"id": "thr_1", "contactName": "Ada Lovelace"}, "Ada Lovelace"),
        ({"id": "thr_1"}, "unknown contact"),
        (None, "unknown contact"),
    ],
)
def test_slack_names_the_contact_with_what_the_thread_has(
    thread: dict[str, Any] | None, contact: str
) -> None:
    message = slack_body(make_note(thread=thread))
    assert message["text"].startswith(f"Follow-up due for {contact}: (no subject)")
    shown = rows(message)
    assert shown["Contact"] == contact
    assert shown["Category"] == "-"
    assert shown["Priority"] == "-"


# -- prospect text is inert: Slack reads &, < and > as markup, and mrkdwn formats * _ ~ ` ------

HOSTILE = [
    "<!channel>",
    "<!here|here> <!everyone>",
    "<@U024BE7LH> <#C024BE7LR> <!subteam^SAZ94GDB8>",
    "<https://evil.example|Leadterra: re-authenticate>",
    "<mailto:ceo@acme.io|CEO>",
    "*URGENT* _act now_ ~no~ `rm -rf` ```block```",
    "> quoted\n> again",
    "@channel #general :rotating_light:",
    "Tom &amp; Jerry &lt;b&gt; & <b>",
    "https://evil.example/login",
]
ESCAPED = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def texts(value: Any) -> list[tuple[str, str]]:
    """Every (text object type, text) in a Slack message, and its fallback text."""
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            found.append((value.get("type", "message"), value["text"]))
        for inner in value.values():
            found += texts(inner)
    elif isinstance(value, list):
        for inner in value:
            found += texts(inner)
    return found


def assert_inert(message: dict[str, Any]) -> None:
    """No markup of the prospect's survives: no raw `<` or `>`, every `&` an entity, and the
    only mrkdwn is our own labels."""
    labels = {"*Contact*", "*Subject*", "*Category*", "*Priority*", "*Due*", "*SDR*"}
    for kind, text in texts(message):
        assert "<" not in text and ">" not in text, text
        assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", text, re.DOTALL), text
        if kind == "mrkdwn":
            assert text in labels
    assert message["mrkdwn"] is False  # the fallback is not formatted either


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("where", ["contactName", "contactEmail", "subject", "category"])
def test_hostile_thread_text_is_escaped_and_shown_as_plain_text(hostile: str, where: str) -> None:
    thread = {**THREAD, where: hostile}
    message = slack_body(make_note(thread=thread))
    assert_inert(message)
    shown = " ".join(" ".join(hostile.split()).translate(ESCAPED).split())
    assert any(shown in value for value in rows(message).values())
    if where != "category":  # the notification's fallback line names contact and subject
        assert shown in message["text"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_ids_status_and_times_from_leadterra_are_escaped(hostile: str) -> None:
    note = make_note()
    note["followup"] = {**note["followup"], "dueAt": hostile, "sdrId": hostile}
    note["thread"] = {**note["thread"], "priorityScore": hostile}
    assert_inert(slack_body({**note, "sdr": None}))


def test_a_channel_mention_in_the_name_pings_nobody(notifier: Notifier, receiver: Receiver) -> None:
    note = make_note(thread={**THREAD, "contactName": "<!channel> Ada"})
    notifier.deliver("slack", note)
    [request] = receiver.requests
    assert b"<!channel>" not in request.content
    message = json.loads(request.content)
    assert rows(message)["Contact"] == "&lt;!channel&gt; Ada &lt;ada@acme.io&gt;"
    assert_inert(message)


def test_a_disguised_link_in_the_subject_is_not_a_link() -> None:
    subject = "<https://evil.example|Leadterra: re-authenticate>"
    message = slack_body(make_note(thread={**THREAD, "subject": subject}))
    assert rows(message)["Subject"] == "&lt;https://evil.example|Leadterra: re-authenticate&gt;"
    assert_inert(message)


def test_prospect_text_is_one_line_without_control_characters_and_bounded() -> None:
    name = "Ada\n\n*Fake header*\r\x1b[31m\x00 Lovelace\u00a0\t" + "x" * 1000
    message = slack_body(make_note(thread={**THREAD, "contactName": name, "subject": ""}))
    contact = rows(message)["Contact"]
    assert contact.startswith("Ada *Fake header* [31m Lovelace xxx")
    assert len(contact) <= 300 and contact.endswith("\u2026")
    assert rows(message)["Subject"] == "(no subject)"
    assert_inert(message)


@pytest.mark.parametrize("destination", ["slack", "carrier_pigeon"])
def test_an_unconfigured_destination_is_a_permanent_error(
    destination: str, receiver: Receiver
) -> None:
    notifier = notifier_for(make_settings(followup_webhook_url=WEBHOOK_URL), receiver)
    with pytest.raises(errors.InvalidRequest, match=destination):
        notifier.deliver(destination, make_note())
    assert receiver.requests == []
    notifier.close()


FAILURES: list[tuple[httpx.Response | Exception, type[errors.ServiceError]]] = [
    (httpx.Response(500), errors.ServerError),
    (httpx.Response(502, text="bad gateway"), errors.ServerError),
    (httpx.Response(503, json={"error": {"message": "down"}}), errors.ServerError),
    (httpx.ReadTimeout("read timed out"), errors.TransportFailure),
    (httpx.ConnectTimeout("connect timed out"), errors.TransportFailure),
    (httpx.ConnectError("connection refused"), errors.TransportFailure),
    (httpx.RemoteProtocolError("peer closed connection"), errors.TransportFailure),
    (httpx.Response(429), errors.RateLimited),
    (httpx.Response(400, text="invalid_payload"), errors.InvalidRequest),
    (httpx.Response(403, text="invalid_token"), errors.AuthError),
    (httpx.Response(404, text="no_service"), errors.NotFound),
    (httpx.Response(410, text="channel_is_archived"), errors.InvalidRequest),
    (httpx.Response(422), errors.InvalidRequest),
]


@pytest.mark.parametrize("destination", ["webhook", "slack"])
@pytest.mark.parametrize(("answer", "raised"), FAILURES)
def test_a_failed_delivery_maps_to_the_error_tree(
    destination: str,
    answer: httpx.Response | Exception,
    raised: type[errors.ServiceError],
    notifier: Notifier,
    receiver: Receiver,
) -> None:
    receiver.answers = {WEBHOOK_PATH: answer, SLACK_PATH: answer}
    with pytest.raises(raised) as caught:
        notifier.deliver(destination, make_note())
    assert caught.value.endpoint == f"notify {destination}"
    status = answer.status_code if isinstance(answer, httpx.Response) else None
    assert caught.value.status == status
    assert caught.value.retryable is (status is None or status >= 429)


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (httpx.Response(500), errors.RetryableError),
        (httpx.ReadTimeout("t"), errors.RetryableError),
        (httpx.ConnectError("c"), errors.RetryableError),
        (httpx.Response(429), errors.RetryableError),
        (httpx.Response(400), errors.PermanentError),
        (httpx.Response(404), errors.PermanentError),
    ],
)
def test_retryable_and_permanent_failures_split_by_class(
    answer: httpx.Response | Exception,
    raised: type[errors.ServiceError],
    notifier: Notifier,
    receiver: Receiver,
) -> None:
    receiver.answers = {WEBHOOK_PATH: answer}
    with pytest.raises(raised):
        notifier.deliver("webhook", make_note())


@pytest.mark.parametrize(
    ("retry_after", "wait"), [("7", 7.0), ("0.5", 0.5), (None, None), ("soon", None)]
)
def test_a_429_carries_the_retry_after_wait(
    retry_after: str | None, wait: float | None, notifier: Notifier, receiver: Receiver
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    receiver.answers = {SLACK_PATH: httpx.Response(429, headers=headers)}
    with pytest.raises(errors.RateLimited) as caught:
        notifier.deliver("slack", make_note())
    assert caught.value.retry_after == wait


@pytest.mark.parametrize("destination", ["webhook", "slack"])
@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500),
        httpx.Response(404, text=f"no_service for {SLACK_URL}"),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.ReadTimeout(f"timed out reading {SLACK_URL} signed with {WEBHOOK_SECRET}"),
        httpx.ConnectError(f"cannot connect to {SLACK_URL}"),
    ],
)
def test_no_secret_appears_in_a_delivery_error(
    destination: str, answer: httpx.Response | Exception, notifier: Notifier, receiver: Receiver
) -> None:
    receiver.answers = {WEBHOOK_PATH: answer, SLACK_PATH: answer}
    with pytest.raises(errors.ServiceError) as caught:
        notifier.deliver(destination, make_note())
    shown = f"{caught.value} {caught.value!r} {caught.value.args} {caught.value.code}"
    for secret in (SLACK_TOKEN, SLACK_URL, WEBHOOK_SECRET):
        assert secret not in shown
    # a traceback never prints the httpx error, whose request holds the URL
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


# -- drafts -----------------------------------------------------------------------------------

SEND_URL = sign_link(
    "action-secret-0123456789-abcdefghij",
    draft_id="draft_1",
    followup_id="fu_1",
    sdr_id="sdr_1",
    expires_at=2_000_000_000,
    base_url="https://leadrouter.example.test",
)
DRAFT = {
    "id": "draft_1",
    "subject": "Re: pricing for 40 seats",
    "confidence": 0.85,
    "bodyText": "Hi Ada,\n\nDid the numbers work for you?\n\nBest, Sam",
    "sendUrl": SEND_URL,
}
DRAFT_LABELS = {"*Draft subject*", "*Confidence*"}


def draft_note(**draft: Any) -> dict[str, Any]:
    return {**make_note(), "draft": {**DRAFT, **draft}}


def actions(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in message["blocks"] if block["type"] == "actions"]


def assert_draft_inert(message: dict[str, Any]) -> None:
    """As `assert_inert`, with the draft's labels among ours."""
    labels = {"*Contact*", "*Subject*", "*Category*", "*Priority*", "*Due*", "*SDR*"}
    for kind, text in texts(message):
        assert "<" not in text and ">" not in text, text
        assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", text, re.DOTALL), text
        if kind == "mrkdwn":
            assert text in labels | DRAFT_LABELS
    assert message["mrkdwn"] is False


def test_the_webhook_carries_the_draft_with_its_send_url(
    notifier: Notifier, receiver: Receiver
) -> None:
    notifier.deliver("webhook", draft_note())
    [request] = receiver.requests
    body = json.loads(request.content)
    assert body["draft"] == DRAFT
    assert body["draft"]["sendUrl"] == SEND_URL
    assert body["followup"]["id"] == "fu_1"


def test_the_webhook_has_no_draft_key_without_a_draft() -> None:
    assert "draft" not in webhook_body(make_note())


def test_slack_shows_the_draft_subject_confidence_and_body() -> None:
    message = slack_body(draft_note())
    blocks = message["blocks"]
    shown = {b["fields"][0]["text"]: b["fields"][1]["text"] for b in blocks if "fields" in b}
    assert shown["*Draft subject*"] == "Re: pricing for 40 seats"
    assert shown["*Confidence*"] == "85%"
    [body] = [b for b in blocks if b["type"] == "section" and "text" in b]
    assert body["text"] == {
        "type": "plain_text",
        "text": "Hi Ada,\n\nDid the numbers work for you?\n\nBest, Sam",
        "emoji": False,
    }
    assert message["text"].endswith(", draft ready")
    assert_draft_inert(message)


def test_slack_offers_send_skip_and_snooze_when_it_can_verify_clicks() -> None:
    [block] = actions(slack_body(draft_note(), interactive=True))
    assert block["block_id"] == "leadrouter_draft"
    send, skip, snooze = block["elements"]
    assert [b["action_id"] for b in (send, skip, snooze)] == [
        "leadrouter_send",
        "leadrouter_skip",
        "leadrouter_snooze",
    ]
    assert [b["text"]["text"] for b in (send, skip, snooze)] == ["Send", "Skip", "Snooze 1 day"]
    query = SEND_URL.split("?", 1)[1]
    assert query.startswith("d=draft_1&f=fu_1&s=sdr_1&e=2000000000&sig=")
    assert all(b["value"] == query for b in (send, skip, snooze))
    assert all("url" not in b for b in (send, skip, snooze))
    assert send["style"] == "primary" and "style" not in skip and "style" not in snooze
    assert set(send["confirm"]) == {"title", "text", "confirm", "deny"}
    assert "confirm" not in skip and "confirm" not in snooze


def test_slack_offers_one_link_button_without_a_signing_secret() -> None:
    [block] = actions(slack_body(draft_note()))
    [button] = block["elements"]
    assert button["action_id"] == "leadrouter_open"
    assert button["text"]["text"] == "Review and send"
    assert button["url"] == SEND_URL
    assert "value" not in button


BUTTONS = ["leadrouter_send", "leadrouter_skip", "leadrouter_snooze"]


@pytest.mark.parametrize(
    ("signing", "action_ids"),
    [("slack-signing-secret-0123456789", BUTTONS), (None, ["leadrouter_open"])],
)
def test_the_notifier_picks_the_buttons_by_the_signing_secret(
    receiver: Receiver, signing: str | None, action_ids: list[str]
) -> None:
    settings = make_settings(slack_webhook_url=SLACK_URL, slack_signing_secret=signing)
    notifier = notifier_for(settings, receiver)
    notifier.deliver("slack", draft_note())
    notifier.close()
    [request] = receiver.requests
    [block] = actions(json.loads(request.content))
    assert [b["action_id"] for b in block["elements"]] == action_ids


def test_a_message_without_a_draft_has_no_buttons() -> None:
    assert actions(slack_body(make_note(), interactive=True)) == []


@pytest.mark.parametrize("url", ["javascript:alert(1)", "", f"{SEND_URL}&pad={'x' * 3000}"])
def test_a_send_url_slack_cannot_take_gets_no_button(url: str) -> None:
    message = slack_body(draft_note(sendUrl=url), interactive=True)
    assert actions(message) == []
    assert any(b.get("text", {}).get("text", "").startswith("Hi Ada") for b in message["blocks"])


def test_a_query_too_long_for_a_button_value_falls_back_to_the_link() -> None:
    url = f"{SEND_URL}&pad={'x' * 2100}"
    [block] = actions(slack_body(draft_note(sendUrl=url), interactive=True))
    assert [b["action_id"] for b in block["elements"]] == ["leadrouter_open"]


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("where", ["subject", "bodyText", "confidence"])
def test_hostile_draft_text_is_escaped_and_plain(hostile: str, where: str) -> None:
    for interactive in (False, True):
        message = slack_body(draft_note(**{where: hostile}), interactive=interactive)
        assert_draft_inert(message)


def test_a_channel_mention_in_the_draft_body_pings_nobody(
    notifier: Notifier, receiver: Receiver
) -> None:
    notifier.deliver("slack", draft_note(bodyText="<!channel> please <@U024BE7LH>"))
    [request] = receiver.requests
    assert b"<!channel>" not in request.content and b"<@U" not in request.content
    assert_draft_inert(json.loads(request.content))


def test_the_draft_body_keeps_paragraphs_drops_control_characters_and_is_bounded() -> None:
    shown = slack_paragraphs("Hi\r\n\n\n\n\x1b[31m  Ada\t\x00!\n" + "y" * 5000)
    assert shown.startswith("Hi\n\n[31m Ada !\nyyy")
    assert len(shown) == MAX_SLACK_DRAFT and shown.endswith("\u2026")


@pytest.mark.parametrize("offset", range(6))
def test_a_long_body_is_cut_by_its_escaped_length_never_inside_an_entity(offset: int) -> None:
    shown = slack_paragraphs("a" * offset + "<&>" * 2000)
    assert len(shown) <= MAX_SLACK_DRAFT and shown.endswith("\u2026")
    assert re.fullmatch(r"a*(&amp;|&lt;|&gt;)*\u2026", shown), shown[-12:]


def test_an_empty_draft_body_shows_a_dash() -> None:
    assert slack_paragraphs(" \n\n ") == "-"


@pytest.mark.parametrize(("value", "shown"), [(0.85, "85%"), (1, "100%"), (None, "-"),
                                              (85, "85"), ("high", "high")])  # fmt: skip
def test_the_confidence_is_a_percentage_when_it_is_a_share(value: Any, shown: str) -> None:
    message = slack_body(draft_note(confidence=value))
    fields = {b["fields"][0]["text"]: b["fields"][1]["text"] for b in message["blocks"]
              if "fields" in b}  # fmt: skip
    assert fields["*Confidence*"] == shown


def test_the_outcome_message_keeps_the_draft_drops_the_buttons_and_says_what_happened() -> None:
    message = draft_outcome_message(draft_note(), "Sent by <!channel> Sam at 14:02")
    assert actions(message) == []
    context = message["blocks"][-1]
    assert context["type"] == "context"
    assert context["elements"] == [
        {"type": "plain_text", "text": "Sent by &lt;!channel&gt; Sam at 14:02", "emoji": False}
    ]
    assert message["text"].endswith(": Sent by &lt;!channel&gt; Sam at 14:02")
    assert any(b.get("text", {}).get("text", "").startswith("Hi Ada") for b in message["blocks"])
    assert_draft_inert(message)


def test_a_notifications_log_fields_name_its_draft() -> None:
    assert log_fields(draft_note())["draft_id"] == "draft_1"
    assert "draft_id" not in log_fields(make_note())
