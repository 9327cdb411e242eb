"""The receiver's HTTP server: uvicorn (httptools, uvloop) with bounded slow clients.

uvicorn arms no timer until a request's headers are complete, so a client that connects and
trickles bytes could hold a connection for ever. `GuardedProtocol` closes a connection whose
request headers take longer than `HEADER_TIMEOUT`; the app bounds the body (worker/receiver/web.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from config.settings import Settings

HEADER_TIMEOUT = 10.0


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a deadline on each request's headers."""

    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()


def serve(settings: Settings, app: Any) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=GuardedProtocol,
        loop="uvloop",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        backlog=4096,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
