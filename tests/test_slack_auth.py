import pytest

from worker.errors import RejectedDelivery, SlackRefused
from worker.oneclick import slack_auth
from worker.oneclick.slack_auth import replay_key, sign_slack, verify_slack

SECRET = "slack-signing-secret-0123456789"
OLD_SECRET = "slack-signing-secret-previous"
NOW = 1_800_000_000
TS = str(NOW)
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%5D%7D"
SIG = sign_slack(SECRET, body=BODY, timestamp=TS)


def _refused(**overrides: object) -> SlackRefused:
    request: dict[str, object] = {"body": BODY, "timestamp": TS, "signature": SIG, "now": NOW}
    request.update(overrides)
    secret = request.pop("secret", SECRET)
    with pytest.raises(SlackRefused) as caught:
        verify_slack(secret, **request)  # type: ignore[arg-type]
    return caught.value


def test_slacks_documented_example_signature() -> None:
    """The worked example in Slack's "Verifying requests from Slack"."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    assert sign_slack(secret, body=body, timestamp="1531420618") == signature
    verify_slack(secret, body=body, timestamp="1531420618", signature=signature, now=1531420618)


def test_a_valid_request_passes() -> None:
    verify_slack(SECRET, body=BODY, timestamp=TS, signature=SIG, now=NOW)


def test_the_previous_secret_passes_during_a_rotation() -> None:
    old = sign_slack(OLD_SECRET, body=BODY, timestamp=TS)
    verify_slack([SECRET, OLD_SECRET], body=BODY, timestamp=TS, signature=old, now=NOW)
    assert _refused(signature=old).reason == "signature"


@pytest.mark.parametrize(
    "signature",
    [
        "v0=" + "0" * 64,
        SIG.upper(),
        SIG.replace("v0=", "v1="),
        SIG[3:],
        SIG + "00",
        "v0=ü" + SIG[4:],
        sign_slack("another-secret", body=BODY, timestamp=TS),
    ],
)
def test_a_bad_signature_is_refused(signature: str) -> None:
    assert _refused(signature=signature).reason in ("signature", "malformed")


def test_an_altered_body_is_refused() -> None:
    assert _refused(body=BODY + b"&x=1").reason == "signature"
    assert _refused(body=b"").reason == "signature"


def test_a_signature_moved_to_another_timestamp_is_refused() -> None:
    assert _refused(timestamp=str(NOW - 1)).reason == "signature"


@pytest.mark.parametrize(
    "overrides",
    [{"timestamp": None}, {"timestamp": ""}, {"signature": None}, {"signature": ""}],
)
def test_a_missing_header_is_refused(overrides: dict[str, object]) -> None:
    assert _refused(**overrides).reason == "missing"


@pytest.mark.parametrize(
    "timestamp", ["abc", "-5", "+1800000000", "1800000000.5", " 1800000000", "١٢٣", "9" * 40]
)
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp: str) -> None:
    assert _refused(timestamp=timestamp).reason == "malformed"


def test_the_tolerance_is_five_minutes_either_way() -> None:
    for now in (NOW - 300, NOW + 300):
        verify_slack(SECRET, body=BODY, timestamp=TS, signature=SIG, now=now)
    assert _refused(now=NOW + 301).reason == "stale"
    assert _refused(now=NOW - 301).reason == "stale"


def test_an_old_request_is_refused_even_with_a_good_signature() -> None:
    old = str(NOW - 3600)
    error = _refused(timestamp=old, signature=sign_slack(SECRET, body=BODY, timestamp=old))
    assert error.reason == "stale"
    assert "old" in str(error)


def test_a_future_request_is_refused() -> None:
    ahead = str(NOW + 3600)
    error = _refused(timestamp=ahead, signature=sign_slack(SECRET, body=BODY, timestamp=ahead))
    assert error.reason == "stale"
    assert "future" in str(error)


def test_refusals_are_401_rejections_that_carry_no_secret() -> None:
    error = _refused(signature="v0=" + "0" * 64)
    assert isinstance(error, RejectedDelivery)
    assert error.status == 401
    assert SECRET not in str(error) and SECRET not in repr(error)


@pytest.mark.parametrize("secret", ["", [], [""]])
def test_an_empty_signing_secret_is_a_setting_bug(secret: object) -> None:
    with pytest.raises(ValueError):
        verify_slack(secret, body=BODY, timestamp=TS, signature=SIG, now=NOW)  # type: ignore[arg-type]


def test_the_replay_key_is_stable_per_request_and_distinct_across_requests() -> None:
    key = replay_key(TS, SIG)
    assert key == replay_key(TS, SIG)
    assert key.startswith("slack:replay:")
    assert SIG[3:] not in key
    other = sign_slack(SECRET, body=BODY + b"&x=1", timestamp=TS)
    assert replay_key(TS, other) != key
    assert replay_key(str(NOW + 1), SIG) != key


def test_the_replay_window_covers_the_whole_tolerance() -> None:
    assert slack_auth.REPLAY_TTL_SECONDS == 2 * slack_auth.DEFAULT_TOLERANCE == 600
