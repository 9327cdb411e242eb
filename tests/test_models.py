"""worker/leadterra/models.py: every envelope the docs show, open enums, both timestamp forms,
iso_ms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from worker.leadterra.models import (
    AssignResult,
    FollowUp,
    GmailStatus,
    InboxPage,
    Sdr,
    Thread,
    Webhook,
    iso_ms,
    unwrap_list,
    unwrap_object,
)

ITEMS = [{"id": "rpl_01HZB3MNPW6XT8QA"}, {"id": "rpl_2"}]
WEBHOOK = {
    "id": "wh_01HZC7RQNP4XT2KM",
    "url": "https://router.example/hooks",
    "events": ["reply.received"],
    "status": "active",
    "createdAt": "2025-06-11T09:14:32Z",
}


# -- envelopes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        ITEMS,
        {"data": ITEMS},
        {"data": {"threads": ITEMS, "total": 2, "hasMore": False}},
        {"replies": ITEMS, "pagination": {"total": 2, "page": 1, "perPage": 50}},
        {"pagination": {"total": 2, "page": 1, "perPage": 50}, "replies": ITEMS},
        {"sdrs": ITEMS},
        {"data": None, "replies": ITEMS},
    ],
    ids=["bare", "data", "data.threads", "replies", "replies-after-pagination", "sdrs", "null"],
)
def test_unwrap_list_finds_the_list_in_every_documented_envelope(body: Any) -> None:
    assert unwrap_list(body) == ITEMS


@pytest.mark.parametrize("body", [None, "", 42, {}, {"data": None}, {"pagination": {"total": 0}}])
def test_unwrap_list_gives_an_empty_list_when_there_is_none(body: Any) -> None:
    assert unwrap_list(body) == []


@pytest.mark.parametrize(
    "body",
    [{"data": WEBHOOK}, {"webhook": WEBHOOK}, WEBHOOK, {"result": WEBHOOK}],
    ids=["data", "webhook", "top-level", "result"],
)
def test_unwrap_object_finds_the_object_in_every_documented_envelope(body: Any) -> None:
    assert unwrap_object(body) == WEBHOOK
    hook = Webhook.model_validate(unwrap_object(body))
    assert (hook.id, hook.events, hook.status) == (WEBHOOK["id"], ["reply.received"], "active")


@pytest.mark.parametrize("body", [None, [WEBHOOK], "text", 3])
def test_unwrap_object_gives_an_empty_object_for_a_non_object(body: Any) -> None:
    assert unwrap_object(body) == {}


def test_an_inbox_response_unwraps_to_a_page() -> None:
    body = {
        "data": {
            "threads": [
                {"id": "thr_1", "contactEmail": "a@b.co", "contactName": "Ann", "subject": "Re: hi",
                 "status": "new", "category": "A", "priorityScore": 85,
                 "lastMessageAt": "2026-06-28T18:00:00.000Z"}
            ],
            "total": 1,
            "hasMore": False,
        }
    }  # fmt: skip
    page = InboxPage.model_validate(unwrap_object(body))
    assert (page.total, page.has_more) == (1, False)
    thread = page.threads[0]
    assert (thread.contact_email, thread.contact_name, thread.priority_score) == (
        "a@b.co",
        "Ann",
        85,
    )
    assert thread.last_message_at == datetime(2026, 6, 28, 18, tzinfo=UTC)


def test_an_assign_response_unwraps_to_its_ids() -> None:
    body = {"data": {"handoffId": "ho_1", "threadId": "thr_1", "messageId": "<m@mail>",
                     "gmailThreadId": "g_1"}}  # fmt: skip
    result = AssignResult.model_validate(unwrap_object(body))
    assert result == AssignResult(
        handoff_id="ho_1", thread_id="thr_1", message_id="<m@mail>", gmail_thread_id="g_1"
    )


# -- tolerance ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (Sdr, {"id": "sdr_1", "timezone": "Europe/Paris", "roles": ["sdr"]}),
        (FollowUp, {"id": "f", "dueAt": "2026-06-29T14:00:00.000Z", "priority": {"x": 1}}),
        (Thread, {"id": "t", "labels": ["vip"], "snoozedUntil": None}),
        (GmailStatus, {"connected": True, "provider": "composio"}),
        (Webhook, {"id": "wh_1", "secret": "hidden", "deliveries": 3}),
        (AssignResult, {"handoffId": "h", "forwardedTo": "sdr@corp.example"}),
    ],
)
def test_unknown_fields_are_ignored(model: type[Any], body: dict[str, Any]) -> None:
    parsed = model.model_validate(body)
    dumped = parsed.model_dump()
    assert set(dumped) == set(model.model_fields)  # nothing unknown kept, nothing raised


@pytest.mark.parametrize(
    ("model", "body", "field", "value"),
    [
        (Thread, {"id": "t", "status": "snoozed_forever"}, "status", "snoozed_forever"),
        (Thread, {"id": "t", "category": "D"}, "category", "D"),
        (GmailStatus, {"healthState": "weird"}, "health_state", "weird"),
        (FollowUp, {"id": "f", "status": "skipped_by_rule", "dueAt": "2026-06-29T14:00:00Z"},
         "status", "skipped_by_rule"),
        (Webhook, {"id": "w", "status": "paused"}, "status", "paused"),
    ],
)  # fmt: skip
def test_unknown_enum_values_are_kept_as_strings(
    model: type[Any], body: dict[str, Any], field: str, value: str
) -> None:
    assert getattr(model.model_validate(body), field) == value


def test_models_accept_snake_case_names_too() -> None:
    sdr = Sdr.model_validate({"id": "sdr_1", "gmail_connected": True})
    assert sdr.gmail_connected is True


def test_missing_optional_fields_get_safe_defaults() -> None:
    status = GmailStatus.model_validate({})
    assert (status.connected, status.health_state, status.last_sync_error) == (
        False,
        "disconnected",
        None,
    )
    assert Sdr.model_validate({"id": "sdr_1"}).gmail_connected is False
    assert InboxPage.model_validate({}).threads == []


@pytest.mark.parametrize(
    "identifier",
    [
        "camp_01HZA1TPNQ8RD4KF",
        "camp_01hx4mrqpbcn7wh2gfk9yz6e3s",
        "camp_123",
        "rpl_01HZB3MNPW6XT8QA",
        "sdr_id",
        "followup_id",
        "7f9c2ba4-e88f-11e4-a2a0-0800200c9a66",
        "x",
    ],
)
def test_ids_are_opaque_strings_kept_exactly(identifier: str) -> None:
    assert Sdr.model_validate({"id": identifier}).id == identifier
    assert Thread.model_validate({"id": identifier}).id == identifier
    followup = FollowUp.model_validate(
        {
            "id": identifier,
            "threadId": identifier,
            "sdrId": identifier,
            "dueAt": "2026-06-29T14:00:00Z",
        }
    )
    assert (followup.id, followup.thread_id, followup.sdr_id) == (identifier,) * 3


# -- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-06-11T09:14:32Z", datetime(2025, 6, 11, 9, 14, 32, tzinfo=UTC)),
        ("2026-06-29T14:00:00.000Z", datetime(2026, 6, 29, 14, tzinfo=UTC)),
        ("2026-06-29T14:00:00.123Z", datetime(2026, 6, 29, 14, 0, 0, 123000, tzinfo=UTC)),
        ("2026-06-29T16:00:00.000+02:00", datetime(2026, 6, 29, 14, tzinfo=UTC)),
    ],
)
def test_timestamps_with_and_without_milliseconds_parse_to_aware_utc(
    raw: str, expected: datetime
) -> None:
    parsed = [
        FollowUp.model_validate({"id": "f", "dueAt": raw}).due_at,
        Thread.model_validate({"id": "t", "lastMessageAt": raw}).last_message_at,
        GmailStatus.model_validate({"lastSyncedAt": raw}).last_synced_at,
        Webhook.model_validate({"id": "w", "createdAt": raw}).created_at,
    ]
    for moment in parsed:
        assert moment is not None
        assert moment.tzinfo is not None
        assert moment == expected
        if raw.endswith("Z"):
            assert moment.utcoffset() == timedelta(0)


def test_a_follow_up_without_due_at_is_rejected() -> None:
    with pytest.raises(ValueError, match="dueAt"):
        FollowUp.model_validate({"id": "f"})


# -- iso_ms -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 7, 5, 14, 0, tzinfo=UTC), "2026-07-05T14:00:00.000Z"),
        (datetime(2026, 7, 5, 14, 0), "2026-07-05T14:00:00.000Z"),
        (datetime(2026, 7, 5, 14, 0, 0, 999999, tzinfo=UTC), "2026-07-05T14:00:00.999Z"),
        (datetime(2026, 7, 5, 14, 0, 0, 123456), "2026-07-05T14:00:00.123Z"),
        (datetime(2026, 7, 5, 14, 0, 0, 999), "2026-07-05T14:00:00.000Z"),
        (datetime(2026, 7, 5, 16, 0, tzinfo=timezone(timedelta(hours=2))),
         "2026-07-05T14:00:00.000Z"),
        (datetime(2026, 7, 4, 23, 30, 0, 500000, tzinfo=timezone(timedelta(hours=-14.5))),
         "2026-07-05T14:00:00.500Z"),
        (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2026-12-31T23:59:59.999Z"),
    ],
)  # fmt: skip
def test_iso_ms_is_utc_with_milliseconds_and_z(moment: datetime, expected: str) -> None:
    assert iso_ms(moment) == expected


def test_iso_ms_round_trips_through_the_models() -> None:
    moment = datetime(2026, 6, 29, 14, 0, 0, 250000, tzinfo=UTC)
    parsed = FollowUp.model_validate({"id": "f", "dueAt": iso_ms(moment)}).due_at
    assert parsed == moment
