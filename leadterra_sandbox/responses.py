"""JSON answers in Leadterra's shapes: `{"data": ...}` and `{"error": {"code", "message"}}`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from leadterra_sandbox.errors import ApiError
from leadterra_sandbox.listing import Whole

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

ERROR_CODES = {
    401: "authentication_failed",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_dumps(body).encode(), status=status, headers=headers, content_type="application/json"
    )


def ok(data: Any) -> web.Response:
    """`{"data": data}`, or a `Whole` body as it is (the envelopes of `GET /v1/replies`)."""
    if isinstance(data, Whole):
        return json_response(data.body)
    return json_response({"data": data})


def error(status: int, code: str | None = None, message: str | None = None) -> web.Response:
    code = code or ERROR_CODES.get(status, "injected_fault")
    return json_response({"error": {"code": code, "message": message or code}}, status)


def api_error(exc: ApiError) -> web.Response:
    return json_response(exc.body(), exc.status)
