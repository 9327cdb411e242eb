"""Every error the service raises, split by what the caller should do about it.

    ServiceError
    ├── RetryableError            try again later; the policy in worker/jobs/retry.py decides when
    │   ├── RateLimited           429, or the global rate limit's wait is too long; carries the wait
    │   ├── ServerError           5xx, or an answer that cannot be read (garbled)
    │   ├── TransportFailure      timeout, refused or dropped connection, broken HTTP
    │   ├── OutOfTime             the task run's time budget is spent (worker/budget.py)
    │   ├── NoEligibleSdr         nobody can take the reply now; held in Redis, never dropped
    │   ├── NotReplicated         too few replicas confirmed a write (REDIS_MIN_REPLICAS_ACK)
    │   └── Unclassified          stands in for any other Exception a task raised
    ├── PermanentError            retrying the same call cannot help; dead-letter it
    │   ├── AuthError             401 or 403: the key is wrong; loud
    │   ├── NotFound              404
    │   ├── Conflict              409 outside assign (a follow-up no longer pending)
    │   ├── IcpRejected           400 with icpFailed: a business outcome, recorded
    │   ├── InvalidRequest        other 400 and 422, and any other 4xx
    │   │   └── GuardrailBlocked  a draft send's 422 from the quality guardrails; carries them
    │   ├── UnexpectedAnswer      a 2xx whose JSON is not the documented shape
    │   ├── UnsendableRequest     a request HTTP cannot carry (a URL, a header value, a scheme)
    │   └── PoisonMessage         a task payload that cannot be decoded
    ├── ConfigError               a setting is missing or invalid; the process stops at start
    │   └── RosterError           the roster file is unreadable or invalid; names line and field
    └── RejectedDelivery          a request web turns away with a 4xx; nothing is enqueued or done
        ├── Malformed             not JSON (400) or not the envelope's shape (422)
        ├── TooLarge              the body passes MAX_BODY_BYTES (413)
        ├── LinkRefused           a one-click link forged, altered or expired (403)
        └── SlackRefused          a Slack action without a valid v0 signature (401)

Errors carry their context (status, endpoint, the API's error code) as attributes. They never
carry a key, a secret, a signature or a reply's text.

The tree is closed; the world is not. Whatever else a task raises is wrapped in `Unclassified`
by the task policy (worker/jobs/reliable.py), under the original's type name and a scrubbed
message, and retried until retries run out like any retryable error.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of every error this service raises on purpose; never raised itself."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint
        self.code = code


class RetryableError(ServiceError):
    """Raised when the same call may succeed later."""

    retryable = True

    #: a wait the server asked for, in seconds, or None to let the backoff decide
    retry_after: float | None = None


class RateLimited(RetryableError):
    """Raised when Leadterra answers 429, or when the global rate limit's wait would pass its
    bound; `retry_after` holds the wait (from Retry-After), if known."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        endpoint: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint, code=code)
        self.retry_after = retry_after


class ServerError(RetryableError):
    """Raised when an answer is a 5xx, or cannot be read: a 2xx that is not JSON, a body that
    does not match its Content-Encoding, a redirect loop; or no SDR picked could take a reply.

    A garbled answer is retried: a proxy or a server in a bad state may recover, and a repeated
    assign is safe (Leadterra's 409)."""


class TransportFailure(RetryableError):
    """Raised when a call times out or passes its overall deadline, its connection is refused or
    dropped, or the server breaks HTTP (a truncated body, bad chunking)."""


class OutOfTime(RetryableError):
    """Raised when a task run has spent its time budget (`Settings.max_task_seconds`) before a
    step that waits on the network; the task is retried, fresh, later."""


class NoEligibleSdr(RetryableError):
    """Raised when no SDR can take a reply now; `excluded` says why each SDR is out.

    The reply is held in Redis and tried again, never dropped.
    """

    def __init__(
        self, message: str = "no eligible SDR", *, excluded: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.excluded = excluded or {}


class NotReplicated(RetryableError):
    """Raised when fewer than REDIS_MIN_REPLICAS_ACK replicas confirmed a write (WAIT) within
    its timeout: the primary holds it, but a failover now could lose it. The receiver answers
    503 (Leadterra retries); a task is retried. `wanted` and `acked` say how far it got."""

    def __init__(self, message: str, *, wanted: int, acked: int) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.acked = acked


class Unclassified(RetryableError):
    """Stands in for an exception no one classified, so the policy can retry it and, once
    retries run out, dead-letter it under `error_type` (the original's type name) and a
    scrubbed message. Built by `worker/jobs/reliable.py`; never raised by the code it guards."""

    def __init__(self, message: str, *, error_type: str, where: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.where = where


class PermanentError(ServiceError):
    """Raised when repeating the same call cannot help."""


class AuthError(PermanentError):
    """Raised when Leadterra answers 401 or 403, no key is set, or the key holds a character
    no HTTP header can carry: the key is missing, wrong or revoked."""


class NotFound(PermanentError):
    """Raised when Leadterra answers 404: the reply, SDR, thread or follow-up is unknown."""


class Conflict(PermanentError):
    """Raised when Leadterra answers 409 outside assign, such as acting on a follow-up no longer
    pending."""


class IcpRejected(PermanentError):
    """Raised when Leadterra answers 400 with icpFailed: the contact fails the ICP gate."""


class InvalidRequest(PermanentError):
    """Raised when an answer is another 400, a 422 or any 4xx not named above, or a
    notification names an unknown destination."""


class GuardrailBlocked(InvalidRequest):
    """Raised when a draft send is answered 422 by Leadterra's quality guardrails; `issues`
    (text from Leadterra: render it escaped) and `scores` say why. The follow-up stays pending."""

    def __init__(
        self,
        message: str,
        *,
        issues: list[str] | None = None,
        scores: dict[str, float] | None = None,
        status: int | None = 422,
        endpoint: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint, code=code)
        self.issues = issues or []
        self.scores = scores or {}


class UnexpectedAnswer(PermanentError):
    """Raised when a 2xx answer's JSON does not fit the documented shape."""


class UnsendableRequest(PermanentError):
    """Raised when a request cannot be sent as built: a URL or header value HTTP cannot carry
    (a non-ASCII or control character), or a scheme httpx does not speak. The same request
    fails the same way every time, so it is not retried."""


class PoisonMessage(PermanentError):
    """Raised when a task payload cannot be decoded or keeps killing its worker."""


class ConfigError(ServiceError):
    """Raised when a setting is missing or invalid; the message names the variable only."""


class RosterError(ConfigError):
    """Raised when the roster file cannot be read or fails validation; names line and field."""


class RejectedDelivery(ServiceError):
    """Raised when web turns a request away (a webhook, a link, a Slack action); `status` is the
    4xx it answers."""

    status: int

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, status=status)


class Malformed(RejectedDelivery):
    """Raised when a delivery is not JSON (400) or not the envelope's shape (422)."""


class TooLarge(RejectedDelivery):
    """Raised when a delivery's body passes the size cap (413)."""

    def __init__(self, message: str = "body too large", status: int = 413) -> None:
        super().__init__(message, status)


class LinkRefused(RejectedDelivery):
    """Raised when an action link is missing a field, malformed, forged or altered, or expired;
    `reason` is one of "missing", "malformed", "signature", "expired". Answered with 403."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, 403)
        self.reason = reason


class SlackRefused(RejectedDelivery):
    """Raised when a request claiming to be Slack's fails verification; `reason` is one of
    "missing", "malformed", "stale", "signature". Answered with 401."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, 401)
        self.reason = reason
