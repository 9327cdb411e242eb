"""The receiver's HTTP protocol: uvicorn's httptools protocol, closed to slow and greedy clients.

uvicorn answers 503 past `limit_concurrency` and closes idle keep-alive connections after
`timeout_keep_alive` (worker/receiver/server.py sets both), but while a request arrives it arms no
timer, with httptools it has no limit on the size of a request's head, and once the app has
answered it reads whatever body the client still trickles, for as long as it trickles. So
`GuardedProtocol` adds, on every route and both listeners:

* **a deadline for each whole request** (head and body), from the request's first byte or the
  connection's opening: a request still incomplete then has its connection closed. The app reads
  the deadline from `scope["extensions"][DEADLINE]["at"]` (loop time), so the webhook answers a slow
  body with 408 itself; the protocol waits `GRACE` more seconds for an app still answering;
* **a cap on the head** (request line and headers, `HEAD_CAP`): past it, 431 and a close, before
  the parser buffers more;
* **a drain cap**: after an answer, the unread rest of the body is read and dropped up to
  `DRAIN_CAP` within the same deadline; more, and the connection is closed.

It overrides parser callbacks of uvicorn's `HttpToolsProtocol`, which is not a public API: the
`uvicorn` pin in pyproject.toml has an upper bound, and tests/test_uvicorn_versions.py runs the
hostile-client tests against the lowest version the pin allows.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger("leadrouter.web")

#: the ASGI scope extension holding the request's deadline: {"at": the event loop's time}
DEADLINE = "leadrouter.deadline"
HEAD_CAP = 64 * 1024
DRAIN_CAP = 64 * 1024
GRACE = 1.0

_431_BODY = json.dumps(
    {"status": "headers_too_large", "error": f"request head over {HEAD_CAP // 1024} KiB"}
).encode()
TOO_LARGE_HEAD = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_431_BODY), _431_BODY)
)


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a whole-request deadline, a head cap and a drain cap."""

    request_timeout = 10.0
    listener = "public"

    _timer: asyncio.TimerHandle | None = None
    _deadline = 0.0
    _grace_left = True
    _head_bytes = 0
    _head_done = False
    _in_body = False
    _drained = 0

    @classmethod
    def configured(cls, request_timeout: float, listener: str) -> type[GuardedProtocol]:
        """A subclass with its own deadline, for one listener (uvicorn takes a class)."""
        return type(
            f"GuardedProtocol_{listener}",
            (cls,),
            {"request_timeout": request_timeout, "listener": listener},
        )

    # -- the deadline ---------------------------------------------------------------------

    def _start_deadline(self) -> None:
        if self._timer is None:
            self._deadline = self.loop.time() + self.request_timeout
            self._grace_left = True
            self._timer = self.loop.call_at(self._deadline, self._expired)

    def _stop_deadline(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        answering = cycle is not None and not cycle.response_complete
        if answering and self._grace_left:  # the app may be writing its 408 right now
            self._grace_left = False
            self._timer = self.loop.call_later(GRACE, self._expired)
            return
        phase = "body" if self._in_body else "head"
        if cycle is not None and cycle.response_complete and self._in_body:
            phase = "drain"
        self._refuse("request_timeout", phase=phase)
        self.transport.close()

    def _refuse(self, reason: str, **fields: Any) -> None:
        log.info(
            "web.connection_closed",
            reason=reason,
            listener=self.listener,
            client=self.client[0] if self.client else None,
            **fields,
        )

    # -- uvicorn's protocol and parser callbacks ----------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            self._start_deadline()  # the first byte of a request (no-op if already armed)
        while data:
            if self._in_body or self.parser is None:
                super().data_received(data)
                return
            room = HEAD_CAP - self._head_bytes
            piece, data = data[:room], data[room:]
            self._head_done = False
            super().data_received(piece)
            if self.transport.is_closing():
                return
            if self._head_done:  # a head ended in this piece; the next one starts from zero
                self._head_bytes = 0
                continue
            self._head_bytes += len(piece)
            if self._head_bytes >= HEAD_CAP:
                self._refuse("head_too_large", limit=HEAD_CAP)
                self.transport.write(TOO_LARGE_HEAD)
                self.transport.close()
                return

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._in_body = True
        self._drained = 0
        self._start_deadline()
        self.scope.setdefault("extensions", {})[DEADLINE] = {"at": self._deadline}
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.transport.is_closing():
            self._drained += len(body)
            if self._drained > DRAIN_CAP:
                self._refuse("unread_body_too_large", limit=DRAIN_CAP)
                self.transport.close()
                return
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        self._stop_deadline()
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.transport.is_closing():
            # answered before the body was in: uvicorn armed its keep-alive timer then, and the
            # drained bytes cancelled it; arm it again, or an idle connection stays for ever
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
