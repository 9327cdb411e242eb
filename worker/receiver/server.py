"""The `web` process's two listeners: Leadterra's and the operators', on one event loop.

Two uvicorn servers share one uvloop loop, each with its own app, socket, connection count and
protocol (worker/receiver/protocol.py):

* **public** on `HOST:PORT`: the webhook and /healthz, at most `MAX_CONNECTIONS` connections
  served at once (uvicorn's `limit_concurrency`: a request beyond it gets 503 and a close);
* **admin** on `ADMIN_HOST:ADMIN_PORT`: /metrics, /readyz, /openapi.json
  (worker/receiver/admin.py), with a small cap of its own, so a flood of the public port never
  locks operators out. It refuses a non-loopback address unless `ADMIN_TOKEN` is set.

Two servers rather than one with two sockets: uvicorn counts connections per server, and one
count would let the public port's flood spend the operators' share. The sockets are bound here,
before either server starts, so a busy port stops the process with one line, and `ADMIN_PORT=0`
(a free port, for several `web` processes on one host) is known and logged in `web.listening`.
SIGTERM or SIGINT stops both gracefully; a second one forces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog
import uvicorn
import uvloop

from config.settings import ConfigError, Settings
from worker.receiver.protocol import GuardedProtocol

log = structlog.get_logger("leadrouter.web")
#: connections the admin listener serves at once (operators and one scraper, not the public)
ADMIN_MAX_CONNECTIONS = 64
BACKLOG = 4096


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_admin_exposure(settings: Settings) -> None:
    """ConfigError unless the admin listener is on loopback or guarded by ADMIN_TOKEN."""
    if settings.admin_token is None and not is_loopback(settings.admin_host):
        raise ConfigError(
            f"ADMIN_TOKEN is required when ADMIN_HOST is not a loopback address "
            f"(ADMIN_HOST={settings.admin_host})"
        )


class Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve` below, which stops both listeners."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(app: Any, settings: Settings, listener: str, max_connections: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=GuardedProtocol.configured(settings.request_timeout_seconds, listener),
        ws="none",
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        # uvicorn answers 503 once len(connections) >= the limit, counting the new one
        limit_concurrency=max_connections + 1,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=10,
        backlog=BACKLOG,
        server_header=False,
        proxy_headers=False,
    )


def bind(host: str, port: int, variables: str) -> socket.socket:
    """A listening socket, or ConfigError naming the variables (HOST:PORT) and the cause."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=BACKLOG)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {variables} {host}:{port} ({exc.strerror or exc})"
        ) from None


def serve(
    settings: Settings,
    public_app: Any,
    admin_app: Any,
    cleanup: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Bind both sockets, serve until a signal, then run `cleanup` (e.g. close Redis)."""
    check_admin_exposure(settings)
    public_sock = bind(settings.host, settings.port, "HOST:PORT")
    try:
        admin_sock = bind(settings.admin_host, settings.admin_port, "ADMIN_HOST:ADMIN_PORT")
    except ConfigError:
        public_sock.close()
        raise
    public = Listener(_config(public_app, settings, "public", settings.max_connections))
    admin = Listener(_config(admin_app, settings, "admin", ADMIN_MAX_CONNECTIONS))
    log.info(
        "web.listening",
        host=settings.host,
        port=public_sock.getsockname()[1],
        admin_host=settings.admin_host,
        admin_port=admin_sock.getsockname()[1],
        admin_auth="token" if settings.admin_token is not None else "open (loopback)",
        max_connections=settings.max_connections,
        uvicorn=uvicorn.__version__,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server in (public, admin):
                server.force_exit = server.should_exit
                server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            await asyncio.gather(
                public.serve(sockets=[public_sock]), admin.serve(sockets=[admin_sock])
            )
        finally:
            if cleanup is not None:
                await cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
