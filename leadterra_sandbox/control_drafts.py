"""The control routes for AI drafts: list drafts and performed sends, and inject the guardrail
block on send.

- `GET /_control/drafts?sdrId=&threadId=`: `{count, drafts}` in the order generated;
- `GET /_control/drafts/sends?draftId=&threadId=&sdrId=`: `{count, sends}` in the order
  performed;
- `GET /_control/drafts/guardrails`: `{next, draftIds, issues, scores}`;
- `POST /_control/drafts/guardrails` `{next?, draftIds?, issues?, scores?}`: the same, after it;
- `DELETE /_control/drafts/guardrails`: no block, the default issues and scores.

`next` blocks the next N sends that would otherwise be performed (it replaces the count left);
`draftIds` are added to the drafts whose every send is blocked; `issues` (a list) and `scores`
(an object) replace what a blocked send reports. They are registered beside `control.ROUTES` by
`server.Sandbox` and reset with the world.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from leadterra_sandbox.control import body_of, sandbox_of
from leadterra_sandbox.drafts import Drafts, Guardrails
from leadterra_sandbox.errors import invalid
from leadterra_sandbox.responses import json_response

log = structlog.get_logger(__name__)
ROUTES = web.RouteTableDef()


def _drafts(request: web.Request) -> Drafts:
    return sandbox_of(request).world.state.drafts


@ROUTES.get("/_control/drafts")
async def list_drafts(request: web.Request) -> web.Response:
    query = request.query
    found = _drafts(request).listed(query.get("sdrId"), query.get("threadId"))
    return json_response({"count": len(found), "drafts": [d.state() for d in found]})


@ROUTES.get("/_control/drafts/sends")
async def list_sends(request: web.Request) -> web.Response:
    query = request.query
    found = _drafts(request).sends_of(
        query.get("draftId"), query.get("threadId"), query.get("sdrId")
    )
    return json_response({"count": len(found), "sends": [s.state() for s in found]})


@ROUTES.get("/_control/drafts/guardrails")
async def get_guardrails(request: web.Request) -> web.Response:
    return json_response(_drafts(request).guardrails.settings())


@ROUTES.post("/_control/drafts/guardrails")
async def set_guardrails(request: web.Request) -> web.Response:
    guardrails = _drafts(request).guardrails
    body = await body_of(request)
    count, ids = body.get("next"), body.get("draftIds")
    issues, scores = body.get("issues"), body.get("scores")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise invalid("next must be a non-negative integer")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise invalid("draftIds must be a list of strings")
    if issues is not None and not isinstance(issues, list):
        raise invalid("issues must be a list")
    if scores is not None and not isinstance(scores, dict):
        raise invalid("scores must be an object")
    if count is not None:
        guardrails.next_count = count
    guardrails.draft_ids.update(ids or ())
    guardrails.issues = guardrails.issues if issues is None else issues
    guardrails.scores = guardrails.scores if scores is None else scores
    log.info("control.guardrails_set", next=guardrails.next_count, draft_ids=len(ids or ()))
    return json_response(guardrails.settings())


@ROUTES.delete("/_control/drafts/guardrails")
async def clear_guardrails(request: web.Request) -> web.Response:
    drafts = _drafts(request)
    drafts.guardrails = Guardrails()
    return json_response(drafts.guardrails.settings())
