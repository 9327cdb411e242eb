"""The Leadterra API client: one class around one `httpx.Client`.

Every method is one endpoint: call, map the answer to `worker.errors` (worker/leadterra/answers.py:
every status, every httpx failure, every body that cannot be read), return a model. Nothing else
escapes a call. The key is sent per request, so `with_key()` gives an SDR-scoped view that shares
the connection pool. An optional `CallObserver` sees every call (the global rate limit and the
metrics hang there).

Each call has an overall deadline, `leadterra_call_seconds` (connect, send and the whole answer),
and never outlives the task's own (worker/budget.py): its timeouts are cut to what is left, and
every socket wait ends by the deadline (worker/leadterra/transport.py), so a server that drips
its answer cannot hold a worker thread. A call refused because the task's budget is spent raises
OutOfTime; one cut by a deadline raises TransportFailure. Both are retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from config.settings import Settings
from worker import budget, errors
from worker.leadterra.answers import (
    FAILURES,
    failure,
    parse_body,
    parse_retry_after,
    raise_for_status,
    status_label,
)
from worker.leadterra.models import (
    AssignResult,
    Draft,
    FollowUp,
    GmailStatus,
    InboxPage,
    RepliesPage,
    Sdr,
    SentDraft,
    Thread,
    Webhook,
    iso_ms,
    replies_page,
    unwrap_list,
    unwrap_object,
)
from worker.leadterra.transport import cap_every_wait

__all__ = [
    "USER_AGENT",
    "AssignOutcome",
    "LeadterraClient",
    "parse_retry_after",
    "raise_for_status",
]

USER_AGENT = "leadterra-router/0.1 (+self-hosted)"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0, pool=5.0)


class CallObserver(Protocol):
    """Sees each call: `before_call` may block (rate limit); `after_call` records it."""

    def before_call(self, endpoint: str) -> None: ...

    def after_call(
        self, endpoint: str, status: str, seconds: float, retry_after: float | None
    ) -> None: ...


@dataclass(frozen=True)
class AssignOutcome:
    """What assign achieved: a fresh handoff, or a reply someone already forwarded (409)."""

    already_assigned: bool
    result: AssignResult | None = None


@dataclass
class _Answer:
    """What is known of one call's answer so far, for the observer and the error messages."""

    status: str = "error"
    retry_after: float | None = None
    encoding: str | None = None


def _call_seconds(timeout: httpx.Timeout) -> float | None:
    """A call's overall deadline from its timeouts: connect, read and pool added up."""
    total = sum(t for t in (timeout.connect, timeout.read, timeout.pool) if t)
    return total or None


def _sendable(key: str) -> bool:
    """Whether `key` can go in a header as it is: printable ASCII, no whitespace."""
    return key.isascii() and key.isprintable() and not any(c.isspace() for c in key)


class LeadterraClient:
    """Leadterra's API, one method per endpoint this service uses."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        observer: CallObserver | None = None,
        max_connections: int = 100,
        http: httpx.Client | None = None,
        call_seconds: float | None = None,
    ) -> None:
        self._key = api_key
        self._observer = observer
        if http is None:
            http = httpx.Client(
                base_url=base_url,
                timeout=timeout or DEFAULT_TIMEOUT,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                transport=transport,
            )
            cap_every_wait(http)
        self._http = http
        self._call_seconds = call_seconds or _call_seconds(http.timeout)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        api_key: SecretStr | None = None,
        transport: httpx.BaseTransport | None = None,
        observer: CallObserver | None = None,
    ) -> LeadterraClient:
        key = api_key or settings.leadterra_api_key
        if key is None:
            raise errors.AuthError("LEADTERRA_API_KEY is not set")
        timeout = httpx.Timeout(
            settings.leadterra_timeout_read,
            connect=settings.leadterra_timeout_connect,
            pool=settings.leadterra_timeout_pool,
        )
        return cls(
            settings.leadterra_base_url,
            key,
            timeout=timeout,
            transport=transport,
            observer=observer,
            max_connections=settings.worker_concurrency + 10,
            call_seconds=settings.leadterra_call_seconds,
        )

    def with_key(self, api_key: SecretStr) -> LeadterraClient:
        """The same connection pool, acting as the SDR (or workspace) that owns `api_key`."""
        return LeadterraClient(
            "", api_key, observer=self._observer, http=self._http, call_seconds=self._call_seconds
        )

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"LeadterraClient(base_url={str(self._http.base_url)!r})"

    # -- transport --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        json: Any = None,
        params: Any = None,
        seconds: float | None = None,
    ) -> Any:
        """One call; `seconds`, when given, is its deadline and read timeout instead of the
        client's (still cut by the task's deadline)."""
        headers = {"Authorization": self._authorization()}
        budget.check(endpoint)
        if self._observer:
            self._observer.before_call(endpoint)
        started = time.perf_counter()
        answer = _Answer()
        try:
            response = self._exchange(
                method,
                path,
                endpoint,
                answer,
                seconds or self._call_seconds,
                json=json,
                params=params,
                headers=headers,
            )
            raise_for_status(response, endpoint)
            return parse_body(response, endpoint)
        finally:
            if self._observer:
                self._observer.after_call(
                    endpoint, answer.status, time.perf_counter() - started, answer.retry_after
                )

    def _authorization(self) -> str:
        key = self._key.get_secret_value()
        if not _sendable(key):
            raise errors.AuthError(
                "the API key holds a character no HTTP header can carry (whitespace, a control "
                "or a non-ASCII character): check LEADTERRA_API_KEY and LEADTERRA_SDR_API_KEYS"
            )
        return f"Bearer {key}"

    def _exchange(
        self,
        method: str,
        path: str,
        endpoint: str,
        answer: _Answer,
        seconds: float | None,
        **options: Any,
    ) -> httpx.Response:
        """Send the request and read the whole answer by the call's deadline (`seconds`), with
        every httpx failure mapped onto the error tree (worker/leadterra/answers.py)."""
        try:
            with budget.deadline_in(seconds or float("inf")) as until:
                return self._send(method, path, answer, seconds, **options)
        except FAILURES as exc:
            answer.status = status_label(exc)
            mapped = failure(exc, endpoint, answer.encoding)
        if answer.status == "timeout" and time.monotonic() >= until:
            budget.check(endpoint)  # the task's own deadline cut the call: OutOfTime
            mapped = errors.TransportFailure(
                f"{endpoint}: no whole answer within its deadline ({seconds:g} s)",
                endpoint=endpoint,
            )
        raise mapped

    def _send(
        self, method: str, path: str, answer: _Answer, seconds: float | None, **options: Any
    ) -> httpx.Response:
        timeouts = self._timeouts(None if seconds == self._call_seconds else seconds)
        request = self._http.build_request(method, path, timeout=timeouts, **options)
        response = self._http.send(request, stream=True)
        try:
            answer.status = str(response.status_code)
            answer.encoding = response.headers.get("content-encoding")
            if response.status_code == 429:
                answer.retry_after = parse_retry_after(response.headers.get("retry-after"))
            response.read()
        finally:
            response.close()
        return response

    def _timeouts(self, read: float | None = None) -> httpx.Timeout:
        """The client's timeouts (`read` instead of its read timeout, when given), each cut to
        what is left of the deadline in force."""
        base = self._http.timeout
        if read is not None:
            base = httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)

        def cut(seconds: float | None) -> float | None:
            capped = budget.cap(seconds)
            return None if capped is None else max(capped, 0.001)

        return httpx.Timeout(
            connect=cut(base.connect),
            read=cut(base.read),
            write=cut(base.write),
            pool=cut(base.pool),
        )

    # -- endpoints --------------------------------------------------------------------------

    def list_sdrs(self) -> list[Sdr]:
        body = self._call("GET", "/v1/sdrs", "GET /v1/sdrs")
        return _models(Sdr, unwrap_list(body), "GET /v1/sdrs")

    def list_replies(
        self, page: int = 1, per_page: int = 50, campaign_id: str | None = None
    ) -> RepliesPage:
        """One page of replies, newest first by `receivedAt` (paging by `page`/`perPage`, the
        names the docs suggest; a server that ignores them is the caller's to detect)."""
        params: dict[str, str | int] = {"page": max(1, page), "perPage": max(1, per_page)}
        if campaign_id:
            params["campaignId"] = campaign_id
        body = self._call("GET", "/v1/replies", "GET /v1/replies", params=params)
        return replies_page(body, page, per_page)

    def assign_reply(
        self,
        reply_id: str,
        sdr_id: str,
        *,
        category: str | None = "A",
        skip_icp_check: bool | None = True,
        note: str | None = None,
        force_forward: bool | None = None,
        seniority: str | None = None,
        employee_count: str | None = None,
    ) -> AssignOutcome:
        """Hand a reply to an SDR. A 409 (already forwarded) is a success, not an error."""
        payload = {
            "sdrId": sdr_id,
            "category": category,
            "skipIcpCheck": skip_icp_check,
            "note": note,
            "forceForward": force_forward,
            "seniority": seniority,
            "employeeCount": employee_count,
        }
        body = {k: v for k, v in payload.items() if v is not None}
        endpoint = "POST /v1/replies/{id}/assign"
        try:
            data = self._call("POST", f"/v1/replies/{_seg(reply_id)}/assign", endpoint, json=body)
        except errors.Conflict:
            return AssignOutcome(already_assigned=True)
        result = _model(AssignResult, unwrap_object(data), endpoint)
        if not result.identified():  # a 2xx that names no handoff is not the documented answer
            raise errors.UnexpectedAnswer(
                f"{endpoint}: a 2xx without handoffId, threadId, messageId or gmailThreadId",
                endpoint=endpoint,
            )
        return AssignOutcome(already_assigned=False, result=result)

    def due_followups(self, *, limit: int = 50, include_upcoming: bool = False) -> list[FollowUp]:
        params = {"limit": max(1, min(limit, 200))}
        if include_upcoming:
            params["includeUpcoming"] = "true"  # type: ignore[assignment]
        body = self._call(
            "GET", "/v1/sdr/followups/due", "GET /v1/sdr/followups/due", params=params
        )
        return _models(FollowUp, unwrap_list(body), "GET /v1/sdr/followups/due")

    def complete_followup(self, followup_id: str) -> None:
        path = f"/v1/sdr/followups/{_seg(followup_id)}/complete"
        self._call("POST", path, "POST /v1/sdr/followups/{id}/complete")

    def skip_followup(self, followup_id: str, reason: str) -> None:
        path = f"/v1/sdr/followups/{_seg(followup_id)}/skip"
        self._call("POST", path, "POST /v1/sdr/followups/{id}/skip", json={"reason": reason})

    def reschedule_followup(self, followup_id: str, due_at: datetime) -> None:
        path = f"/v1/sdr/followups/{_seg(followup_id)}/reschedule"
        body = {"dueAt": iso_ms(due_at)}
        self._call("POST", path, "POST /v1/sdr/followups/{id}/reschedule", json=body)

    def schedule_thread_followup(self, thread_id: str, due_at: datetime | None = None) -> None:
        """Schedule a follow-up on a thread; without `due_at` Leadterra's rules pick the time."""
        path = f"/v1/sdr/threads/{_seg(thread_id)}/followup/schedule"
        body = {"dueAt": iso_ms(due_at)} if due_at else {}
        self._call("POST", path, "POST /v1/sdr/threads/{id}/followup/schedule", json=body)

    def generate_draft(
        self, thread_id: str, *, instructions: str | None = None, seconds: float | None = None
    ) -> Draft:
        """One draft for the thread (`variantCount: 1`) with its confidence; `seconds` replaces
        the call's deadline and read timeout (generation runs several models)."""
        endpoint = "POST /v1/sdr/drafts/generate"
        body: dict[str, Any] = {"threadId": thread_id, "variantCount": 1}
        if instructions:
            body["instructions"] = instructions
        data = unwrap_object(
            self._call("POST", "/v1/sdr/drafts/generate", endpoint, json=body, seconds=seconds)
        )
        drafts = data.get("drafts")
        if not isinstance(drafts, list) or not drafts:
            raise errors.UnexpectedAnswer(f"{endpoint}: a 2xx without drafts", endpoint=endpoint)
        draft = _model(Draft, drafts[0], endpoint)
        insights = data.get("insights")
        for insight in insights if isinstance(insights, list) else []:
            if isinstance(insight, dict) and insight.get("draftId") == draft.id:
                confidence = insight.get("confidence")
                if isinstance(confidence, int | float) and not isinstance(confidence, bool):
                    draft.confidence = float(confidence)
        return draft

    def send_draft(self, draft_id: str) -> SentDraft:
        """Send the draft as it is through the SDR's Gmail; GuardrailBlocked on the guardrails'
        422, Conflict when it was already sent."""
        endpoint = "POST /v1/sdr/drafts/{id}/send"
        data = self._call("POST", f"/v1/sdr/drafts/{_seg(draft_id)}/send", endpoint, json={})
        return _model(SentDraft, unwrap_object(data), endpoint)

    def inbox(
        self,
        *,
        status: list[str] | None = None,
        category: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> InboxPage:
        params: list[tuple[str, str | int]] = [("limit", max(1, min(limit, 100)))]
        if offset:
            params.append(("offset", offset))
        params += [("status", s) for s in status or ()]
        if category:
            params.append(("category", category))
        body = self._call("GET", "/v1/sdr/inbox", "GET /v1/sdr/inbox", params=params)
        data = unwrap_object(body)
        if "threads" not in data:
            data = {"threads": unwrap_list(body)}
        return _model(InboxPage, data, "GET /v1/sdr/inbox")

    def inbox_all(self, *, status: list[str] | None = None, page_size: int = 100) -> list[Thread]:
        """Every thread of the SDR's inbox, page by page (limit/offset)."""
        threads: list[Thread] = []
        while True:
            page = self.inbox(status=status, limit=page_size, offset=len(threads))
            threads += page.threads
            if not page.has_more or not page.threads:
                return threads

    def gmail_status(self) -> GmailStatus:
        body = self._call("GET", "/v1/sdr/gmail/status", "GET /v1/sdr/gmail/status")
        return _model(GmailStatus, unwrap_object(body), "GET /v1/sdr/gmail/status")

    def create_webhook(self, url: str, events: list[str]) -> Webhook:
        body = self._call(
            "POST", "/v1/webhooks", "POST /v1/webhooks", json={"url": url, "events": events}
        )
        return _model(Webhook, unwrap_object(body), "POST /v1/webhooks")


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], data: Any, endpoint: str) -> M:
    """`data` as `model`, or UnexpectedAnswer naming the endpoint and the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as bad:
        first = bad.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise errors.UnexpectedAnswer(
            f"{endpoint}: unexpected answer ({where}: {first.get('msg')})", endpoint=endpoint
        ) from None


def _models(model: type[M], items: list[Any], endpoint: str) -> list[M]:
    return [_model(model, item, endpoint) for item in items]


def _seg(value: str) -> str:
    """An id as one path segment: opaque, but never able to climb out of its path."""
    segment = quote(value, safe="")
    return segment.replace(".", "%2E") if not segment.strip(".") else segment
