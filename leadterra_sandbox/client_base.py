"""The plumbing under `SandboxControl`: one `httpx.Client` on the control URL, JSON in and out."""

from __future__ import annotations

from typing import Any, Self

import httpx


class ControlError(Exception):
    """Raised when the control API answers non-2xx; carries `status` and `body`."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


def drop_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


class ControlBase:
    """A client of the control API at `control_url`, e.g. `http://127.0.0.1:8091`."""

    def __init__(
        self,
        control_url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.control_url = control_url.rstrip("/")
        self._http = httpx.Client(base_url=self.control_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        response = self._http.request(method, f"/_control{path}", json=body, params=params)
        data = response.json() if response.content else None
        if response.status_code >= 300:
            raise ControlError(response.status_code, data)
        return data
