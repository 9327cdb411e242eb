"""config/settings.py: defaults, env and .env reading, secrets, one-line errors, timing rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from pydantic import SecretStr

from config import settings_or_exit
from config.settings import ConfigError, Settings, load_settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk_live_SECRET123"
SDR_SECRET = "sk_live_SDRSECRET456"


@pytest.fixture(autouse=True)
def _no_settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's or CI's environment out of every test here."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def bare_settings(**values: object) -> Settings:
    """Settings from nothing but `values`: no `.env`, none of conftest's test values."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def config_error(**values: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **values)
    return str(caught.value)


# -- defaults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("leadterra_base_url", "https://app.leadterra.co"),
        ("redis_url", "redis://127.0.0.1:6379/0"),
        ("port", 8000),
        ("positive_classifications", ("interested",)),
        ("assign_category", "A"),
        ("assign_skip_icp_check", True),
        ("leadterra_api_key", None),
        ("leadterra_sdr_api_keys", {}),
    ],
)
def test_the_public_contract_has_these_defaults(field: str, expected: object) -> None:
    assert getattr(bare_settings(), field) == expected


def test_without_an_api_key_the_service_runs_in_demo_mode() -> None:
    assert bare_settings().demo_mode is True
    assert bare_settings(leadterra_api_key=SECRET).demo_mode is False


# -- environment and .env ---------------------------------------------------------------------


def test_settings_are_read_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADTERRA_BASE_URL", "https://eu.leadterra.example/")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/2")
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("POSITIVE_CLASSIFICATIONS", "interested,referral")
    monkeypatch.setenv("ASSIGN_CATEGORY", "B")
    monkeypatch.setenv("ASSIGN_SKIP_ICP_CHECK", "false")
    monkeypatch.setenv("LEADTERRA_API_KEY", SECRET)

    settings = load_settings(_env_file=None)

    assert settings.leadterra_base_url == "https://eu.leadterra.example"
    assert settings.redis_url == "redis://cache:6380/2"
    assert settings.port == 9001
    assert settings.positive_classifications == ("interested", "referral")
    assert settings.assign_category == "B"
    assert settings.assign_skip_icp_check is False
    assert settings.leadterra_api_key is not None
    assert settings.leadterra_api_key.get_secret_value() == SECRET


def test_environment_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("port", "8123")
    assert load_settings(_env_file=None).port == 8123


def test_positive_classifications_from_the_environment_are_split_as_csv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSITIVE_CLASSIFICATIONS", " interested , referral ,, ")
    assert load_settings(_env_file=None).positive_classifications == ("interested", "referral")


def test_settings_are_read_from_a_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"LEADTERRA_API_KEY={SECRET}\nPORT=8111\nASSIGN_CATEGORY=C\nUNKNOWN_VARIABLE=ignored\n",
        encoding="utf-8",
    )

    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]

    assert settings.port == 8111
    assert settings.assign_category == "C"
    assert settings.leadterra_api_key == SecretStr(SECRET)


def test_an_environment_variable_wins_over_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=8111\n", encoding="utf-8")
    monkeypatch.setenv("PORT", "8222")
    assert Settings(_env_file=env_file).port == 8222  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("interested", ("interested",)),
        ("interested,referral", ("interested", "referral")),
        (" interested , referral ,, ", ("interested", "referral")),
        ("", ()),
        (["interested", "referral"], ("interested", "referral")),
    ],
)
def test_positive_classifications_are_parsed_as_csv(raw: object, expected: tuple[str, ...]) -> None:
    assert bare_settings(positive_classifications=raw).positive_classifications == expected


# -- secrets ----------------------------------------------------------------------------------


def secret_settings() -> Settings:
    return make_settings(
        leadterra_api_key=SECRET,
        leadterra_webhook_secret="whsec_SECRET789",
        leadterra_webhook_secret_previous="whsec_PREVIOUS000",
        followup_webhook_secret="fwsec_SECRET321",
        slack_webhook_url="https://hooks.slack.example/T000/SECRETPATH",
        leadterra_sdr_api_keys={"sdr_1": SDR_SECRET},
    )


@pytest.mark.parametrize("render", [repr, str, lambda s: s.model_dump_json()])
def test_secrets_never_appear_when_settings_are_rendered(render) -> None:  # type: ignore[no-untyped-def]
    settings = secret_settings()
    text = render(settings)
    assert settings.secret_values()  # the values exist...
    for value in settings.secret_values():
        assert value not in text  # ...but never show


def test_secret_values_lists_every_secret_including_the_sdr_keys() -> None:
    assert set(secret_settings().secret_values()) == {
        SECRET,
        "whsec_SECRET789",
        "whsec_PREVIOUS000",
        "fwsec_SECRET321",
        "https://hooks.slack.example/T000/SECRETPATH",
        "T000/SECRETPATH",  # the URL's path alone, as it is logged without the host
        SDR_SECRET,
    }


def test_secret_values_is_empty_without_secrets() -> None:
    assert bare_settings().secret_values() == []


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"port": "abc"}, "PORT"),
        ({"leadterra_api_key": f"{SECRET}x", "assign_category": "Z"}, "ASSIGN_CATEGORY"),
        ({"leadterra_api_key": f" {SECRET}x", "assign_category": "Z"}, "LEADTERRA_API_KEY"),
        ({"leadterra_sdr_api_keys": '{"sdr_1": "' + SDR_SECRET + '"'}, "LEADTERRA_SDR_API_KEYS"),
        (
            {"leadterra_sdr_api_keys": {"sdr_1": SDR_SECRET, "sdr_2": 7}},
            "LEADTERRA_SDR_API_KEYS",
        ),
        ({"leadterra_sdr_api_keys": f"[{SDR_SECRET!r}]"}, "LEADTERRA_SDR_API_KEYS"),
        ({"leadterra_sdr_api_keys": SDR_SECRET}, "LEADTERRA_SDR_API_KEYS"),
    ],
)
def test_a_config_error_names_the_variable_and_never_echoes_a_secret(
    values: dict[str, object], variable: str
) -> None:
    values = {"leadterra_api_key": SECRET, **values}
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **values)
    message = str(caught.value)
    printed = "".join(traceback.format_exception(caught.value))
    assert variable in message
    assert "\n" not in message
    for secret in (SECRET, SDR_SECRET, "SECRET", "SDRSECRET"):
        assert secret not in message
        assert secret not in printed


def test_an_invalid_port_gives_one_line_starting_with_port() -> None:
    message = config_error(port="abc")
    assert message.startswith("PORT")
    assert "abc" not in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("port", "PORT"),
        ("assign_category", "ASSIGN_CATEGORY"),
        ("assign_skip_icp_check", "ASSIGN_SKIP_ICP_CHECK"),
        ("visibility_timeout", "VISIBILITY_TIMEOUT"),
        ("leadterra_base_url", "LEADTERRA_BASE_URL"),
        ("redis_url", "REDIS_URL"),
        ("log_level", "LOG_LEVEL"),
    ],
)
def test_an_invalid_value_gives_one_line_naming_its_variable(field: str, variable: str) -> None:
    message = config_error(**{field: "not-valid"})
    assert message.startswith(f"{variable}: ")
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("placeholder", ["changeme", "sk_live_your_key", "CHANGEME", "xxx"])
@pytest.mark.parametrize(
    "field", ["leadterra_api_key", "leadterra_webhook_secret", "followup_webhook_secret"]
)
def test_placeholder_secrets_are_rejected_naming_the_variable(field: str, placeholder: str) -> None:
    message = config_error(**{field: placeholder})
    assert field.upper() in message
    assert "placeholder" in message
    assert placeholder.strip() not in message


def test_a_real_looking_key_is_not_mistaken_for_a_placeholder() -> None:
    assert bare_settings(leadterra_api_key="sk_live_01HZA1TPNQ8RD4KF").leadterra_api_key


# -- LEADTERRA_SDR_API_KEYS -------------------------------------------------------------------


def test_sdr_api_keys_accept_a_json_object() -> None:
    settings = bare_settings(leadterra_sdr_api_keys=json.dumps({"sdr_1": SDR_SECRET}))
    assert settings.leadterra_sdr_api_keys == {"sdr_1": SecretStr(SDR_SECRET)}


def test_sdr_api_keys_accept_the_path_of_a_json_file(tmp_path: Path) -> None:
    keys = tmp_path / "sdr-keys.json"
    keys.write_text(json.dumps({"sdr_1": SDR_SECRET, "sdr_2": "sk_live_OTHER789"}), "utf-8")
    settings = bare_settings(leadterra_sdr_api_keys=str(keys))
    assert {k: v.get_secret_value() for k, v in settings.leadterra_sdr_api_keys.items()} == {
        "sdr_1": SDR_SECRET,
        "sdr_2": "sk_live_OTHER789",
    }


def test_sdr_api_keys_from_the_environment_accept_a_json_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADTERRA_SDR_API_KEYS", json.dumps({"sdr_1": SDR_SECRET}))
    settings = load_settings(_env_file=None)
    assert settings.leadterra_sdr_api_keys == {"sdr_1": SecretStr(SDR_SECRET)}


def test_sdr_api_keys_from_the_environment_accept_the_path_of_a_json_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Known bug: see the report. pydantic-settings JSON-decodes the variable first."""
    keys = tmp_path / "sdr-keys.json"
    keys.write_text(json.dumps({"sdr_1": SDR_SECRET}), "utf-8")
    monkeypatch.setenv("LEADTERRA_SDR_API_KEYS", str(keys))
    error: Exception | None = None
    try:
        settings = load_settings(_env_file=None)
    except Exception as exc:  # the failure itself is what this test reports
        error = exc
    assert error is None, (
        "BUG config/settings.py:51: LEADTERRA_SDR_API_KEYS=<path> from the environment is "
        "JSON-decoded by pydantic-settings before the _sdr_keys validator runs, and escapes "
        f"load_settings as {type(error).__name__}: {error}. "
        "Fix: annotate the field Annotated[dict[str, SecretStr], NoDecode]."
    )
    assert settings.leadterra_sdr_api_keys == {"sdr_1": SecretStr(SDR_SECRET)}


def test_invalid_sdr_api_keys_from_the_environment_give_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same root cause as the file-path test: the bad value never reaches our validator."""
    monkeypatch.setenv("LEADTERRA_SDR_API_KEYS", f"{{not json {SDR_SECRET}")
    error: Exception | None = None
    try:
        load_settings(_env_file=None)
    except Exception as exc:  # the failure itself is what this test reports
        error = exc
    assert isinstance(error, ConfigError), (
        "BUG config/settings.py:51 and :242: an invalid LEADTERRA_SDR_API_KEYS from the "
        f"environment raises {type(error).__name__} instead of ConfigError, so "
        "settings_or_exit dies with a traceback. Fix: NoDecode on the field (and catch "
        "pydantic_settings.SettingsError in load_settings)."
    )
    assert str(error).startswith("LEADTERRA_SDR_API_KEYS")
    assert SDR_SECRET not in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        "not json and not a file",
        "{not json",
        "[1, 2]",
        '{"sdr_1": 42}',
        "/nonexistent/sdr-keys.json",
    ],
)
def test_invalid_sdr_api_keys_name_the_variable_without_echoing_the_value(raw: str) -> None:
    message = config_error(leadterra_sdr_api_keys=raw)
    assert message.startswith("LEADTERRA_SDR_API_KEYS: ")
    assert raw not in message


def test_a_file_of_sdr_api_keys_holding_a_list_is_rejected(tmp_path: Path) -> None:
    keys = tmp_path / "sdr-keys.json"
    keys.write_text(json.dumps([SDR_SECRET]), "utf-8")
    message = config_error(leadterra_sdr_api_keys=str(keys))
    assert message.startswith("LEADTERRA_SDR_API_KEYS: ")
    assert SDR_SECRET not in message


def test_a_long_sdr_api_keys_value_gives_a_config_error_not_an_os_error() -> None:
    """Known bug: see the report. Path(value).is_file() raises ENAMETOOLONG past 255 bytes."""
    raw = "sk_live_" + "SECRET" * 50  # a key pasted where JSON was expected
    error: Exception | None = None
    try:
        load_settings(_env_file=None, leadterra_sdr_api_keys=raw)
    except Exception as exc:  # the failure itself is what this test reports
        error = exc
    assert isinstance(error, ConfigError), (
        "BUG config/settings.py:129-130: Path(text).is_file() raises OSError (File name too "
        "long) for a value over 255 bytes; it escapes pydantic and load_settings with the "
        f"whole value, a secret, in its message ({type(error).__name__}). Fix: turn OSError "
        "from is_file()/read_text() into ValueError."
    )
    assert str(error).startswith("LEADTERRA_SDR_API_KEYS: ")
    assert "SECRET" not in str(error)


# -- timing rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"visibility_timeout": 20},
        {"visibility_timeout": 24},
        {"visibility_timeout": 60, "leadterra_timeout_read": 100.0},
    ],
)
def test_a_visibility_timeout_too_small_for_the_timeouts_is_a_config_error(
    values: dict[str, object],
) -> None:
    message = config_error(**values)
    assert message.startswith("VISIBILITY_TIMEOUT")
    assert len(message.splitlines()) == 1


def test_a_visibility_timeout_just_above_the_longest_task_run_is_accepted() -> None:
    settings = bare_settings(visibility_timeout=25)
    assert settings.max_task_seconds < settings.visibility_timeout


@pytest.mark.parametrize("visibility_timeout", [25, 60, 900, 3600])
def test_every_task_runs_under_a_deadline_below_a_third_of_the_visibility_timeout(
    visibility_timeout: int,
) -> None:
    settings = bare_settings(visibility_timeout=visibility_timeout)
    assert settings.max_task_seconds == pytest.approx(0.3 * visibility_timeout)
    assert settings.max_task_seconds < visibility_timeout / 3


def test_a_leadterra_call_has_an_overall_deadline_of_its_timeouts_added_up() -> None:
    settings = bare_settings(
        leadterra_timeout_connect=1.5, leadterra_timeout_read=4, leadterra_timeout_pool=0.5
    )
    assert settings.leadterra_call_seconds == 6.0
    assert settings.max_call_seconds == settings.rate_block_seconds + 6.0


@pytest.mark.parametrize("visibility_timeout", [60, 900, 3600])
@pytest.mark.parametrize("retry_backoff_max", [1.0, 300.0, 100_000.0])
def test_max_countdown_stays_below_the_visibility_timeout(
    visibility_timeout: int, retry_backoff_max: float
) -> None:
    settings = make_settings(
        visibility_timeout=visibility_timeout, retry_backoff_max=retry_backoff_max
    )
    assert 0 < settings.max_countdown < settings.visibility_timeout
    assert settings.max_countdown <= retry_backoff_max


# -- require() --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "missing"),
    [
        (("leadterra_api_key",), "LEADTERRA_API_KEY"),
        (("redis_url", "leadterra_webhook_secret"), "LEADTERRA_WEBHOOK_SECRET"),
        (("leadterra_sdr_api_keys",), "LEADTERRA_SDR_API_KEYS"),
        (("followup_webhook_url", "leadterra_api_key"), "FOLLOWUP_WEBHOOK_URL"),
    ],
)
def test_require_names_the_first_unset_setting(names: tuple[str, ...], missing: str) -> None:
    with pytest.raises(ConfigError) as caught:
        bare_settings().require(*names)
    assert str(caught.value).startswith(missing)


def test_require_passes_when_everything_is_set() -> None:
    settings = make_settings(leadterra_sdr_api_keys={"sdr_1": SDR_SECRET})
    assert (
        settings.require("leadterra_api_key", "leadterra_webhook_secret", "leadterra_sdr_api_keys")
        is None
    )


# -- settings_or_exit -------------------------------------------------------------------------


def test_settings_or_exit_returns_valid_settings() -> None:
    settings = settings_or_exit(_env_file=None, port=8123)
    assert isinstance(settings, Settings)
    assert settings.port == 8123


def test_settings_or_exit_prints_one_line_and_exits_with_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        settings_or_exit(_env_file=None, port="abc", leadterra_api_key=SECRET)
    out, err = capsys.readouterr()
    assert caught.value.code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "PORT" in err
    assert "Traceback" not in err
    assert SECRET not in err


def test_settings_or_exit_in_a_real_process_prints_one_clean_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update({"PORT": "abc", "LEADTERRA_API_KEY": SECRET, "PYTHONPATH": str(ROOT)})
    result = subprocess.run(
        [sys.executable, "-c", "from config import settings_or_exit; settings_or_exit()"],
        cwd=tmp_path,  # no .env here
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr


# -- the receiver's guards and the admin listener (issue 12) ---------------------------------


def test_the_receiver_guards_and_the_admin_listener_have_these_defaults() -> None:
    settings = bare_settings()
    assert settings.max_connections == 1000
    assert settings.request_timeout_seconds == 10.0
    assert settings.keep_alive_seconds == 5
    assert settings.webhook_tolerance_seconds == 86_400
    assert (settings.admin_host, settings.admin_port, settings.admin_token) == (
        "127.0.0.1",
        9000,
        None,
    )


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"max_connections": 0}, "MAX_CONNECTIONS"),
        ({"request_timeout_seconds": 0.5}, "REQUEST_TIMEOUT_SECONDS"),
        ({"request_timeout_seconds": 61}, "REQUEST_TIMEOUT_SECONDS"),
        ({"keep_alive_seconds": 0}, "KEEP_ALIVE_SECONDS"),
        ({"admin_port": 70000}, "ADMIN_PORT"),
        ({"admin_port": -1}, "ADMIN_PORT"),
        ({"webhook_tolerance_seconds": 38_000}, "WEBHOOK_TOLERANCE_SECONDS"),
        ({"webhook_tolerance_seconds": "abc"}, "WEBHOOK_TOLERANCE_SECONDS"),
    ],
)
def test_out_of_range_receiver_settings_are_refused_by_name(values, variable) -> None:
    message = config_error(**values)
    assert message.startswith(variable), message
    assert len(message.splitlines()) == 1


def test_a_tolerance_under_leadterras_retry_horizon_is_refused_with_the_reason() -> None:
    message = config_error(webhook_tolerance_seconds=10 * 3600)
    assert message.startswith("WEBHOOK_TOLERANCE_SECONDS")
    assert "10.6 h" in message
    assert bare_settings(webhook_tolerance_seconds=12 * 3600).webhook_tolerance_seconds == 43_200


def test_a_dedupe_ttl_shorter_than_the_tolerance_is_refused_naming_both() -> None:
    message = config_error(webhook_tolerance_seconds=10 * 86_400, dedupe_ttl_seconds=7 * 86_400)
    assert len(message.splitlines()) == 1
    assert "DEDUPE_TTL_SECONDS" in message and "WEBHOOK_TOLERANCE_SECONDS" in message
    assert bare_settings(webhook_tolerance_seconds=7 * 86_400).dedupe_ttl_seconds == 7 * 86_400


def test_the_admin_port_must_differ_from_the_public_one_unless_picked_freely() -> None:
    assert "ADMIN_PORT" in config_error(port=9000)
    assert bare_settings(admin_port=0).admin_port == 0


def test_the_admin_token_is_a_secret_of_at_least_16_characters() -> None:
    token = "adm_" + "k" * 28
    settings = bare_settings(admin_token=token)
    assert token not in repr(settings)
    assert token in settings.secret_values()
    message = config_error(admin_token="short_token_1")
    assert message.startswith("ADMIN_TOKEN") and "short_token_1" not in message


# -- Redis Sentinel and replica acknowledgement -------------------------------------------------


def test_sentinels_are_read_from_the_environment_as_host_port_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", " 10.0.0.1:26379, sentinel-b:26380 ,[::1]:26381")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "leadrouter")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", "sentinel-pass-123")
    settings = load_settings(_env_file=None)
    assert settings.sentinel_addresses == [
        ("10.0.0.1", 26379),
        ("sentinel-b", 26380),
        ("::1", 26381),
    ]
    assert settings.redis_sentinel_password == SecretStr("sentinel-pass-123")
    assert "sentinel-pass-123" in settings.secret_values()


def test_without_sentinels_redis_url_alone_is_used_and_nothing_is_acknowledged() -> None:
    settings = bare_settings()
    assert settings.redis_sentinels == ()
    assert settings.sentinel_addresses == []
    assert settings.redis_sentinel_master is None
    assert settings.redis_min_replicas_ack == 0


@pytest.mark.parametrize("entry", ["sentinel-a", "host:0", "host:65536", "host:port", ":26379"])
def test_a_sentinel_that_is_not_host_and_port_is_refused_in_one_line(entry: str) -> None:
    message = config_error(redis_sentinels=f"ok:26379,{entry}", redis_sentinel_master="m")
    assert message.startswith("REDIS_SENTINELS: each must be host:port")
    assert "\n" not in message


def test_sentinels_need_the_masters_name() -> None:
    message = config_error(redis_sentinels="127.0.0.1:26379")
    assert message == "REDIS_SENTINEL_MASTER is required when REDIS_SENTINELS is set"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"redis_sentinel_master": "leadrouter"}, "REDIS_SENTINEL_MASTER"),
        ({"redis_sentinel_password": "sentinel-pass-123"}, "REDIS_SENTINEL_PASSWORD"),
    ],
)
def test_sentinel_settings_without_sentinels_are_refused(values: dict, named: str) -> None:
    assert config_error(**values) == f"{named} set without REDIS_SENTINELS"


def test_sentinels_reach_the_primary_with_redis_or_rediss_only() -> None:
    message = config_error(
        redis_sentinels="127.0.0.1:26379",
        redis_sentinel_master="leadrouter",
        redis_url="unix:///var/run/redis.sock",
    )
    assert message.startswith("REDIS_URL must be redis:// or rediss:// with REDIS_SENTINELS")


def test_a_bad_sentinel_password_is_refused_without_showing_it() -> None:
    message = config_error(
        redis_sentinels="127.0.0.1:26379",
        redis_sentinel_master="leadrouter",
        redis_sentinel_password="pass word\u200b",
    )
    assert message.startswith("REDIS_SENTINEL_PASSWORD: contains")
    assert "pass word" not in message


@pytest.mark.parametrize("value", [-1, 17])
def test_replica_acks_are_from_0_to_16(value: int) -> None:
    assert config_error(redis_min_replicas_ack=value).startswith("REDIS_MIN_REPLICAS_ACK:")
