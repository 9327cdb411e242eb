"""The one typed `Settings` for every process.

Built once at each entry point (`load_settings()`), then passed in. Nothing here reads the
environment at import time. Secrets are `SecretStr`: they never show in a repr, a log line or a
validation error, because errors are reported by variable name only (`ConfigError`). Any field
typed `SecretStr` (or a dict of them) must be printable ASCII without whitespace, so a key pasted
with a space, a BOM or a zero-width character stops the process at start (`secret_problem`).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from worker.errors import ConfigError as ConfigError  # defined in the error tree; exported here
from worker.sla.notes import is_slack_user_id

PLACEHOLDERS = frozenset(
    {"changeme", "change-me", "secret", "sk_live_your_key", "your_key", "xxx", "todo", "<secret>"}
)
DEFAULT_FREE_MAIL = (
    "gmail.com,googlemail.com,outlook.com,hotmail.com,live.com,msn.com,yahoo.com,ymail.com,"
    "icloud.com,me.com,mac.com,aol.com,proton.me,protonmail.com,gmx.com,gmx.de,web.de,"
    "mail.com,zoho.com,yandex.com,yandex.ru,mail.ru,fastmail.com,hey.com,qq.com,163.com"
)

CsvList = Annotated[tuple[str, ...], NoDecode]
#: Leadterra retries a delivery for about 10.6 h; a shorter tolerance would refuse its retries
MIN_WEBHOOK_TOLERANCE = 12 * 3600
#: the shortest reconcile interval: a sweep costs at least one call to GET /v1/replies
MIN_RECONCILE_SECONDS = 15


def _split_csv(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def sentinel_address(entry: str) -> tuple[str, int] | None:
    """`host:port` (or `[v6]:port`) as a pair, or None when it is not one."""
    host, colon, port = entry.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or any(c.isspace() or c in "/@[]" for c in host):
        return None
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return None
    return host, int(port)


def secret_problem(value: str) -> str | None:
    """Why `value` cannot be a key or secret, without quoting it: keys are printable ASCII with
    no whitespace, so a pasted space, line break, BOM or zero-width character is refused at
    start instead of failing every call (and escaping differently in every log line)."""
    for position, char in enumerate(value):
        if "!" <= char <= "~":
            continue
        where = (
            "at the start"
            if position == 0
            else "at the end"
            if position == len(value) - 1
            else "inside"
        )
        invisible = char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        what = (
            f"a whitespace, control or invisible character (U+{ord(char):04X})"
            if invisible
            else "a non-ASCII character"
        )
        return f"contains {what} {where}: keys and secrets must be printable ASCII, no spaces"
    return None


def _secrets_in(value: Any) -> list[tuple[str, SecretStr]]:
    """The SecretStr values in a field's value, each with a label ("" or "the key of SDR 'x' ")."""
    if isinstance(value, SecretStr):
        return [("", value)]
    if isinstance(value, dict):
        return [(f"the key of SDR {k!r} ", v) for k, v in value.items() if isinstance(v, SecretStr)]
    return []


class Settings(BaseSettings):
    """Every variable the service reads, with its default. See the README's settings table."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    # Leadterra
    leadterra_api_key: SecretStr | None = None
    leadterra_base_url: str = "https://app.leadterra.co"
    leadterra_webhook_secret: SecretStr | None = None
    leadterra_webhook_secret_previous: SecretStr | None = None
    leadterra_sdr_api_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    leadterra_timeout_connect: float = Field(3.0, gt=0)
    leadterra_timeout_read: float = Field(10.0, gt=0)
    leadterra_timeout_pool: float = Field(5.0, gt=0)
    leadterra_max_rps: float = Field(20.0, gt=0)
    leadterra_burst: int = Field(5, ge=1)

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "leadrouter:"
    #: Sentinel (worker/redis_conn.py): host:port of each; the master's name; their password
    redis_sentinels: CsvList = ()
    redis_sentinel_master: str | None = None
    redis_sentinel_password: SecretStr | None = None
    #: replicas that must confirm an enqueue or an outcome record (WAIT) before it counts
    redis_min_replicas_ack: int = Field(0, ge=0, le=16)

    # Receiver
    host: str = "0.0.0.0"  # noqa: S104 - the receiver must be reachable from Leadterra
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    positive_classifications: CsvList = ("interested",)
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, ge=3 * 24 * 3600)
    webhook_tolerance_seconds: int = 24 * 3600
    max_connections: int = Field(1000, ge=1, le=100_000)
    request_timeout_seconds: float = Field(10.0, ge=1, le=60)
    keep_alive_seconds: int = Field(5, ge=1, le=300)

    # The operators' listener: /metrics, /readyz, /openapi.json
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(9000, ge=0, le=65535)
    admin_token: SecretStr | None = None

    # Assignment
    assign_category: Literal["A", "B", "C"] = "A"
    assign_skip_icp_check: bool = True
    sdr_cache_seconds: int = Field(30, ge=1)
    hold_recheck_seconds: int = Field(30, ge=1)

    # Worker and Celery
    worker_concurrency: int = Field(32, ge=1, le=1000)
    #: each worker also runs beat's schedule, sent by one process at a time (a Redis lease)
    worker_beat: bool = True
    visibility_timeout: int = Field(900, ge=5)
    max_retries: int = Field(12, ge=0)
    retry_backoff_base: float = Field(2.0, gt=0)
    retry_backoff_max: float = Field(300.0, gt=0)
    max_deliveries: int = Field(5, ge=1)
    #: task events for Flower and celery-exporter (worker_send_task_events, task_send_sent_event)
    celery_events: bool = False

    # Follow-ups
    followup_poll_seconds: float = Field(60.0, gt=0)
    followup_limit: int = Field(200, ge=1, le=200)
    followup_terminal_statuses: CsvList = ("meeting_booked", "won", "lost_*", "archived")
    followup_webhook_url: str | None = None
    followup_webhook_secret: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    working_hours: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)

    # Routing policies
    roster_file: Path | None = None
    sticky_by: Literal["none", "domain", "email"] = "none"
    sticky_days: int = Field(90, ge=1)
    free_mail_domains: CsvList = _split_csv(DEFAULT_FREE_MAIL)
    mailbox_health_seconds: int = Field(60, ge=1)

    # The second path: the reconcile sweep, and polling mode (docs/reconcile.md)
    intake: Literal["webhooks", "polling"] = "webhooks"
    reconcile_seconds: int = Field(300, ge=0)
    reconcile_overlap_seconds: int = Field(900, ge=0)
    reconcile_max_pages: int = Field(50, ge=1, le=10_000)
    reconcile_lookback_hours: int = Field(72, ge=1)

    # The SLA watch after the handoff (docs/sla.md); off until SLA_MINUTES is set
    sla_minutes: float = Field(0.0, ge=0, allow_inf_nan=False)
    sla_action: Literal["remind", "reroute"] = "remind"
    sla_remind_at: float = Field(0.5, ge=0, lt=1)
    sla_max_reroutes: int = Field(1, ge=0, le=20)
    sla_check_seconds: float = Field(60.0, ge=2)
    sla_working_hours_only: bool = True
    sla_escalation_webhook_url: str | None = None
    sla_escalation_slack_webhook_url: SecretStr | None = None

    # Drafts on due follow-ups, sent in one click (docs/drafts.md); off until FOLLOWUP_DRAFTS
    followup_drafts: bool = False
    followup_draft_instructions: str | None = Field(None, max_length=2000)
    followup_draft_timeout_seconds: float = Field(30.0, gt=0, le=600, allow_inf_nan=False)
    followup_drafts_daily_cap: int = Field(200, ge=0)
    public_base_url: str | None = None
    action_secret: SecretStr | None = None
    action_link_ttl_hours: float = Field(24.0, gt=0, le=30 * 24, allow_inf_nan=False)
    slack_signing_secret: SecretStr | None = None
    slack_admin_user_ids: CsvList = ()

    # Operations
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    ready_heartbeat_seconds: int = Field(60, ge=1)
    metrics_flush_seconds: float = Field(5.0, gt=0)

    @field_validator(
        "positive_classifications",
        "followup_terminal_statuses",
        "slack_admin_user_ids",
        "free_mail_domains",
        "redis_sentinels",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: Any) -> tuple[str, ...]:
        return _split_csv(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("leadterra_sdr_api_keys", mode="before")
    @classmethod
    def _sdr_keys(cls, value: Any) -> Any:
        """A JSON object, or the path of a file that holds one."""
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            if not text.startswith("{"):
                try:
                    text = Path(text).read_text(encoding="utf-8")
                except (OSError, ValueError):
                    raise ValueError(
                        "is neither a JSON object nor the path of a readable file"
                    ) from None
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("is not a valid JSON object") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError("must map SDR ids to key strings")
        return value

    @field_validator("working_hours", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError:
                raise ValueError("is not a valid JSON object") from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        return value

    @field_validator("leadterra_base_url", "redis_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a URL with a scheme")
        return value.rstrip("/")

    @field_validator("*")
    @classmethod
    def _secret_hygiene(cls, value: Any) -> Any:
        """Every secret, whatever its field (any SecretStr, or a dict of them), passes
        `secret_problem`; a field added later is covered by its type alone."""
        for label, secret in _secrets_in(value):
            problem = secret_problem(secret.get_secret_value())
            if problem:
                raise ValueError(label + problem)
        return value

    @model_validator(mode="after")
    def _timing_rule(self) -> Settings:
        """One Leadterra call, rate-limit wait included, fits in the visibility timeout; a task
        run (`max_task_seconds`) and a countdown each stay below a third of it (kombu#337)."""
        if self.visibility_timeout <= self.max_call_seconds:
            raise ValueError(
                f"VISIBILITY_TIMEOUT ({self.visibility_timeout} s) must exceed the longest "
                f"Leadterra call ({self.max_call_seconds:.0f} s: its timeouts plus the "
                "rate-limit wait)"
            )
        return self

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if sentinel_address(entry) is None:
                raise ValueError(
                    f"each must be host:port with a port from 1 to 65535 ({entry!r} is not)"
                )
        return value

    @model_validator(mode="after")
    def _sentinel_rules(self) -> Settings:
        """Sentinels need the master's name; the name and password mean nothing without them;
        the primary they name is reached with REDIS_URL's scheme, redis:// or rediss://."""
        if self.redis_sentinels:
            if not self.redis_sentinel_master:
                raise ValueError("REDIS_SENTINEL_MASTER is required when REDIS_SENTINELS is set")
            if not self.redis_url.lower().startswith(("redis://", "rediss://")):
                raise ValueError(
                    "REDIS_URL must be redis:// or rediss:// with REDIS_SENTINELS (its database, "
                    "user, password and TLS are used; Sentinel names the host)"
                )
        else:
            given = [
                name.upper()
                for name in ("redis_sentinel_master", "redis_sentinel_password")
                if getattr(self, name) is not None
            ]
            if given:
                raise ValueError(f"{' and '.join(given)} set without REDIS_SENTINELS")
        return self

    @field_validator("webhook_tolerance_seconds")
    @classmethod
    def _tolerance(cls, value: int) -> int:
        if value < MIN_WEBHOOK_TOLERANCE:
            raise ValueError(
                f"must be at least {MIN_WEBHOOK_TOLERANCE} s (12 h): Leadterra retries a delivery "
                "for about 10.6 h, and a shorter tolerance would refuse its own retries"
            )
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _receiver_rules(self) -> Settings:
        """A delivery is remembered as long as it is accepted; the two listeners differ."""
        if self.dedupe_ttl_seconds < self.webhook_tolerance_seconds:
            raise ValueError(
                f"DEDUPE_TTL_SECONDS ({self.dedupe_ttl_seconds} s) must be at least "
                f"WEBHOOK_TOLERANCE_SECONDS ({self.webhook_tolerance_seconds} s)"
            )
        if self.admin_port == self.port:
            raise ValueError(f"ADMIN_PORT must differ from PORT (both {self.port})")
        return self

    @model_validator(mode="after")
    def _reconcile_rules(self) -> Settings:
        """The sweep runs every 15 s at the most often, is on in polling mode, and never looks
        back past the dedupe markers (an older reply would find its marker gone)."""
        if 0 < self.reconcile_seconds < MIN_RECONCILE_SECONDS:
            raise ValueError(
                f"RECONCILE_SECONDS must be 0 (off) or at least {MIN_RECONCILE_SECONDS}"
            )
        if self.intake == "polling" and self.reconcile_seconds == 0:
            raise ValueError("INTAKE=polling needs the sweep: RECONCILE_SECONDS cannot be 0")
        if self.reconcile_lookback_hours * 3600 > self.dedupe_ttl_seconds:
            raise ValueError(
                f"RECONCILE_LOOKBACK_HOURS ({self.reconcile_lookback_hours} h) must not exceed "
                f"DEDUPE_TTL_SECONDS ({self.dedupe_ttl_seconds} s)"
            )
        return self

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        plain = not (parts.query or parts.fragment)
        if parts.scheme not in ("http", "https") or not parts.netloc or not plain:
            raise ValueError("must be an absolute http(s) URL without query or fragment")
        return value.strip().rstrip("/")

    @field_validator("action_secret")
    @classmethod
    def _action_secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (it signs send links)")
        return value

    @field_validator("slack_admin_user_ids")
    @classmethod
    def _slack_users(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [user for user in value if not is_slack_user_id(user)]
        if wrong:
            raise ValueError("each must be a Slack user id (U or W, then capitals or digits)")
        return value

    @model_validator(mode="after")
    def _draft_rules(self) -> Settings:
        """Drafts need the links' public URL and secret, and a generate that ends inside a task
        run (`max_task_seconds`, the task-deadline rule)."""
        if not self.followup_drafts:
            return self
        missing = [
            name.upper() for name in ("public_base_url", "action_secret") if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"FOLLOWUP_DRAFTS=true needs {' and '.join(missing)}")
        if self.followup_draft_timeout_seconds >= self.max_task_seconds:
            raise ValueError(
                f"FOLLOWUP_DRAFT_TIMEOUT_SECONDS ({self.followup_draft_timeout_seconds:g} s) must "
                f"be below a task run's deadline ({self.max_task_seconds:g} s, "
                "0.3 x VISIBILITY_TIMEOUT)"
            )
        return self

    @model_validator(mode="after")
    def _no_placeholders(self) -> Settings:
        for name in (
            "leadterra_api_key",
            "leadterra_webhook_secret",
            "followup_webhook_secret",
            "action_secret",
            "slack_signing_secret",
        ):
            secret = getattr(self, name)
            if secret is not None and secret.get_secret_value().strip().lower() in PLACEHOLDERS:
                raise ValueError(f"{name.upper()} still holds a placeholder value")
        return self

    # -- derived ----------------------------------------------------------------------------

    @property
    def demo_mode(self) -> bool:
        """No Leadterra key: the run command drives the sandbox instead of the real API."""
        return self.leadterra_api_key is None

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """REDIS_SENTINELS as (host, port) pairs, in the order given."""
        return [address for entry in self.redis_sentinels if (address := sentinel_address(entry))]

    @property
    def rate_block_seconds(self) -> float:
        """The longest a task waits in-thread for the global rate limit before retrying later."""
        return min(20.0, self.visibility_timeout / 4)

    @property
    def leadterra_call_seconds(self) -> float:
        """One Leadterra call's overall deadline, connect, send and the whole answer, enforced
        by the client: its connect, read and pool timeouts added up."""
        return (
            self.leadterra_timeout_connect
            + self.leadterra_timeout_read
            + self.leadterra_timeout_pool
        )

    @property
    def max_call_seconds(self) -> float:
        """The longest one Leadterra call can take: the rate-limit wait plus its deadline."""
        return self.rate_block_seconds + self.leadterra_call_seconds

    @property
    def max_task_seconds(self) -> float:
        """The deadline of every task run, enforced by the task base (worker/jobs/reliable.py,
        worker/budget.py): 0.3 x VISIBILITY_TIMEOUT, below the third a broker countdown may
        take too, so a countdown plus a run end before kombu would deliver the message again.
        A call still running at a task's deadline is cut there."""
        return 0.3 * self.visibility_timeout

    @property
    def max_countdown(self) -> float:
        """The longest wait handed to the broker; longer waits are held in Redis."""
        return min(self.retry_backoff_max, self.visibility_timeout / 3)

    def secret_values(self) -> list[str]:
        """Every secret's plain value, for the log scrubber and the secrets tests: every
        SecretStr field's, and every SecretStr in a dict field (the SDR keys), found by type so a
        secret added later is scrubbed without being listed here."""
        found = [
            secret.get_secret_value()
            for name in type(self).model_fields
            for _, secret in _secrets_in(getattr(self, name))
        ]
        # a secret URL's path alone too (a Slack webhook's token, logged without its host)
        found += [v.split("://", 1)[1].partition("/")[2] for v in found if "://" in v]
        return [v for v in found if len(v) >= 6]

    def require(self, *names: str) -> None:
        """Stop with a ConfigError naming the first of `names` that is unset."""
        for name in names:
            if getattr(self, name) in (None, "", {}):
                raise ConfigError(f"{name.upper()} is required here but not set")


def _secret_inputs(error: Any) -> list[Any]:
    """What a validation error was given for secret fields: its input when it concerns one, or
    the secret fields' inputs when it concerns the whole model (a model validator)."""
    fields = Settings.model_fields
    secret = {name for name, field in fields.items() if "SecretStr" in repr(field.annotation)}
    loc, given = error.get("loc", ()), error.get("input")
    if loc:
        return [given] if str(loc[0]).lower() in secret else []
    if isinstance(given, dict):
        return [value for name, value in given.items() if str(name).lower() in secret]
    return []


def _echoes(message: str, given: Any) -> bool:
    """Whether `message` quotes any text of `given` (a value, or a collection of them)."""
    if isinstance(given, SecretStr):
        given = given.get_secret_value()
    if isinstance(given, str):
        return bool(given) and given in message
    if isinstance(given, dict):
        given = list(given.values())
    if isinstance(given, list | tuple):
        return any(_echoes(message, value) for value in given)
    return False


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the variable and the problem, never the value."""
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if not isinstance(part, int)]
    name = (loc[0] if loc else "settings").upper()
    message = str(first.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    if _echoes(message, _secret_inputs(first)):  # a message quoting a secret it was given
        message = f"is invalid ({first.get('type', 'value_error')})"
    message = " ".join(message.split())  # one line, whatever a validator wrote
    if not loc:
        return message
    return f"{name}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment and `.env`, or raise ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    except SettingsError as error:  # a value pydantic-settings could not even decode
        name = str(error).split('"')[1] if '"' in str(error) else "a setting"
        raise ConfigError(f"{name.upper()}: could not be parsed") from None


def settings_or_exit(**overrides: Any) -> Settings:
    """For entry points: the settings, or one clear line on stderr and exit status 2."""
    try:
        return load_settings(**overrides)
    except ConfigError as error:
        import sys

        print(f"leadrouter: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
