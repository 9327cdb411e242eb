"""What a webhook-sender job is asked to do, parsed from the control API's JSON.

Keys are camelCase; the snake_case spellings (`duplicate_share`, `retry_scale`) are accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leadterra_sandbox.errors import invalid

#: Leadterra's documented offsets between attempts, in seconds, and its attempt cap
RETRY_DELAYS = (60.0, 300.0, 1800.0, 7200.0, 28800.0)
MAX_ATTEMPTS = 6
CLASSIFICATIONS = (
    "interested",
    "not_interested",
    "out_of_office",
    "bounce",
    "unsubscribe",
    "referral",
)
SNIPPETS = {
    "interested": "Sounds interesting, can we talk next week?",
    "not_interested": "Not for us, please stop emailing.",
    "out_of_office": "I am out of the office until Monday.",
    "bounce": "Delivery to the following recipient failed permanently.",
    "unsubscribe": "Please remove me from your list.",
    "referral": "I am not the right person, try my colleague.",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _str_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise invalid(f"{name} must be a non-empty list of strings")
    return value


def _share(spec: dict[str, Any], name: str) -> float:
    value = spec.get(name, 0.0)
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        raise invalid(f"{name} must be a number from 0 to 1")
    return float(value)


@dataclass
class SendSpec:
    url: str
    secret: str
    count: int
    rate: float = 0.0
    concurrency: int = 10
    mix: dict[str, float] = field(default_factory=lambda: {"interested": 1.0})
    duplicate_share: float = 0.0
    redeliver_share: float = 0.0
    reply_ids: list[str] | None = None
    emails: list[str] | None = None
    reply_id_prefix: str = "rpl_"
    email_domains: list[str] = field(default_factory=lambda: ["example.com"])
    campaign_ids: list[str] = field(default_factory=lambda: ["camp_sandbox"])
    timeout: float = 10.0
    retry_scale: float = 1.0
    drop_share: float | None = None  # None: the sandbox-wide share (POST /_control/webhooks/drop)

    @classmethod
    def from_json(cls, raw: Any) -> SendSpec:
        if not isinstance(raw, dict):
            raise invalid("the body must be a JSON object")
        spec = {_camel(k): v for k, v in raw.items()}
        url, secret = spec.get("url"), spec.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("url must be an http(s) URL")
        if not isinstance(secret, str) or not secret:
            raise invalid("secret must be a non-empty string")
        reply_ids = _str_list(spec.get("replyIds"), "replyIds")
        count = spec.get("count", len(reply_ids) if reply_ids else 1)
        if not isinstance(count, int) or not 0 <= count <= 1_000_000:
            raise invalid("count must be an integer from 0 to 1000000")
        sent = cls(url=url, secret=secret, count=count, reply_ids=reply_ids)
        for name, low, high in (
            ("rate", 0, 1e6),
            ("concurrency", 1, 2000),
            ("timeout", 0.001, 600),
            ("retryScale", 0, 1e3),
        ):
            value = spec.get(name)
            if value is None:
                continue
            if not isinstance(value, int | float) or not low <= value <= high:
                raise invalid(f"{name} must be a number from {low} to {high}")
            setattr(sent, {"retryScale": "retry_scale"}.get(name, name), value)
        sent.concurrency = int(sent.concurrency)
        mix = spec.get("mix", spec.get("classifications", sent.mix))
        if (
            not isinstance(mix, dict)
            or not mix
            or not all(
                isinstance(k, str) and isinstance(v, int | float) and v >= 0 for k, v in mix.items()
            )
            or not sum(mix.values())
        ):
            raise invalid("mix must map classifications to non-negative weights")
        sent.mix = {k: float(v) for k, v in mix.items()}
        sent.duplicate_share = _share(spec, "duplicateShare")
        sent.redeliver_share = _share(spec, "redeliverShare")
        if spec.get("dropShare") is not None:
            sent.drop_share = _share(spec, "dropShare")
        sent.emails = _str_list(spec.get("emails"), "emails")
        sent.email_domains = (
            _str_list(spec.get("emailDomains"), "emailDomains") or sent.email_domains
        )
        sent.campaign_ids = _str_list(spec.get("campaignIds"), "campaignIds") or sent.campaign_ids
        prefix = spec.get("replyIdPrefix", sent.reply_id_prefix)
        if not isinstance(prefix, str):
            raise invalid("replyIdPrefix must be a string")
        sent.reply_id_prefix = prefix
        return sent

    def retry_delay(self, attempts_made: int) -> float:
        """The wait before attempt `attempts_made + 1`, on the (scaled) schedule."""
        return RETRY_DELAYS[min(attempts_made, len(RETRY_DELAYS)) - 1] * self.retry_scale

    def public(self) -> dict[str, Any]:
        """The spec as reported back: everything but the secret."""
        return {
            "url": self.url,
            "count": self.count,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "mix": self.mix,
            "duplicateShare": self.duplicate_share,
            "redeliverShare": self.redeliver_share,
            "replyIdPrefix": self.reply_id_prefix,
            "emailDomains": self.email_domains,
            "campaignIds": self.campaign_ids,
            "timeout": self.timeout,
            "retryScale": self.retry_scale,
            "dropShare": self.drop_share,
        }
