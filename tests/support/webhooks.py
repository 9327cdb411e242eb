"""Signed Leadterra webhooks posted to a deployment under test (tests/support/service.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from tests.support.service import SECRET, Service
from worker.signature import sign_hex


def post_interested(service: Service, reply_id: str) -> httpx.Response:
    """Seed an interested reply in the sandbox and post its signed `reply.received` webhook."""
    service.control.seed_replies([{"id": reply_id, "classification": "interested"}])
    reply = {"id": reply_id, "email": "lead@acme.io", "classification": "interested"}
    body = json.dumps(
        {
            "event": "reply.received",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "data": {"reply": reply},
        }
    ).encode()
    return httpx.post(
        service.webhook_url,
        content=body,
        headers={"X-Leadterra-Signature": sign_hex(SECRET, body)},
        timeout=10,
    )
