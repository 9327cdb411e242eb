"""Every socket wait of the client capped by the deadline in force (worker/budget.py).

httpx's timeouts apply per operation: the read timeout bounds each wait for the next chunk, so a
server (or proxy) that drips its answer, a header or a byte at a time, holds a thread for as
long as it likes. `DeadlineBackend` wraps httpcore's network backend so that every connect,
TLS handshake, write and read waits at most until the deadline, and one past it raises
httpcore's own timeout (which httpx turns into `httpx.TimeoutException`). The cap is read at
each wait, in the calling thread, so a pooled keep-alive connection obeys the call that uses
it now.

`cap_every_wait(client)` installs it under each connection pool of an `httpx.Client`: its own
and any proxy's (HTTP_PROXY and friends). httpx does not let a caller choose the pool's network
backend, so this reaches `_transport`, `_mounts` and httpcore's `_network_backend`; the project
pins httpx 0.28, and tests/test_leadterra_deadline.py fails if a pool is left uncapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from worker import budget

SocketOptions = Iterable[Any] | None


def _capped(timeout: float | None, late: type[Exception]) -> float | None:
    left = budget.remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise late("the deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the deadline in force."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _capped(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _capped(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        wait = _capped(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, its connections wrapped in `DeadlineStream`."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.NetworkStream:
        wait = _capped(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(
            self.inner.connect_tcp(host, port, wait, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: SocketOptions = None
    ) -> httpcore.NetworkStream:
        wait = _capped(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self.inner.connect_unix_socket(path, wait, socket_options))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _pools(client: httpx.Client) -> list[Any]:
    transports: list[Any] = [client._transport, *client._mounts.values()]
    return [t._pool for t in transports if isinstance(t, httpx.HTTPTransport)]


def cap_every_wait(client: httpx.Client) -> int:
    """Cap every socket wait of `client`'s own pools by the deadline; return how many pools.

    A transport passed in by the caller (tests' `httpx.MockTransport`) has no sockets and is
    left as it is."""
    pools = _pools(client)
    for pool in pools:
        if not isinstance(pool._network_backend, DeadlineBackend):
            pool._network_backend = DeadlineBackend(pool._network_backend)
    return len(pools)


def capped_pools(client: httpx.Client) -> list[bool]:
    """For tests: whether each of `client`'s pools has its waits capped."""
    return [isinstance(pool._network_backend, DeadlineBackend) for pool in _pools(client)]
