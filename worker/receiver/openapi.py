"""The receiver's OpenAPI document, served at /openapi.json (and fuzzed by schemathesis)."""

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
                                    "timestamp": {"type": "string"},
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
                    "200": _json(_STATUS, "Ignored, or a duplicate of an accepted delivery"),
                    "202": _json(_STATUS, "Accepted and enqueued"),
                    "400": _json(_ERROR, "Not UTF-8 or not JSON"),
                    "401": _json(_ERROR, "Missing or bad signature"),
                    "408": _json(_ERROR, "Body not received in time"),
                    "413": _json(_ERROR, "Body too large"),
                    "422": _json(_ERROR, "JSON of the wrong shape"),
                    "503": _json(_ERROR, "Queue unavailable; Leadterra will retry"),
                },
            }
        },
        "/healthz": {"get": {"responses": {"200": _json(_STATUS, "The process is up")}}},
        "/readyz": {
            "get": {
                "responses": {
                    "200": _json(_STATUS, "Redis answers and workers consume"),
                    "503": _json(_STATUS, "Not ready, with the reason"),
                }
            }
        },
        "/metrics": {
            "get": {
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                }
            }
        },
    },
}
