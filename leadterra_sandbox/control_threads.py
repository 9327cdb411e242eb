"""The control routes for threads after a handoff: list them with their SDR, reply and status,
and change a thread's status as the SDR's own action in Leadterra would (Leadterra's API documents
no status change: the SDR does it in the app).

- `GET /_control/threads?sdrId=&replyId=&status=` (each optional, `status` repeatable):
  `{count, threads}` in the order they were opened;
- `POST /_control/threads/{id}/status` `{"status": "<a documented thread status>"}`: `{thread}`.

Threads are in their full "state" form (`sdrId`, `replyId` beside the inbox fields). Setting a
status changes only `status`: `lastMessageAt`, the thread's follow-ups and the reply's
`forwarded` flag stay as they are. An unknown thread is `404 thread_not_found`; a status that is
not one of `records.THREAD_STATUSES` is `422 invalid_request`. They are registered beside
`control.ROUTES` by `server.Sandbox`.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from leadterra_sandbox.control import body_of, sandbox_of
from leadterra_sandbox.errors import invalid, not_found
from leadterra_sandbox.records import THREAD_STATUSES
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


@ROUTES.post("/_control/threads/{id}/status")
async def set_status(request: web.Request) -> web.Response:
    thread = sandbox_of(request).world.state.threads.get(request.match_info["id"])
    if thread is None:
        raise not_found("thread_not_found", "thread")
    status = (await body_of(request)).get("status")
    if status not in THREAD_STATUSES:
        allowed = ", ".join(THREAD_STATUSES)
        raise invalid(f"status must be one of {allowed}", 422)
    previous, thread.status = thread.status, status
    log.info("control.thread_status_set", thread_id=thread.id, previous=previous, status=status)
    return json_response({"thread": thread.state()})
