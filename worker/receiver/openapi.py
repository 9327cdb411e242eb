"""The receiver's OpenAPI document, served at the admin listener's /openapi.json (and fuzzed by
schemathesis). The webhook and /healthz are on `PORT`; /readyz and /metrics on the admin listener
(`ADMIN_HOST:ADMIN_PORT`), which wants the admin token as a bearer token when one is set."""

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
                        "description": "Queue unavailable (JSON), or more than MAX_CONNECTIONS "
                        "connections open (text, from the server); Leadterra will retry",
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
