"""The receiver's OpenAPI document, served at the admin listener's /openapi.json (and fuzzed by
schemathesis). The webhook and /healthz are on `PORT`; /readyz, /metrics and the console's
/api/{panel} on the admin listener (`ADMIN_HOST:ADMIN_PORT`), which wants the admin token as a
bearer token when one is set."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "error": {"type": "string"}},
    "required": ["status"],
}
_STATUS = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "reply_id": {"type": "string"}},
    "required": ["status"],
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: the console's panels (worker/console/panels.py `PANELS`, checked by tests/test_console_web.py)
CONSOLE_PANELS = ("rotation", "decisions", "stuck", "followups", "health", "sla", "intake")
_ADMIN = [{"url": "http://127.0.0.1:9000", "description": "the admin listener (ADMIN_PORT)"}]
_UNAUTHORIZED = _json(_ERROR, "ADMIN_TOKEN is set and the request has no valid bearer token")


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "leadterra-router receiver", "version": "0.1.0"},
    "paths": {
        "/webhooks/leadterra": {
            "post": {
                "summary": "Receive a Leadterra webhook delivery",
                "parameters": [
                    {
                        "name": "X-Leadterra-Signature",
                        "in": "header",
                        "required": True,
                        "description": "HMAC-SHA256 of the raw body: hex or base64, "
                        "optionally prefixed with sha256=",
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["event", "data"],
                                "properties": {
                                    "event": {"type": "string"},
                                    "timestamp": {
                                        "type": "string",
                                        "description": "ISO 8601, signed with the body: older "
                                        "than WEBHOOK_TOLERANCE_SECONDS is answered 200 stale",
                                    },
                                    "data": {
                                        "type": "object",
                                        "properties": {
                                            "reply": {
                                                "type": "object",
                                                "properties": {
                                                    "id": {"type": "string"},
                                                    "email": {"type": "string"},
                                                    "campaignId": {"type": "string"},
                                                    "classification": {"type": "string"},
                                                    "receivedAt": {"type": "string"},
                                                    "threadSnippet": {"type": "string"},
                                                },
                                            }
                                        },
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _STATUS,
                        "Ignored, a duplicate of an accepted delivery, or stale (a timestamp "
                        "older than WEBHOOK_TOLERANCE_SECONDS): nothing enqueued",
                    ),
                    "202": _json(_STATUS, "Accepted and enqueued"),
                    "400": _json(_ERROR, "Not UTF-8 or not JSON"),
                    "401": _json(_ERROR, "Missing or bad signature"),
                    "408": _json(_ERROR, "Body not received in time"),
                    "413": _json(_ERROR, "Body too large"),
                    "422": _json(_ERROR, "JSON of the wrong shape"),
                    "431": _json(_ERROR, "Request head over 64 KiB; the connection is closed"),
                    "503": {
                        "description": "Queue unavailable or, with REDIS_MIN_REPLICAS_ACK, "
                        "not confirmed by that many replicas in time (JSON), or more than "
                        "MAX_CONNECTIONS connections open (text, from the server); Leadterra "
                        "will retry",
                        "content": {
                            "application/json": {"schema": _ERROR},
                            "text/plain": {"schema": {"type": "string"}},
                        },
                    },
                },
            }
        },
        "/healthz": {"get": {"responses": {"200": _json(_STATUS, "The process is up")}}},
        "/readyz": {
            "servers": _ADMIN,
            "get": {
                "responses": {
                    "200": _json(_STATUS, "Redis answers and workers consume"),
                    "401": _UNAUTHORIZED,
                    "503": _json(_STATUS, "Not ready, with the reason"),
                }
            },
        },
        "/api/{panel}": {
            "servers": _ADMIN,
            "get": {
                "summary": "One panel of the console at / (worker/console/), as JSON",
                "parameters": [
                    {
                        "name": "panel",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(CONSOLE_PANELS)},
                    },
                    {
                        "name": "sdr",
                        "in": "query",
                        "required": False,
                        "description": "decisions: only those this SDR took part in",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "rows per list, 1 to 500; anything else reads as 50",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json({"type": "object"}, "The panel's data"),
                    "401": _UNAUTHORIZED,
                    "404": _json(_ERROR, "No such panel (the answer lists them)"),
                    "503": _json(_ERROR, "Redis did not answer"),
                },
            },
        },
        "/metrics": {
            "servers": _ADMIN,
            "get": {
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _UNAUTHORIZED,
                }
            },
        },
    },
}
