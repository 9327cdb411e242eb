"""The one Leadterra for unit tests: a handler behind `httpx.MockTransport`.

It routes on `request.url.path` and answers from plain data the test can edit: the workspace's
`sdrs`, the `assigned` result, the `replies` (in any of the three envelopes, paged by
`page`/`perPage` unless `ignore_paging`), and per caller the `due` follow-ups, `inbox` threads
and `gmail` status. The caller is told apart by its bearer key: `workspace_key` acts as `None`,
each key of `sdr_keys` as its SDR; any other key gets a 401. Every request is recorded as a `Call`.

Faults and odd statuses are scripted two ways:
- `answers[path]` (or `answers[(sdr, path)]` for one caller only) overrides a path until removed;
- `assign_script` queues one-shot answers for the next assign calls, whatever the reply id.
An answer is an `httpx.Response`, an exception to raise (a transport failure), or a callable
that takes the request and returns a response.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx
from pydantic import SecretStr

from tests.conftest import API_KEY
from worker.leadterra.client import CallObserver, LeadterraClient

BASE_URL = "http://leadterra.test"
DUE_PATH = "/v1/sdr/followups/due"
INBOX_PATH = "/v1/sdr/inbox"
REPLIES_PATH = "/v1/replies"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
Route = str | tuple[str | None, str]


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it; `sdr` is the caller (None for the workspace key)."""

    request: httpx.Request
    sdr: str | None

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.url.path

    @property
    def url(self) -> httpx.URL:
        return self.request.url

    @property
    def headers(self) -> httpx.Headers:
        return self.request.headers

    @property
    def authorization(self) -> str:
        return str(self.request.headers.get("authorization", ""))

    @property
    def params(self) -> dict[str, str]:
        """The query string, one value per name (see `url.params` for repeated names)."""
        return dict(self.request.url.params)

    @cached_property
    def body(self) -> Any:
        return json.loads(self.request.content) if self.request.content else None


class FakeLeadterra:
    """Leadterra's documented answers, from data the test owns; see the module docstring."""

    def __init__(
        self,
        sdrs: list[dict[str, Any]] | None = None,
        *,
        workspace_key: str = API_KEY,
        sdr_keys: dict[str, str] | None = None,
        due: dict[str | None, list[dict[str, Any]]] | None = None,
        inbox: dict[str | None, list[dict[str, Any]]] | None = None,
        base_url: str = BASE_URL,
        max_calls: int | None = None,
    ) -> None:
        self.sdrs = sdrs or [{"id": f"sdr_{i}", "gmailConnected": True} for i in (1, 2, 3)]
        self.assigned: dict[str, Any] = {
            "handoffId": "h1",
            "threadId": "t1",
            "messageId": "m1",
            "gmailThreadId": "g1",
        }
        self.due = due if due is not None else {}
        self.inbox = inbox if inbox is not None else {}
        self.gmail: dict[str | None, dict[str, Any]] = {}
        self.workspace_key = workspace_key
        self.sdr_keys = dict(sdr_keys or {})
        self.base_url = base_url
        self.max_calls = max_calls
        self.answers: dict[Route, Answer] = {}
        self.assign_script: deque[Answer] = deque()
        self.calls: list[Call] = []
        #: `GET /v1/replies`: the replies (served newest first by `receivedAt`), the envelope
        #: (`bare`, `data` or `replies` with `pagination`) and whether paging is ignored
        self.replies: list[dict[str, Any]] = []
        self.envelope = "replies"
        self.ignore_paging = False

    # -- the transport ----------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        known, sdr = self.caller(request)
        self.calls.append(Call(request, sdr))
        if self.max_calls is not None:
            assert len(self.calls) <= self.max_calls, f"runaway client: {len(self.calls)} calls"
        if not known:
            return httpx.Response(401, json={"error": {"code": "authentication_failed"}})
        path = request.url.path
        answer = self.answers.get((sdr, path), self.answers.get(path))
        if answer is None and path.endswith("/assign") and self.assign_script:
            answer = self.assign_script.popleft()
        if answer is None:
            return self.documented(request)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def caller(self, request: httpx.Request) -> tuple[bool, str | None]:
        """Whether the bearer key is known, and whose it is (None for the workspace's)."""
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        owners: dict[str, str | None] = {v: k for k, v in self.sdr_keys.items()}
        owners[self.workspace_key] = None
        return key in owners, owners.get(key)

    def documented(self, request: httpx.Request) -> httpx.Response:
        """The happy path, shaped the way Leadterra's docs show each answer (a callable
        answer can delay or inspect a request, then hand it here)."""
        _, sdr = self.caller(request)
        path = request.url.path
        if path == "/v1/sdrs":
            return httpx.Response(200, json={"data": self.sdrs})
        if path.startswith("/v1/replies/") and path.endswith("/assign"):
            return httpx.Response(200, json={"data": self.assigned})
        if path == DUE_PATH:
            return httpx.Response(200, json={"data": self.due.get(sdr, [])})
        if path == INBOX_PATH:
            threads = self.inbox.get(sdr, [])
            limit = int(request.url.params.get("limit", 50))
            offset = int(request.url.params.get("offset", 0))
            page = threads[offset : offset + limit]
            more = offset + limit < len(threads)
            data = {"threads": page, "total": len(threads), "hasMore": more}
            return httpx.Response(200, json={"data": data})
        if path == REPLIES_PATH:
            return self.replies_page(request)
        if path == "/v1/sdr/gmail/status":
            default = {"connected": True, "email": "sdr@gmail.com", "healthState": "active"}
            return httpx.Response(200, json={"data": self.gmail.get(sdr, default)})
        if path.startswith(("/v1/sdr/followups/", "/v1/sdr/threads/")):
            return httpx.Response(200, json={"data": {"ok": True}})
        if path == "/v1/webhooks":
            sent = json.loads(request.content)
            hook = {"id": "wh_1", "status": "active", "createdAt": "2025-06-11T09:14:32Z", **sent}
            return httpx.Response(200, json={"webhook": hook})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    def replies_page(self, request: httpx.Request) -> httpx.Response:
        """`GET /v1/replies` in the envelope chosen, newest first, paged unless told not to."""
        params = request.url.params
        campaign = params.get("campaignId")
        items = [r for r in self.replies if campaign is None or r.get("campaignId") == campaign]
        items.sort(key=lambda r: str(r.get("receivedAt", "")), reverse=True)
        page, per_page = int(params.get("page", 1)), int(params.get("perPage", 50))
        if self.ignore_paging:
            page = 1
        chunk = items[(page - 1) * per_page : page * per_page]
        if self.envelope == "bare":
            return httpx.Response(200, json=chunk)
        if self.envelope == "data":
            return httpx.Response(200, json={"data": chunk})
        paging = {"total": len(items), "page": page, "perPage": per_page}
        return httpx.Response(200, json={"replies": chunk, "pagination": paging})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def client(self, *, observer: CallObserver | None = None) -> LeadterraClient:
        """A workspace client wired to this fake (`with_key()` gives an SDR's view)."""
        return LeadterraClient(
            self.base_url,
            SecretStr(self.workspace_key),
            transport=self.transport(),
            observer=observer,
        )

    # -- what the tests read ----------------------------------------------------------------

    @property
    def last(self) -> Call:
        return self.calls[-1]

    def to(self, path: str) -> list[Call]:
        """The calls made to `path`, in the order they arrived."""
        return [call for call in self.calls if call.path == path]

    def assigns(self) -> list[tuple[str, Any]]:
        """(path, body) of every assign call, in the order they arrived."""
        return [(c.path, c.body) for c in self.calls if c.path.endswith("/assign")]
