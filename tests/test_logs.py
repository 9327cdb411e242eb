"""worker/logs.py: the scrubber hides configured secrets anywhere in an event, and masks every
field whose name marks it as secret."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from worker.logs import SECRET_FIELDS, Scrubber, get_logger

KEY = "sk_live_SECRET123"
WEBHOOK = "whsec_0123456789"


def scrub(event: dict[str, Any], secrets: tuple[str, ...] = (KEY, WEBHOOK)) -> dict[str, Any]:
    return dict(Scrubber(secrets)(None, "info", dict(event)))


def test_a_secret_inside_a_string_is_replaced_every_time_it_appears() -> None:
    event = scrub({"event": "leadterra.call", "error": f"401 for {KEY}; retried with {KEY}"})
    assert event == {"event": "leadterra.call", "error": "401 for ***; retried with ***"}


def test_the_event_name_itself_is_scrubbed() -> None:
    assert scrub({"event": f"calling with {WEBHOOK}"}) == {"event": "calling with ***"}


def test_secrets_are_replaced_in_nested_dicts_and_lists() -> None:
    event = scrub(
        {
            "event": "webhook.failed",
            "request": {"headers": {"x-auth": f"Bearer {KEY}"}, "hops": [{"via": WEBHOOK}]},
            "attempts": [f"first {KEY}", ["second", f"third {WEBHOOK}"]],
        }
    )
    assert event == {
        "event": "webhook.failed",
        "request": {"headers": {"x-auth": "Bearer ***"}, "hops": [{"via": "***"}]},
        "attempts": ["first ***", ["second", "third ***"]],
    }


def test_a_secret_inside_a_tuple_is_replaced() -> None:
    event = scrub({"event": "e", "args": ("sdr_1", f"key={KEY}")})
    assert list(event["args"]) == ["sdr_1", "key=***"]


def test_values_that_are_not_text_are_left_as_they_are() -> None:
    event = {"event": "e", "count": 3, "ratio": 0.5, "ok": True, "nothing": None, "ids": [1, 2]}
    assert scrub(event) == event


def test_an_event_without_secrets_passes_through_unchanged() -> None:
    event = {"event": "reply.assigned", "reply_id": "rpl_1", "sdr_id": "sdr_1", "ms": 12.5}
    assert scrub(event) == event


@pytest.mark.parametrize("name", sorted(SECRET_FIELDS))
def test_a_secret_named_field_is_masked_whatever_its_value(name: str) -> None:
    event = Scrubber()(None, "info", {"event": "e", name: "not a configured secret"})
    assert event == {"event": "e", name: "***"}


@pytest.mark.parametrize("name", ["Authorization", "API_KEY", "Thread_Snippet", "TOKEN"])
def test_secret_field_names_match_in_any_case(name: str) -> None:
    event = Scrubber()(None, "info", {"event": "e", name: {"nested": "anything"}})
    assert event[name] == "***"


def test_a_field_that_merely_contains_a_secret_word_is_kept() -> None:
    event = {"event": "e", "token_count": 3, "body_bytes": 120, "secret_rotation": "daily"}
    assert scrub(event) == event


def test_the_longest_secret_is_replaced_first() -> None:
    """A short secret that is the prefix of a longer one must not leave the longer's tail."""
    short, long = "sk_live_AB", "sk_live_ABCDEF"
    for order in ((short, long), (long, short)):
        event = Scrubber(order)(None, "info", {"event": "e", "error": f"a {long} b {short} c"})
        assert event["error"] == "a *** b *** c"
        assert "CDEF" not in event["error"]


def test_empty_and_repeated_secrets_are_ignored() -> None:
    scrubber = Scrubber(["", KEY, KEY, ""])
    assert scrubber.secrets == [KEY]
    assert scrubber(None, "info", {"event": "plain text"}) == {"event": "plain text"}


def test_the_scrubber_works_as_a_structlog_processor() -> None:
    log = get_logger("test")
    with capture_logs(processors=[Scrubber([KEY])]) as logs:
        log.warning("leadterra.rate_limited", error=f"429 for {KEY}", api_key=KEY, sdr_id="sdr_1")
    assert logs == [
        {
            "event": "leadterra.rate_limited",
            "error": "429 for ***",
            "api_key": "***",
            "sdr_id": "sdr_1",
            "log_level": "warning",
        }
    ]
