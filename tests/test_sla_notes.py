"""The SLA watch's notes (worker/sla/notes.py) and their delivery through the follow-up
machinery (worker/followups/notify.py, the `deliver_notification` task), over httpx.MockTransport:
ids, audiences, bodies, signatures, escaping and the SDR's mention."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import httpx
import pytest
from structlog.testing import capture_logs

from config.settings import Settings
from tests.conftest import make_settings
from tests.test_notify import HOSTILE, texts, verify_signature
from worker import errors
from worker.followups.notify import (
    DELIVERY_HEADER,
    Notifier,
    log_fields,
    sla_webhook_body,
)
from worker.followups.slack_blocks import (
    sla_slack_body,
)
from worker.jobs.tasks import deliver_notification
from worker.runtime import Runtime
from worker.sla.notes import (
    BREACHED,
    ESCALATED,
    KINDS,
    REMINDER,
    REROUTED,
    audience,
    is_slack_user_id,
    sla_note,
)

SECRET = "whsec_outbound_0123456789"
TEAM_HOOK = "https://hooks.example.test/team"
BOSS_HOOK = "https://hooks.example.test/manager"
TEAM_TOKEN = "teamSLACKtoken123"
BOSS_TOKEN = "bossSLACKtoken456"
TEAM_SLACK = f"https://hooks.slack.test/services/T1/B1/{TEAM_TOKEN}"
BOSS_SLACK = f"https://hooks.slack.test/services/T1/B2/{BOSS_TOKEN}"
ALL = {
    "followup_webhook_url": TEAM_HOOK,
    "followup_webhook_secret": SECRET,
    "slack_webhook_url": TEAM_SLACK,
    "sla_escalation_webhook_url": BOSS_HOOK,
    "sla_escalation_slack_webhook_url": BOSS_SLACK,
}
HISTORY = [
    {"attempt": 1, "sdrId": "sdr_1", "threadId": "thr_1", "outcome": "breached"},
    {"attempt": 2, "sdrId": "sdr_2", "threadId": "thr_2", "outcome": "breached"},
]
LABELS = {"Contact", "SDR", "New SDR", "Elapsed", "Reply", "Thread", "Attempt", "History"}


def note(kind: str = BREACHED, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "reply_id": "rpl_1",
        "sdr_id": "sdr_1",
        "thread_id": "thr_1",
        "attempt": 1,
        "minutes_elapsed": 31.456,
        "sla_minutes": 30.0,
        "contact": "Ada Lovelace <ada@acme.io>",
        "slack_user_id": "U024BE7LH",
    }
    if kind == REROUTED:
        values["new_sdr_id"] = "sdr_2"
    if kind == ESCALATED:
        values["history"] = HISTORY
    values.update(overrides)
    return sla_note(kind, **values)


class Seen:
    """Every request the webhooks and Slack received; each answers 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, text="ok")


@pytest.fixture
def seen() -> Seen:
    return Seen()


def notifier_for(settings: Settings, seen: Seen) -> Notifier:
    return Notifier(settings, transport=httpx.MockTransport(seen.handler))


@pytest.fixture
def notifier(seen: Seen) -> Iterator[Notifier]:
    notifier = notifier_for(make_settings(**ALL), seen)
    yield notifier
    notifier.close()


# -- the note: its id, its fields, who hears it -------------------------------------------------


def test_the_note_carries_its_id_type_and_the_handoff() -> None:
    assert note() == {
        "id": "sla.breached:rpl_1:1",
        "type": "sla.breached",
        "replyId": "rpl_1",
        "sdrId": "sdr_1",
        "threadId": "thr_1",
        "attempt": 1,
        "minutesElapsed": 31.46,
        "slaMinutes": 30.0,
        "contact": "Ada Lovelace <ada@acme.io>",
        "slackUserId": "U024BE7LH",
    }


def test_the_id_is_stable_for_a_kind_reply_and_attempt() -> None:
    first, repeat = note(minutes_elapsed=31.0), note(minutes_elapsed=33.5)
    assert first["id"] == repeat["id"] == "sla.breached:rpl_1:1"
    assert note(attempt=2)["id"] == "sla.breached:rpl_1:2"
    assert note(REMINDER)["id"] == "sla.reminder:rpl_1:1"
    assert note(reply_id="rpl_9")["id"] == "sla.breached:rpl_9:1"


def test_a_rerouted_note_names_the_new_sdr_and_an_escalated_one_the_history() -> None:
    assert note(REROUTED)["newSdrId"] == "sdr_2"
    assert note(ESCALATED)["history"] == HISTORY
    assert "newSdrId" not in note(REMINDER) and "history" not in note(REMINDER)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(REMINDER, "sdr"), (REROUTED, "sdr"), (BREACHED, "both"), (ESCALATED, "manager")],
)
def test_each_kind_goes_to_its_audience(kind: str, expected: str) -> None:
    assert audience(kind) == expected


@pytest.mark.parametrize("kind", ["followup.due", "sla.other", ""])
def test_an_unknown_kind_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="not an SLA note kind"):
        audience(kind)
    with pytest.raises(ValueError):
        note(kind)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="attempt"):
        note(attempt=0)


# -- destinations by audience -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "wanted", "expected"),
    [
        (ALL, "sdr", ["webhook", "slack"]),
        (ALL, "manager", ["escalation_webhook", "escalation_slack"]),
        (ALL, "both", ["webhook", "slack", "escalation_webhook", "escalation_slack"]),
        ({"followup_webhook_url": TEAM_HOOK}, "manager", []),
        ({"followup_webhook_url": TEAM_HOOK}, "both", ["webhook"]),
        ({"sla_escalation_slack_webhook_url": BOSS_SLACK}, "both", ["escalation_slack"]),
        ({"sla_escalation_webhook_url": BOSS_HOOK}, "sdr", []),
    ],
)
def test_destinations_are_those_configured_for_the_audience(
    settings: dict[str, str], wanted: str, expected: list[str], seen: Seen
) -> None:
    notifier = notifier_for(make_settings(**settings), seen)
    assert notifier.destinations(wanted) == expected
    notifier.close()


def test_the_default_audience_is_the_follow_ups_own(notifier: Notifier) -> None:
    assert notifier.destinations() == ["webhook", "slack"]


def test_an_unknown_audience_is_refused(notifier: Notifier) -> None:
    with pytest.raises(ValueError, match="unknown audience"):
        notifier.destinations("everyone")


@pytest.mark.parametrize("destination", ["escalation_webhook", "escalation_slack"])
def test_an_unconfigured_escalation_destination_is_a_permanent_error(
    destination: str, seen: Seen
) -> None:
    notifier = notifier_for(make_settings(followup_webhook_url=TEAM_HOOK), seen)
    with pytest.raises(errors.InvalidRequest, match=destination):
        notifier.deliver(destination, note())
    assert seen.requests == []
    notifier.close()


# -- the webhooks: the same fields for every kind, signed, the id in the header -----------------

BASE = {
    "id": "sla.reminder:rpl_1:1",
    "type": "sla.reminder",
    "replyId": "rpl_1",
    "sdrId": "sdr_1",
    "threadId": "thr_1",
    "attempt": 1,
    "minutesElapsed": 31.46,
    "slaMinutes": 30.0,
    "contact": "Ada Lovelace <ada@acme.io>",
}


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        (REMINDER, {}),
        (BREACHED, {}),
        (REROUTED, {"newSdrId": "sdr_2"}),
        (ESCALATED, {"history": HISTORY}),
    ],
)
def test_every_webhook_body_carries_the_sla_fields(kind: str, extra: dict[str, Any]) -> None:
    ids = {"id": f"{kind}:rpl_1:1", "type": kind}
    assert sla_webhook_body(note(kind)) == {**BASE, **ids, **extra}


def test_a_webhook_body_keeps_a_missing_thread_as_null_and_never_the_slack_id() -> None:
    body = sla_webhook_body(note(thread_id=None, contact=None))
    assert body["threadId"] is None
    assert "contact" not in body
    assert "slackUserId" not in body and "U024BE7LH" not in json.dumps(body)


@pytest.mark.parametrize(
    ("destination", "url"), [("webhook", TEAM_HOOK), ("escalation_webhook", BOSS_HOOK)]
)
def test_the_sdr_and_escalation_webhooks_are_signed_like_the_followups(
    destination: str, url: str, notifier: Notifier, seen: Seen
) -> None:
    notifier.deliver(destination, note())
    [request] = seen.requests
    assert str(request.url) == url
    assert request.headers["content-type"] == "application/json"
    assert request.headers[DELIVERY_HEADER] == "sla.breached:rpl_1:1"
    verify_signature(request.headers["X-Leadrouter-Signature"], request.content, SECRET)
    with pytest.raises(AssertionError):
        verify_signature(request.headers["X-Leadrouter-Signature"], request.content, "whsec_x_0")
    assert json.loads(request.content) == sla_webhook_body(note())


def test_the_escalation_webhook_is_unsigned_without_a_secret(seen: Seen) -> None:
    notifier = notifier_for(make_settings(sla_escalation_webhook_url=BOSS_HOOK), seen)
    notifier.deliver("escalation_webhook", note(ESCALATED))
    [request] = seen.requests
    assert "X-Leadrouter-Signature" not in request.headers
    assert request.headers[DELIVERY_HEADER] == "sla.escalated:rpl_1:1"
    notifier.close()


def test_a_repeated_delivery_carries_the_same_id(notifier: Notifier, seen: Seen) -> None:
    notifier.deliver("webhook", note(minutes_elapsed=31.0))
    notifier.deliver("webhook", note(minutes_elapsed=32.0))
    first, second = seen.requests
    assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER]
    assert json.loads(first.content)["id"] == json.loads(second.content)["id"]


def test_a_reply_id_that_a_header_cannot_carry_is_percent_encoded(
    notifier: Notifier, seen: Seen
) -> None:
    notifier.deliver("webhook", note(reply_id="rpl_é%1"))
    [request] = seen.requests
    assert request.headers[DELIVERY_HEADER] == "sla.breached:rpl_%C3%A9%251:1"
    assert json.loads(request.content)["id"] == "sla.breached:rpl_é%1:1"


# -- Slack: readable, escaped, and the SDR mentioned in the team's channel only ---------------


def shown(message: dict[str, Any]) -> dict[str, str]:
    """The message's rows, label to the plain text shown beside it."""
    found = {}
    for block in message["blocks"]:
        if "fields" in block:
            label, value = block["fields"]
            assert label["type"] == "mrkdwn" and value["type"] == "plain_text"
            found[label["text"].strip("*")] = value["text"]
    return found


def mentions(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]


def assert_inert(message: dict[str, Any]) -> None:
    """No markup but ours: the only mrkdwn is our labels and a `<@U...>` mention we built."""
    for kind, text in texts(message):
        if kind == "mrkdwn" and text.startswith("<@"):
            assert re.fullmatch(r"<@[UW][A-Z0-9]{2,20}> [A-Za-z .]+", text), text
            continue
        assert "<" not in text and ">" not in text, text
        assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", text, re.DOTALL), text
        if kind == "mrkdwn":
            assert text.strip("*") in LABELS
    assert message["mrkdwn"] is False


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        (REMINDER, "Reply waiting for its SDR"),
        (BREACHED, "SLA breached"),
        (REROUTED, "Reply re-routed"),
        (ESCALATED, "SLA escalation"),
    ],
)
def test_each_kind_has_a_readable_slack_message(kind: str, header: str) -> None:
    message = sla_slack_body(note(kind), mention=False)
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": header},
    }
    assert message["text"] == (
        f"{header}: Ada Lovelace &lt;ada@acme.io&gt; (SDR sdr_1, 31.5 of 30 min)"
    )
    rows = shown(message)
    assert rows["Contact"] == "Ada Lovelace &lt;ada@acme.io&gt;"
    assert (rows["SDR"], rows["Elapsed"], rows["Reply"]) == ("sdr_1", "31.5 of 30 min", "rpl_1")
    assert (rows["Thread"], rows["Attempt"]) == ("thr_1", "1")
    assert rows.get("New SDR") == ("sdr_2" if kind == REROUTED else None)
    assert rows.get("History") == ("#1 sdr_1, #2 sdr_2" if kind == ESCALATED else None)
    assert message["unfurl_links"] is False and message["unfurl_media"] is False
    assert_inert(message)


def test_a_note_without_contact_or_thread_still_reads() -> None:
    rows = shown(sla_slack_body(note(contact=None, thread_id=None), mention=False))
    assert (rows["Contact"], rows["Thread"]) == ("unknown contact", "-")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_contact_and_ids_are_escaped_and_shown_as_plain_text(hostile: str) -> None:
    kinds = {REROUTED: {"new_sdr_id": hostile}, ESCALATED: {"history": [{"sdrId": hostile}]}}
    for kind in KINDS:
        values = {"contact": hostile, "reply_id": hostile, "sdr_id": hostile, "thread_id": hostile}
        message = sla_slack_body(note(kind, **values, **kinds.get(kind, {})), mention=True)
        assert_inert(message)
        escaped = " ".join(hostile.split()).translate(
            str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
        )
        assert shown(message)["Contact"] == escaped


def test_a_channel_mention_in_the_contact_pings_nobody(notifier: Notifier, seen: Seen) -> None:
    notifier.deliver("slack", note(REMINDER, contact="<!channel> Ada"))
    [request] = seen.requests
    assert b"<!channel>" not in request.content
    message = json.loads(request.content)
    assert shown(message)["Contact"] == "&lt;!channel&gt; Ada"
    assert_inert(message)


def test_the_team_channel_mentions_the_sdr(notifier: Notifier, seen: Seen) -> None:
    notifier.deliver("slack", note(REMINDER))
    [request] = seen.requests
    assert str(request.url) == TEAM_SLACK
    assert request.headers[DELIVERY_HEADER] == "sla.reminder:rpl_1:1"
    assert "X-Leadrouter-Signature" not in request.headers
    message = json.loads(request.content)
    assert message["blocks"][1] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "<@U024BE7LH> this reply is waiting for you."},
    }
    assert_inert(message)


def test_the_managers_channel_mentions_nobody(notifier: Notifier, seen: Seen) -> None:
    notifier.deliver("escalation_slack", note(BREACHED))
    [request] = seen.requests
    assert str(request.url) == BOSS_SLACK
    message = json.loads(request.content)
    assert mentions(message) == []
    assert b"<@" not in request.content
    assert_inert(message)


def test_no_slack_user_id_no_mention() -> None:
    assert mentions(sla_slack_body(note(slack_user_id=None), mention=True)) == []


HOSTILE_USERS = [
    "<!channel>",
    "U024BE7LH> <!channel",
    "U024BE7LH|x",
    "U024BE7LH\n",
    "U024BE7LH ",
    "u024be7lh",
    "B024BE7LH",
    "C024BE7LR",
    "U1",
    "U" + "A" * 21,
    "U024ΒΕ7LH",  # Greek capitals that look Latin
    "",
]


@pytest.mark.parametrize("user", HOSTILE_USERS)
def test_a_slack_user_id_that_is_not_one_is_never_mentioned(user: str) -> None:
    assert not is_slack_user_id(user)
    assert "slackUserId" not in note(slack_user_id=user)
    forged = {**note(), "slackUserId": user}  # a note built elsewhere, or tampered with
    message = sla_slack_body(forged, mention=True)
    assert mentions(message) == []
    assert "<@" not in json.dumps(message)
    assert_inert(message)


@pytest.mark.parametrize("user", ["U024BE7LH", "W012A3CDE", "U12", "U" + "A" * 20])
def test_a_slack_user_id_is_u_or_w_then_capitals_or_digits(user: str) -> None:
    assert is_slack_user_id(user)
    assert mentions(sla_slack_body(note(slack_user_id=user), mention=True))[0].startswith(
        f"<@{user}> "
    )


# -- secrets and the task's log line ----------------------------------------------------------


def test_the_escalation_slack_url_is_a_secret() -> None:
    secrets = make_settings(**ALL).secret_values()
    assert BOSS_SLACK in secrets
    assert any(BOSS_TOKEN in value and "hooks.slack.test" not in value for value in secrets)
    assert BOSS_TOKEN not in repr(make_settings(**ALL))


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(404, text=f"no_service {BOSS_SLACK}"), httpx.ConnectError(f"at {BOSS_SLACK}")],
)
def test_no_escalation_secret_appears_in_a_delivery_error(
    answer: httpx.Response | Exception,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    notifier = Notifier(make_settings(**ALL), transport=httpx.MockTransport(handler))
    with pytest.raises(errors.ServiceError) as caught:
        notifier.deliver("escalation_slack", note(ESCALATED))
    told = f"{caught.value} {caught.value!r} {caught.value.args}"
    assert BOSS_TOKEN not in told and BOSS_SLACK not in told
    notifier.close()


def test_log_fields_name_a_note_by_its_kind() -> None:
    assert log_fields(note(REMINDER)) == {
        "reply_id": "rpl_1",
        "type": "sla.reminder",
        "note_id": "sla.reminder:rpl_1:1",
        "sdr_id": "sdr_1",
    }
    followup = {"followup": {"id": "fu_1", "dueAt": "2026-06-29T14:00:00.000Z"}, "sdr": "sdr_1"}
    assert log_fields(followup) == {"followup_id": "fu_1", "sdr_id": "sdr_1"}


def test_the_task_logs_an_sla_delivery_with_its_ids(
    fake_redis: fakeredis.FakeRedis, seen: Seen
) -> None:
    rt = Runtime(make_settings(**ALL), client=fake_redis)
    rt._notifier = notifier_for(rt.settings, seen)
    with capture_logs() as logs:
        deliver_notification(SimpleNamespace(runtime=rt), "escalation_webhook", note(ESCALATED))
    [entry] = [e for e in logs if e["event"] == "notification.delivered"]
    assert {k: entry[k] for k in ("destination", "reply_id", "type", "note_id", "sdr_id")} == {
        "destination": "escalation_webhook",
        "reply_id": "rpl_1",
        "type": "sla.escalated",
        "note_id": "sla.escalated:rpl_1:1",
        "sdr_id": "sdr_1",
    }
    assert "followup_id" not in entry
    assert rt.metrics.notifications.labels("escalation_webhook", "delivered")._value.get() == 1
    rt.close()
