"""Wait for an effect by polling with a deadline, never a bare sleep.

    wait_until(lambda: queue.empty() or None, 30, what="the queue drained", alive=[worker])
    wait_http("http://127.0.0.1:9000/readyz", 60, ok=(200,), alive=[web])

The probe runs once more at the deadline itself, so a slow machine does not lose the last
chance. Anything passed as `alive` (a `Child` or a `Children` from worker/children.py) is checked
after each miss, so a watched process that died fails the wait at once with its log tail instead
of at the deadline.

Errors: `DeadlineExceeded` (a `TimeoutError`) at the deadline; whatever the watched object
raises (worker/children.py raises `ChildExited`, a `RuntimeError`) when it died.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Literal, Protocol, TypeVar

import httpx

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """Raised when a probe is still falsy at its deadline; the message names what was awaited."""


class Watched(Protocol):
    def check_alive(self) -> None:
        """Raise if the thing waited on can no longer bring the effect about."""


def wait_until(
    probe: Callable[[], T | Literal[False] | None],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "",
    *,
    alive: Iterable[Watched] = (),
) -> T:
    """Call `probe` until it returns something truthy and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    watched = list(alive)
    while True:
        last = probe()
        if last:
            return last
        for thing in watched:
            thing.check_alive()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            name = what or getattr(probe, "__qualname__", repr(probe))
            shown = repr(last) if len(repr(last)) <= 300 else repr(last)[:300] + "..."
            raise DeadlineExceeded(f"timed out after {timeout:g} s waiting for {name}: {shown}")
        time.sleep(min(interval, remaining))


def wait_http(
    url: str,
    timeout: float = 30.0,
    *,
    ok: Collection[int] = (),
    alive: Iterable[Watched] = (),
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """GET `url` (with `headers`) until it answers (with a status in `ok`, when given) and
    return the answer."""
    seen = ["no answer"]

    def probe() -> httpx.Response | None:
        try:
            response = httpx.get(url, timeout=1.0, headers=headers)
        except httpx.HTTPError as exc:
            seen[0] = f"{type(exc).__name__}: {exc}"
            return None
        seen[0] = f"status {response.status_code}"
        return response if not ok or response.status_code in ok else None

    wanted = f" with {'/'.join(map(str, sorted(ok)))}" if ok else ""
    try:
        return wait_until(probe, timeout, 0.1, what=f"{url} to answer{wanted}", alive=alive)
    except DeadlineExceeded as exc:
        raise DeadlineExceeded(f"{exc} ({seen[0]})") from None
