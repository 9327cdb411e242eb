"""Key hygiene (config/settings.py): every secret setting refuses whitespace, control, invisible
and non-ASCII characters, with one line naming the variable and quoting nothing of the value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError, field_validator

from config.settings import ConfigError, Settings, describe_validation_error, load_settings

ROOT = Path(__file__).resolve().parents[1]
HEAD, TAIL = "sk_live_HeAd4821", "TaIl9377xq"
REFUSED = {
    "space": " ",
    "tab": "\t",
    "newline": "\n",
    "nbsp": "\u00a0",
    "zero-width space": "\u200b",
    "bom": "\ufeff",
    "nul": "\x00",
    "del": "\x7f",
    "escape": "\x1b",
    "e acute": "\u00e9",
    "non-bmp emoji": "\U0001f600",
    "line separator": "\u2028",
    "lone surrogate": "\udcff",  # what an undecodable byte in the environment becomes
}
SECRET_FIELDS = [
    name for name, field in Settings.model_fields.items() if "SecretStr" in repr(field.annotation)
]
ALLOWED = [
    'sk"live',
    "sk\\live",
    "sk%41live",
    "sk'live",
    "sk+live",
    "sk&live",
    "sk!#$()*,/:;=?@[]^`{|}~",
]


@pytest.fixture(autouse=True)
def _no_settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def refusal(**values: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **values)
    return str(caught.value)


def value_for(field: str, secret: str) -> object:
    if field == "leadterra_sdr_api_keys":
        return {"sdr_1": "sk_live_fine_key_1", "sdr_2": secret}
    if field == "admin_token":
        return secret + "x" * 16
    return secret


def assert_leaks_nothing(message: str, secret: str, char: str) -> None:
    assert len(message.splitlines()) == 1
    for part in (HEAD, TAIL, HEAD[-6:], TAIL[:6], secret, repr(secret), json.dumps(secret)):
        assert part not in message
    if char != " ":  # the line has spaces of its own
        assert char not in message


def test_every_secret_field_is_checked() -> None:
    """The list the tests below walk: a field typed SecretStr is a secret, whatever its name."""
    assert {"leadterra_api_key", "leadterra_sdr_api_keys", "slack_webhook_url"} <= set(
        SECRET_FIELDS
    )


@pytest.mark.parametrize("char", list(REFUSED.values()), ids=list(REFUSED))
@pytest.mark.parametrize("where", ["start", "inside", "end"])
def test_a_refused_character_in_the_api_key_gives_one_line_that_leaks_nothing(
    char: str, where: str
) -> None:
    secret = {"start": char + HEAD + TAIL, "inside": HEAD + char + TAIL, "end": HEAD + TAIL + char}[
        where
    ]
    message = refusal(leadterra_api_key=secret)
    assert message.startswith("LEADTERRA_API_KEY: contains ")
    assert f"at the {where}" in message or (where == "inside" and "inside" in message)
    assert_leaks_nothing(message, secret, char)


@pytest.mark.parametrize("char", list(REFUSED.values()), ids=list(REFUSED))
@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_every_secret_setting_refuses_each_character(field: str, char: str) -> None:
    secret = HEAD + char + TAIL
    message = refusal(**{field: value_for(field, secret)})
    assert message.startswith(f"{field.upper()}: ")
    assert_leaks_nothing(message, secret, char)


def test_an_invisible_character_is_named_by_code_point_and_a_visible_one_is_not() -> None:
    assert "(U+200B) at the end" in refusal(leadterra_api_key=HEAD + "\u200b")
    message = refusal(leadterra_api_key=HEAD + "\u00e9" + TAIL)
    assert "a non-ASCII character inside" in message
    assert "U+00E9" not in message


def test_the_sdr_key_refused_is_named_by_its_sdr_id() -> None:
    message = refusal(leadterra_sdr_api_keys={"sdr_7": HEAD + "\u00a0"})
    assert message.startswith("LEADTERRA_SDR_API_KEYS: the key of SDR 'sdr_7' contains ")


def test_sdr_keys_as_json_text_are_checked_too() -> None:
    raw = json.dumps({"sdr_1": HEAD + "\u200b" + TAIL})
    message = refusal(leadterra_sdr_api_keys=raw)
    assert message.startswith("LEADTERRA_SDR_API_KEYS: the key of SDR 'sdr_1' contains ")
    assert_leaks_nothing(message, HEAD + "\u200b" + TAIL, "\u200b")


@pytest.mark.parametrize("secret", ALLOWED)
def test_printable_ascii_with_punctuation_is_accepted(secret: str) -> None:
    settings = load_settings(
        _env_file=None,
        leadterra_api_key=secret,
        leadterra_sdr_api_keys={"sdr_1": secret},
        slack_webhook_url=f"https://hooks.slack.test/services/{secret}",
    )
    assert settings.leadterra_api_key == SecretStr(secret)
    assert secret in settings.secret_values()


def test_a_secret_field_added_later_is_checked_and_scrubbed_without_being_listed() -> None:
    class Later(Settings):
        later_token: SecretStr | None = None
        sentinel_passwords: dict[str, SecretStr] = {}

    with pytest.raises(ValidationError) as caught:
        Later(_env_file=None, later_token=HEAD + "\u200b")  # type: ignore[call-arg]
    assert "contains a whitespace, control or invisible character (U+200B)" in str(caught.value)
    with pytest.raises(ValidationError):
        Later(_env_file=None, sentinel_passwords={"a": HEAD + " "})  # type: ignore[call-arg]
    later = Later(_env_file=None, later_token=HEAD, sentinel_passwords={"a": TAIL})  # type: ignore[call-arg]
    assert {HEAD, TAIL} <= set(later.secret_values())


def test_an_error_message_that_would_quote_a_secret_is_replaced() -> None:
    class Quoting(Settings):
        @field_validator("followup_webhook_secret")
        @classmethod
        def _quote(cls, value: SecretStr | None) -> SecretStr | None:
            if value is not None:
                raise ValueError(f"{value.get_secret_value()} is not accepted")
            return value

    with pytest.raises(ValidationError) as caught:
        Quoting(_env_file=None, followup_webhook_secret=HEAD + TAIL)  # type: ignore[call-arg]
    message = describe_validation_error(caught.value)
    assert message == "FOLLOWUP_WEBHOOK_SECRET: is invalid (value_error)"


def test_a_message_citing_a_non_secret_value_is_kept() -> None:
    message = refusal(visibility_timeout="20")
    assert message.startswith("VISIBILITY_TIMEOUT (20 s) must exceed")


@pytest.mark.parametrize("variable", ["LEADTERRA_API_KEY", "LEADTERRA_WEBHOOK_SECRET"])
def test_from_the_environment_a_refused_key_is_one_line(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, HEAD + "\u200b" + TAIL)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value).startswith(f"{variable}: contains ")
    assert_leaks_nothing(str(caught.value), HEAD + "\u200b" + TAIL, "\u200b")


def test_a_real_process_prints_one_line_naming_the_variable_and_exits_2(tmp_path: Path) -> None:
    secret = HEAD + "\u00a0" + TAIL
    env = {"PATH": "/usr/bin:/bin", "LEADTERRA_API_KEY": secret, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", "from config import settings_or_exit; settings_or_exit()"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("leadrouter: configuration error: LEADTERRA_API_KEY: contains ")
    assert_leaks_nothing(line, secret, "\u00a0")
