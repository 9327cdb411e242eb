"""The Leadterra API client: one class around one `httpx.Client`.

Every method is one endpoint: call, map the status to `worker.errors`, return a model. The key is
sent per request, so `with_key()` gives an SDR-scoped view that shares the connection pool.
An optional `CallObserver` sees every call (the global rate limit and the metrics hang there).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from config.settings import Settings
from worker import errors
from worker.leadterra.models import (
    AssignResult,
    FollowUp,
    GmailStatus,
    InboxPage,
    Sdr,
    Thread,
    Webhook,
    iso_ms,
    unwrap_list,
    unwrap_object,
)

USER_AGENT = "leadterra-router/0.1 (+self-hosted)"
MAX_ERROR_TEXT = 200
MAX_RETRY_AFTER = 24 * 3600.0


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


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = (when - (now or datetime.now(UTC))).total_seconds()
    return min(MAX_RETRY_AFTER, max(0.0, wait))


def _find(body: Any, key: str, depth: int = 2) -> Any:
    """`key` at the top level of a JSON object, or nested up to `depth` levels."""
    if not isinstance(body, dict):
        return None
    if key in body:
        return body[key]
    if depth:
        for inner in body.values():
            found = _find(inner, key, depth - 1)
            if found is not None:
                return found
    return None


def _error_detail(response: httpx.Response) -> tuple[str | None, str]:
    """The API's error code and message, tolerant of every shape the docs hint at."""
    try:
        body = response.json()
    except ValueError:
        return None, f"HTTP {response.status_code}"
    code: Any = None
    message: Any = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code, message = err.get("code"), err.get("message")
        code = code or body.get("code") or (err if isinstance(err, str) else None)
        message = message or body.get("message")
    text = str(message)[:MAX_ERROR_TEXT] if message else f"HTTP {response.status_code}"
    return (str(code)[:60] if code else None), text


def raise_for_status(response: httpx.Response, endpoint: str) -> httpx.Response:
    """Map a non-2xx answer onto the error tree; return the response when it is 2xx."""
    status = response.status_code
    if status < 300:
        return response
    code, text = _error_detail(response)
    where = f"{endpoint}: {status} {text}"
    context: dict[str, Any] = {"status": status, "endpoint": endpoint, "code": code}
    if status == 429:
        wait = parse_retry_after(response.headers.get("retry-after"))
        raise errors.RateLimited(
            where, retry_after=wait, status=status, endpoint=endpoint, code=code
        )
    if status >= 500:
        raise errors.ServerError(where, **context)
    if status in (401, 403):
        raise errors.AuthError(where, **context)
    if status == 404:
        raise errors.NotFound(where, **context)
    if status == 409:
        raise errors.Conflict(where, **context)
    if status == 400:
        try:
            icp = _find(response.json(), "icpFailed")
        except ValueError:
            icp = None
        if icp is True:
            raise errors.IcpRejected(where, **context)
    raise errors.InvalidRequest(where, **context)


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
    ) -> None:
        self._key = api_key
        self._observer = observer
        self._http = http or httpx.Client(
            base_url=base_url,
            timeout=timeout or httpx.Timeout(10.0, connect=3.0, pool=5.0),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

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
        )

    def with_key(self, api_key: SecretStr) -> LeadterraClient:
        """The same connection pool, acting as the SDR (or workspace) that owns `api_key`."""
        return LeadterraClient("", api_key, observer=self._observer, http=self._http)

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
    ) -> Any:
        if self._observer:
            self._observer.before_call(endpoint)
        started = time.perf_counter()
        status = "error"
        retry_after: float | None = None
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {self._key.get_secret_value()}"},
            )
            status = str(response.status_code)
            if response.status_code == 429:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise_for_status(response, endpoint)
            if not response.content.strip():
                return None
            try:
                return response.json()
            except ValueError:
                raise errors.ServerError(
                    f"{endpoint}: answered {response.status_code} with a body that is not JSON",
                    status=response.status_code,
                    endpoint=endpoint,
                ) from None
        except httpx.TimeoutException:
            status = "timeout"
            raise errors.TransportFailure(f"{endpoint}: timed out", endpoint=endpoint) from None
        except httpx.TransportError as exc:
            status = "connection_error"
            raise errors.TransportFailure(
                f"{endpoint}: {type(exc).__name__}", endpoint=endpoint
            ) from None
        finally:
            if self._observer:
                self._observer.after_call(
                    endpoint, status, time.perf_counter() - started, retry_after
                )

    # -- endpoints --------------------------------------------------------------------------

    def list_sdrs(self) -> list[Sdr]:
        body = self._call("GET", "/v1/sdrs", "GET /v1/sdrs")
        return _models(Sdr, unwrap_list(body), "GET /v1/sdrs")

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
        return AssignOutcome(
            already_assigned=False, result=_model(AssignResult, unwrap_object(data), endpoint)
        )

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
