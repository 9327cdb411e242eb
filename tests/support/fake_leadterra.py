"""A scripted Leadterra for unit tests, behind httpx.MockTransport."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import httpx
from pydantic import SecretStr

from worker.leadterra.client import LeadterraClient


class FakeLeadterra:
    """Routes on the path; `script` queues canned answers for the assign endpoint."""

    def __init__(self, sdrs: list[dict[str, Any]] | None = None) -> None:
        self.sdrs = sdrs or [{"id": f"sdr_{i}", "gmailConnected": True} for i in (1, 2, 3)]
        self.assign_script: deque[httpx.Response] = deque()
        self.calls: list[tuple[str, str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        if request.url.path == "/v1/sdrs":
            return httpx.Response(200, json={"data": self.sdrs})
        if request.url.path.endswith("/assign"):
            if self.assign_script:
                return self.assign_script.popleft()
            return httpx.Response(200, json={"data": {"handoffId": "h1", "threadId": "t1"}})
        return httpx.Response(404, json={"error": {"code": "not_found"}})

    def client(self) -> LeadterraClient:
        return LeadterraClient(
            "http://leadterra.test",
            SecretStr("sk_test_workspace"),
            transport=httpx.MockTransport(self.handler),
        )

    def assigns(self) -> list[tuple[str, Any]]:
        return [(path, body) for method, path, body in self.calls if path.endswith("/assign")]
