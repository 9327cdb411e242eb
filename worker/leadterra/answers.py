"""What an answer (or its absence) means, mapped onto worker/errors.py.

Statuses: 429 → RateLimited (with Retry-After), 5xx → ServerError, 401/403 → AuthError,
404 → NotFound, 409 → Conflict, 400 with icpFailed → IcpRejected, any other 3xx/4xx →
InvalidRequest. Bodies: a 2xx whose body cannot be parsed (not JSON, not UTF-8, nested past
Python's recursion limit) → ServerError. Failures before an answer (`failure`): every
`httpx.HTTPError`, `httpx.InvalidURL`, `httpx.StreamError` and `UnicodeEncodeError`:

    failure                                        error               why
    timeout (connect, read, write, pool, deadline) TransportFailure    retry: it may answer later
    refused, reset, dropped, remote protocol error TransportFailure    retry: a server restarts
    body not matching its Content-Encoding         ServerError         retry: a proxy may recover
    redirect loop                                  ServerError         retry: likewise
    local protocol error, bad URL, unknown scheme, UnsendableRequest   permanent: the same
      a header or URL value that is not ASCII                            request fails the same way
    any other httpx.HTTPError or StreamError       TransportFailure    retry (open world)

Messages name the endpoint and the failure's type, never the key, a header or the URL.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from worker import errors

MAX_ERROR_TEXT = 200
MAX_RETRY_AFTER = 24 * 3600.0
UNSENDABLE = (
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
    UnicodeEncodeError,
)
#: what a call through httpx can raise besides our own errors: `failure` maps each
FAILURES = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, UnicodeEncodeError)


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


def read_json(content: bytes) -> Any:
    """`content` parsed as JSON; ValueError for anything that is not (RecursionError included:
    a body nested deeper than Python's stack is garbage too, not a crash)."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def parse_body(response: httpx.Response, endpoint: str) -> Any:
    """A 2xx answer's JSON (None for an empty body); ServerError for one that is not JSON."""
    if not response.content.strip():
        return None
    try:
        return read_json(response.content)
    except ValueError:
        raise errors.ServerError(
            f"{endpoint}: answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
            endpoint=endpoint,
        ) from None


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


def _body(response: httpx.Response) -> Any:
    try:
        return read_json(response.content)
    except ValueError:
        return None


def _error_detail(body: Any, status: int) -> tuple[str | None, str]:
    """The API's error code and message, tolerant of every shape the docs hint at."""
    code: Any = None
    message: Any = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code, message = err.get("code"), err.get("message")
        code = code or body.get("code") or (err if isinstance(err, str) else None)
        message = message or body.get("message")
    text = _scalar(message)[:MAX_ERROR_TEXT] or f"HTTP {status}"
    return (_scalar(code)[:60] or None), text


def _scalar(value: Any) -> str:
    """A code or message as text: a string or number as it is, anything else (a nested list or
    object, however deep) as nothing."""
    return str(value) if isinstance(value, str | int | float) and value else ""


def raise_for_status(response: httpx.Response, endpoint: str) -> httpx.Response:
    """Map a non-2xx answer onto the error tree; return the response when it is 2xx."""
    status = response.status_code
    if status < 300:
        return response
    body = _body(response)
    code, text = _error_detail(body, status)
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
    if status == 400 and _find(body, "icpFailed") is True:
        raise errors.IcpRejected(where, **context)
    guardrails = _find(body, "guardrails")
    if status == 422 and (code == "guardrail_blocked" or isinstance(guardrails, dict)):
        issues, scores = guardrail_report(guardrails)
        raise errors.GuardrailBlocked(where, issues=issues, scores=scores, **context)
    raise errors.InvalidRequest(where, **context)


def guardrail_report(guardrails: Any) -> tuple[list[str], dict[str, float]]:
    """The guardrails' issues as short texts (an issue may be a string or an object with a
    `message`) and their numeric scores, whatever else the object holds."""
    found = guardrails if isinstance(guardrails, dict) else {}
    raw = found.get("issues")
    issues = []
    for issue in raw if isinstance(raw, list) else []:
        if isinstance(issue, dict):
            issue = issue.get("message") or issue.get("code") or issue.get("type")
        text = _scalar(issue)[:MAX_ERROR_TEXT]
        if text:
            issues.append(text)
    scores = found.get("scores")
    numbers = {
        str(name)[:40]: float(value)
        for name, value in (scores.items() if isinstance(scores, dict) else [])
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return issues[:20], numbers


def failure(exc: Exception, endpoint: str, encoding: str | None = None) -> errors.ServiceError:
    """The error for a call that got no usable answer (see the table in the module docstring);
    `encoding` is the answer's Content-Encoding, when its headers arrived."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return errors.TransportFailure(f"{endpoint}: timed out", endpoint=endpoint)
    if isinstance(exc, httpx.DecodingError):
        shown = (encoding or "none")[:40]
        return errors.ServerError(
            f"{endpoint}: the answer's body does not decode as its Content-Encoding ({shown})",
            endpoint=endpoint,
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return errors.ServerError(f"{endpoint}: redirected in a loop", endpoint=endpoint)
    if isinstance(exc, UNSENDABLE):
        return errors.UnsendableRequest(
            f"{endpoint}: the request cannot be sent ({name}: a URL or header value HTTP "
            "cannot carry, or a scheme httpx does not speak)",
            endpoint=endpoint,
        )
    return errors.TransportFailure(f"{endpoint}: {name}", endpoint=endpoint)


def status_label(exc: Exception) -> str:
    """How the metrics name a call that `failure` mapped."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.DecodingError | httpx.TooManyRedirects):
        return "garbled"
    if isinstance(exc, UNSENDABLE):
        return "unsendable"
    return "connection_error"
