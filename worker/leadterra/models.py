"""Typed views of Leadterra's JSON, parsed tolerantly.

Unknown fields are ignored, enums stay open strings, ids are opaque, and timestamps parse with or
without milliseconds. `unwrap` accepts every envelope the docs show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic.alias_generators import to_camel


def _utc(moment: datetime) -> datetime:
    """Leadterra's times are UTC; a naive one (no zone) is taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class ApiModel(BaseModel):
    """Base for Leadterra's objects: camelCase on the wire, snake_case here, extras ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Sdr(ApiModel):
    id: str
    name: str | None = None
    email: str | None = None
    gmail_connected: bool = False
    gmail_email: str | None = None


class AssignResult(ApiModel):
    handoff_id: str | None = None
    thread_id: str | None = None
    message_id: str | None = None
    gmail_thread_id: str | None = None

    def identified(self) -> bool:
        """Whether the answer names what the assign made (the documented answer names all)."""
        return any((self.handoff_id, self.thread_id, self.message_id, self.gmail_thread_id))


class FollowUp(ApiModel):
    id: str
    thread_id: str | None = None
    sdr_id: str | None = None
    status: str = "pending"
    due_at: UtcDatetime


class Thread(ApiModel):
    id: str
    contact_email: str | None = None
    contact_name: str | None = None
    subject: str | None = None
    status: str | None = None
    category: str | None = None
    priority_score: int | float | None = None
    last_message_at: UtcDatetime | None = None
    snoozed: bool | None = None


class InboxPage(ApiModel):
    threads: list[Thread] = Field(default_factory=list)
    total: int | None = None
    has_more: bool = False


class GmailStatus(ApiModel):
    connected: bool = False
    email: str | None = None
    health_state: str = "disconnected"
    last_synced_at: UtcDatetime | None = None
    last_sync_error: str | None = None


class Webhook(ApiModel):
    id: str
    url: str | None = None
    events: list[str] = Field(default_factory=list)
    status: str | None = None
    created_at: UtcDatetime | None = None


class Draft(ApiModel):
    """A generated reply draft, with its insight's `confidence` (None when none was given)."""

    id: str
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    confidence: float | None = None


class SentDraft(ApiModel):
    message_id: str | None = None


def _lenient_utc(value: Any) -> Any:
    """An unreadable `receivedAt` becomes None (the reply is still a reply), not an error."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


class Reply(ApiModel):
    """One item of `GET /v1/replies`; the classification stays an open string."""

    id: str = Field(min_length=1, max_length=200)
    email: str | None = None
    campaign_id: str | None = None
    classification: str | None = None
    received_at: Annotated[UtcDatetime | None, BeforeValidator(_lenient_utc)] = None
    thread_snippet: str | None = None


@dataclass(frozen=True)
class RepliesPage:
    """One page of `GET /v1/replies`: the replies it held (unreadable items left out and
    counted), and whether the server said more follow (None when it said nothing)."""

    replies: list[Reply]
    more: bool | None = None
    unreadable: int = 0


def replies_page(body: Any, page: int, per_page: int) -> RepliesPage:
    """A page from any of the three envelopes: a bare array, `{data:[...]}`, or
    `{replies:[...], pagination:{total, page, perPage}}` (also inside `data`)."""
    replies, unreadable = [], 0
    for item in unwrap_list(body):
        try:
            replies.append(Reply.model_validate(item))
        except ValidationError:
            unreadable += 1
    return RepliesPage(replies, _more(body, page, per_page), unreadable)


def _more(body: Any, page: int, per_page: int) -> bool | None:
    """Whether the envelope says another page follows: `hasMore`, or `pagination`'s total."""
    for scope in (body, body.get("data") if isinstance(body, dict) else None):
        if not isinstance(scope, dict):
            continue
        paging = scope.get("pagination")
        paging = paging if isinstance(paging, dict) else scope
        if isinstance(paging.get("hasMore"), bool):
            return bool(paging["hasMore"])
        total = paging.get("total")
        if isinstance(total, int) and not isinstance(total, bool):
            size = paging.get("perPage")
            size = size if isinstance(size, int) and size > 0 else per_page
            at = paging.get("page")
            at = at if isinstance(at, int) and at > 0 else page
            return at * size < total
    return None


LIST_KEYS = ("data", "threads", "replies", "sdrs", "followups", "items", "results")
OBJECT_KEYS = ("data", "webhook", "result")


def unwrap_list(body: Any, depth: int = 3) -> list[Any]:
    """A list from a bare array, `{data:[...]}`, `{data:{threads:[...]}}`, `{replies:[...]}`...,
    looking at most `depth` envelopes deep (a garbled `{data:{data:...}}` ends, not recurses)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and depth > 0:
        for key in LIST_KEYS:
            if key in body:
                inner = body[key]
                if isinstance(inner, list):
                    return inner
                if isinstance(inner, dict):
                    return unwrap_list(inner, depth - 1)
    return []


def unwrap_object(body: Any) -> dict[str, Any]:
    """An object from `{data:{...}}`, `{webhook:{...}}`, or the top level."""
    if isinstance(body, dict):
        for key in OBJECT_KEYS:
            inner = body.get(key)
            if isinstance(inner, dict):
                return inner
        return body
    return {}


def iso_ms(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and Z, the form Leadterra's own examples send."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
