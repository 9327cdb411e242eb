import json

import pytest

from worker.errors import Malformed
from worker.receiver.webhook import CLOCK_SKEW_SECONDS, decide, freshness, parse, sent_at

POSITIVE = frozenset({"interested"})


def envelope(data: object, event: str = "reply.received") -> dict:
    return parse(
        json.dumps({"event": event, "timestamp": "2025-06-11T09:14:32Z", "data": data}).encode()
    )


def test_a_positive_reply_is_enqueued_with_its_ids_and_no_text() -> None:
    reply = {
        "id": "rpl_1",
        "email": "a@b.co",
        "campaignId": "camp_1",
        "classification": "interested",
        "receivedAt": "2025-06-11T09:14:32Z",
        "threadSnippet": "call me maybe",
    }
    decision = decide(envelope({"reply": reply}), POSITIVE, 123.0)
    assert decision.action == "enqueue"
    assert decision.payload == {
        "id": "rpl_1",
        "email": "a@b.co",
        "campaignId": "camp_1",
        "classification": "interested",
        "receivedAt": "2025-06-11T09:14:32Z",
        "acceptedAt": 123.0,
    }


def test_reply_fields_are_looked_for_in_data_when_not_in_data_reply() -> None:
    decision = decide(
        envelope({"reply": {"id": "rpl_2"}, "classification": "interested", "email": "x@y.z"}),
        POSITIVE,
        0,
    )
    assert decision.action == "enqueue"
    assert decision.payload is not None
    assert decision.payload["email"] == "x@y.z"


def test_data_reply_wins_over_data() -> None:
    decision = decide(
        envelope(
            {
                "reply": {"id": "r", "classification": "not_interested"},
                "classification": "interested",
            }
        ),
        POSITIVE,
        0,
    )
    assert decision.action == "ignore"
    assert decision.reason == "not_positive"


def test_a_flat_data_object_with_an_id_is_accepted() -> None:
    decision = decide(envelope({"id": "rpl_3", "classification": "Interested"}), POSITIVE, 0)
    assert decision.action == "enqueue"
    assert decision.reply_id == "rpl_3"


@pytest.mark.parametrize(
    "label",
    ["not_interested", "out_of_office", "bounce", "unsubscribe", "referral", "something_new", None],
)
def test_other_classifications_are_ignored(label: str | None) -> None:
    decision = decide(envelope({"reply": {"id": "r", "classification": label}}), POSITIVE, 0)
    assert (decision.action, decision.reason) == ("ignore", "not_positive")


def test_the_positive_set_comes_from_settings() -> None:
    decision = decide(
        envelope({"reply": {"id": "r", "classification": "referral"}}),
        frozenset({"interested", "referral"}),
        0,
    )
    assert decision.action == "enqueue"


@pytest.mark.parametrize("event", ["message.sent", "campaign.started", "message.bounced", "x"])
def test_other_events_are_ignored(event: str) -> None:
    decision = decide(envelope({"messageId": "m"}, event=event), POSITIVE, 0)
    assert (decision.action, decision.reason) == ("ignore", "other_event")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\xff\xfe not utf-8", 400),
        (b"not json", 400),
        (b"", 400),
        (b"[1, 2]", 422),
        (b'"string"', 422),
        (b'{"data": {}}', 422),
        (b'{"event": 5, "data": {}}', 422),
        (b'{"event": "", "data": {}}', 422),
        (b'{"event": "reply.received", "data": []}', 422),
    ],
)
def test_malformed_bodies_name_their_status(body: bytes, status: int) -> None:
    with pytest.raises(Malformed) as caught:
        parse(body)
    assert caught.value.status == status


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"reply": {}},
        {"reply": {"id": 5}},
        {"reply": {"id": ""}},
        {"reply": "rpl_1"},
        {"reply": {"id": "x" * 201}},
        {"reply": {"id": "bad\nid"}},
        {"reply": {"id": "r", "classification": 7}},
    ],
)
def test_a_reply_without_a_usable_id_or_with_a_bad_field_is_422(data: dict) -> None:
    with pytest.raises(Malformed) as caught:
        decide(envelope(data), POSITIVE, 0)
    assert caught.value.status == 422


# -- freshness: the signed timestamp against our clock ---------------------------------------

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
DAY = 86_400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-15T15:06:40Z", NOW),
        ("2025-06-15T15:06:40.250Z", NOW + 0.25),
        ("2025-06-15T17:06:40+02:00", NOW),
        ("2025-06-15T15:06:40", NOW),  # no zone: UTC, as Leadterra's docs say
        (" 2025-06-15T15:06:40Z ", NOW),
        ("", None),
        ("not a date", None),
        ("2025-02-30T00:00:00Z", None),
        ("9" * 65, None),
        (NOW, None),  # a number is not the documented form
        (None, None),
        (["2025-06-15T15:06:40Z"], None),
    ],
)
def test_sent_at_reads_both_iso_forms_and_nothing_else(value, expected) -> None:
    assert sent_at(value) == expected


@pytest.mark.parametrize(
    ("timestamp", "verdict"),
    [
        ("2025-06-15T15:06:40Z", "fresh"),
        ("2025-06-14T15:06:41Z", "fresh"),  # a second inside the day
        ("2025-06-14T15:06:39Z", "stale"),
        ("2020-01-01T00:00:00Z", "stale"),
        ("2025-06-15T15:07:40Z", "fresh"),  # a minute ahead is tolerated silently
        ("2025-06-15T15:07:41Z", "ahead"),
        ("2030-01-01T00:00:00Z", "ahead"),
        ("soon", "unreadable"),
    ],
)
def test_freshness_against_a_day_of_tolerance(timestamp, verdict) -> None:
    assert freshness({"timestamp": timestamp}, NOW, DAY).verdict == verdict


def test_a_missing_timestamp_is_missing_and_ages_are_signed() -> None:
    assert freshness({}, NOW, DAY).verdict == "missing"
    assert freshness({"timestamp": None}, NOW, DAY).verdict == "missing"
    assert freshness({"timestamp": "2025-06-13T15:06:40Z"}, NOW, DAY).age_s == 2 * DAY
    ahead = freshness({"timestamp": "2025-06-15T15:16:40Z"}, NOW, DAY)
    assert ahead.age_s == -600 and -ahead.age_s > CLOCK_SKEW_SECONDS
