"""Every error the service raises, split by what the caller should do about it.

    ServiceError
    ├── RetryableError            try again later; the policy in worker/jobs/retry.py decides when
    │   ├── RateLimited           429; carries the wait from Retry-After
    │   ├── ServerError           5xx
    │   ├── TransportFailure      timeout, refused or dropped connection
    │   └── NoEligibleSdr         nobody can take the reply now; held in Redis, never dropped
    └── PermanentError            retrying the same call cannot help; dead-letter it
        ├── AuthError             401 or 403: the key is wrong; loud
        ├── NotFound              404
        ├── Conflict              409 outside assign (a follow-up no longer pending)
        ├── IcpRejected           400 with icpFailed: a business outcome, recorded
        ├── InvalidRequest        other 400 and 422, and any other 4xx
        ├── UnexpectedAnswer      a 2xx whose JSON is not the documented shape
        └── PoisonMessage         a task payload that cannot be decoded

Errors carry their context (status, endpoint, the API's error code) as attributes. They never
carry a key, a secret, a signature or a reply's text.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of every error this service raises on purpose."""

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
    """Raised on a 429; `retry_after` holds the wait from Retry-After, if any."""

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
    """Raised on a 5xx answer."""


class TransportFailure(RetryableError):
    """Raised on a timeout, a refused connection or a dropped one."""


class NoEligibleSdr(RetryableError):
    """Raised when no SDR can take a reply now; the reply is held, not dropped."""


class PermanentError(ServiceError):
    """Raised when repeating the same call cannot help."""


class AuthError(PermanentError):
    """Raised on 401 or 403: the key is missing, wrong or revoked."""


class NotFound(PermanentError):
    """Raised on 404: the reply, SDR, thread or follow-up is unknown."""


class Conflict(PermanentError):
    """Raised on 409 outside assign, such as acting on a follow-up no longer pending."""


class IcpRejected(PermanentError):
    """Raised on 400 with icpFailed: the contact fails the workspace's ICP gate."""


class InvalidRequest(PermanentError):
    """Raised on other 400 and 422 answers, and any 4xx not named above."""


class UnexpectedAnswer(PermanentError):
    """Raised when a 2xx answer's JSON does not fit the documented shape."""


class PoisonMessage(PermanentError):
    """Raised when a task payload cannot be decoded or keeps killing its worker."""
