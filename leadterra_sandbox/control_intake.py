"""The control routes of the second intake path: how `GET /v1/replies` answers, and webhooks
dropped on purpose (so a test can lose deliveries and watch the reconcile sweep find them).

| route | body | answer |
|---|---|---|
| `GET /_control/replies/listing` | | `{envelope, paging, timestamps, defaultPerPage, maxPerPage}` |
| `POST /_control/replies/listing` | any of those fields | the same, after the change |
| `POST /_control/webhooks/drop` | `{"share": 0..1}` | `{share, dropped}` |
| `GET /_control/webhooks/dropped` | | `{count, replyIds, byJob}` in the order they were dropped |

They are registered beside `control.ROUTES` by `server.Sandbox` and reset with the world.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from leadterra_sandbox.control import body_of, sandbox_of
from leadterra_sandbox.errors import invalid
from leadterra_sandbox.responses import json_response

log = structlog.get_logger(__name__)
ROUTES = web.RouteTableDef()


@ROUTES.get("/_control/replies/listing")
async def get_listing(request: web.Request) -> web.Response:
    return json_response(sandbox_of(request).world.state.listing.settings())


@ROUTES.post("/_control/replies/listing")
async def set_listing(request: web.Request) -> web.Response:
    listing = sandbox_of(request).world.state.listing
    listing.update(await body_of(request))
    log.info("control.listing_set", **listing.settings())
    return json_response(listing.settings())


@ROUTES.post("/_control/webhooks/drop")
async def set_drop(request: web.Request) -> web.Response:
    sender = sandbox_of(request).sender
    share = (await body_of(request)).get("share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise invalid("share must be a number from 0 to 1")
    sender.drop_share = float(share)
    log.info("control.webhook_drop_set", share=sender.drop_share)
    return json_response({"share": sender.drop_share, "dropped": len(sender.dropped)})


@ROUTES.get("/_control/webhooks/dropped")
async def get_dropped(request: web.Request) -> web.Response:
    dropped = sandbox_of(request).sender.dropped
    by_job: dict[str, int] = {}
    for job_id in dropped.values():
        by_job[job_id] = by_job.get(job_id, 0) + 1
    body: dict[str, Any] = {"count": len(dropped), "replyIds": list(dropped), "byJob": by_job}
    return json_response(body)
