"""The control routes for threads after a handoff: list them with their SDR, reply and status,
and change a thread's status as the SDR's own action in Leadterra would (Leadterra's API documents
no status change: the SDR does it in the app).

- `GET /_control/threads?sdrId=&replyId=&status=` (each optional, `status` repeatable):
  `{count, threads}` in the order they were opened;
- `POST /_control/threads/{id}/status` `{"status": "<a documented thread status>"}`: `{thread}`;
- `POST /_control/threads/{id}/reply` `{"status"?: "replied", "at"?: ISO}`: the prospect answers,
  a new inbound message: `lastMessageAt` moves to `at` (default sandbox now, and at least 1 ms
  after the previous `lastMessageAt`, so a draft made before it is always older) and the status
  becomes `status` (default `replied`): `{thread}`.

Threads are in their full "state" form (`sdrId`, `replyId` beside the inbox fields). Setting a
status changes only `status`: `lastMessageAt`, the thread's follow-ups and the reply's
`forwarded` flag stay as they are. An unknown thread is `404 thread_not_found`; a status that is
not one of `records.THREAD_STATUSES` is `422 invalid_request`, a bad `at` `400 invalid_request`.
They are registered beside `control.ROUTES` by `server.Sandbox`.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from leadterra_sandbox.clock import parse_iso
from leadterra_sandbox.control import body_of, sandbox_of
from leadterra_sandbox.errors import invalid, not_found
from leadterra_sandbox.records import THREAD_STATUSES, Thread
from leadterra_sandbox.responses import json_response

log = structlog.get_logger(__name__)
ROUTES = web.RouteTableDef()


@ROUTES.get("/_control/threads")
async def list_threads(request: web.Request) -> web.Response:
    query = request.query
    sdr_id, reply_id = query.get("sdrId"), query.get("replyId")
    statuses = frozenset(query.getall("status", ()))
    threads = [
        thread.state()
        for thread in sandbox_of(request).world.state.threads.values()
        if (sdr_id is None or thread.sdr_id == sdr_id)
        and (reply_id is None or thread.reply_id == reply_id)
        and (not statuses or thread.status in statuses)
    ]
    return json_response({"count": len(threads), "threads": threads})


def _thread(request: web.Request) -> Thread:
    thread = sandbox_of(request).world.state.threads.get(request.match_info["id"])
    if thread is None:
        raise not_found("thread_not_found", "thread")
    return thread


def _status(value: object) -> str:
    if not isinstance(value, str) or value not in THREAD_STATUSES:
        allowed = ", ".join(THREAD_STATUSES)
        raise invalid(f"status must be one of {allowed}", 422)
    return value


@ROUTES.post("/_control/threads/{id}/status")
async def set_status(request: web.Request) -> web.Response:
    thread = _thread(request)
    status = _status((await body_of(request)).get("status"))
    previous, thread.status = thread.status, status
    log.info("control.thread_status_set", thread_id=thread.id, previous=previous, status=status)
    return json_response({"thread": thread.state()})


@ROUTES.post("/_control/threads/{id}/reply")
async def prospect_replies(request: web.Request) -> web.Response:
    thread = _thread(request)
    body = await body_of(request)
    status = _status(body.get("status", "replied"))
    raw = body.get("at")
    now = sandbox_of(request).world.clock.now()
    at = max(now, thread.last_message_at + 0.001) if raw is None else parse_iso(raw)
    if at is None:
        raise invalid("at must be an ISO 8601 time")
    thread.last_message_at, thread.status = at, status
    log.info("control.prospect_replied", thread_id=thread.id, status=status)
    return json_response({"thread": thread.state()})
