"""The /v1 endpoints as plain functions of a `Ctx`, returning what goes under `data`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from leadterra_sandbox import actions, draft_actions
from leadterra_sandbox.errors import ApiError, invalid, not_found
from leadterra_sandbox.records import CATEGORIES, THREAD_STATUSES
from leadterra_sandbox.state import ORDERINGS, State

DUE_LIMIT = (50, 200)  # default, maximum
INBOX_LIMIT = (50, 100)


@dataclass(slots=True)
class Ctx:
    """One call as a handler sees it. `sdr_id` is the key's label: an SDR id or "workspace"."""

    state: State
    request: web.Request
    body: Any
    sdr_id: str

    def param(self) -> str:
        return self.request.match_info["id"]


Endpoint = Callable[[Ctx], Any]


def _int(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter, clamped into [low, high]; 400 when it is not a number."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer") from None
    return max(low, min(value, high))


def _flag(query: MultiMapping[str], name: str) -> bool | None:
    raw = query.get(name)
    return None if raw is None else raw.strip().lower() == "true"


def list_sdrs(ctx: Ctx) -> Any:
    return [sdr.api() for sdr in ctx.state.sdrs.values()]


def list_replies(ctx: Ctx) -> Any:
    """Newest first, paged by `page`/`perPage`, in the envelope set (`listing.py`)."""
    campaign_id = ctx.request.query.get("campaignId")
    if campaign_id is not None and campaign_id not in ctx.state.campaigns:
        raise ApiError(404, "campaign_not_found", "no such campaign in the workspace")
    query = ctx.request.query
    page = _int(query, "page", 1, 1, 1 << 31)
    per_page = _int(query, "perPage", 0, 1, 1 << 31) or None  # clamped by the listing
    return ctx.state.listing.answer(ctx.state.replies_newest(campaign_id), page, per_page)


def assign(ctx: Ctx) -> Any:
    return actions.assign(ctx.state, ctx.param(), ctx.body).result()


def create_webhook(ctx: Ctx) -> Any:
    return actions.register_webhook(ctx.state, ctx.body).api()


def due_followups(ctx: Ctx) -> Any:
    query = ctx.request.query
    limit = _int(query, "limit", DUE_LIMIT[0], 1, DUE_LIMIT[1])
    upcoming = _flag(query, "includeUpcoming") is True
    return [f.api() for f in ctx.state.due(ctx.sdr_id, limit, upcoming)]


def complete_followup(ctx: Ctx) -> Any:
    return actions.complete(ctx.state, ctx.sdr_id, ctx.param()).api()


def skip_followup(ctx: Ctx) -> Any:
    return actions.skip(ctx.state, ctx.sdr_id, ctx.param(), ctx.body).api()


def reschedule_followup(ctx: Ctx) -> Any:
    return actions.reschedule(ctx.state, ctx.sdr_id, ctx.param(), ctx.body).api()


def schedule_followup(ctx: Ctx) -> Any:
    return actions.schedule(ctx.state, ctx.sdr_id, ctx.param(), ctx.body).api()


def inbox(ctx: Ctx) -> Any:
    query = ctx.request.query
    statuses = frozenset(query.getall("status", ()))
    category = query.get("category")
    order_by = query.get("orderBy") or "priority"
    if not statuses <= set(THREAD_STATUSES):
        raise invalid(f"status must be among {', '.join(THREAD_STATUSES)}")
    if category is not None and category not in CATEGORIES:
        raise invalid("category must be A, B or C")
    if order_by not in ORDERINGS:
        raise invalid(f"orderBy must be one of {', '.join(ORDERINGS)}")
    limit = _int(query, "limit", INBOX_LIMIT[0], 1, INBOX_LIMIT[1])
    offset = _int(query, "offset", 0, 0, 1 << 31)
    threads = ctx.state.inbox(
        ctx.sdr_id,
        statuses=statuses,
        category=category,
        search=query.get("search") or None,
        snoozed=_flag(query, "snoozed"),
        order_by=order_by,
    )
    page = threads[offset : offset + limit]
    return {
        "threads": [t.api() for t in page],
        "total": len(threads),
        "hasMore": offset + len(page) < len(threads),
    }


def gmail_status(ctx: Ctx) -> Any:
    sdr = ctx.state.sdrs.get(ctx.sdr_id)
    if sdr is None:
        raise not_found("sdr_not_found", "SDR")
    return sdr.gmail_status()


def generate_drafts(ctx: Ctx) -> Any:
    return draft_actions.generate(ctx.state, ctx.sdr_id, ctx.body)


def send_draft(ctx: Ctx) -> Any:
    return draft_actions.send(ctx.state, ctx.sdr_id, ctx.param(), ctx.body)


ROUTES: list[tuple[str, str, Endpoint]] = [
    ("GET", "/v1/sdrs", list_sdrs),
    ("GET", "/v1/replies", list_replies),
    ("POST", "/v1/replies/{id}/assign", assign),
    ("POST", "/v1/webhooks", create_webhook),
    ("GET", "/v1/sdr/followups/due", due_followups),
    ("POST", "/v1/sdr/followups/{id}/complete", complete_followup),
    ("POST", "/v1/sdr/followups/{id}/skip", skip_followup),
    ("POST", "/v1/sdr/followups/{id}/reschedule", reschedule_followup),
    ("POST", "/v1/sdr/threads/{id}/followup/schedule", schedule_followup),
    ("GET", "/v1/sdr/inbox", inbox),
    ("GET", "/v1/sdr/gmail/status", gmail_status),
    ("POST", "/v1/sdr/drafts/generate", generate_drafts),
    ("POST", "/v1/sdr/drafts/{id}/send", send_draft),
]
