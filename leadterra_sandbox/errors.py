"""The one exception the sandbox's state raises: an API error with Leadterra's body shape."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised when a call must be answered with an error: `{"error":{"code","message"}}`."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {**self.extra, "error": {"code": self.code, "message": self.message}}


def invalid(message: str, status: int = 400, **extra: Any) -> ApiError:
    """A 400 (or 422) `invalid_request`."""
    return ApiError(status, "invalid_request", message, **extra)


def not_found(code: str, what: str) -> ApiError:
    return ApiError(404, code, f"{what} not found")
