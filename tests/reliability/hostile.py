"""Hostile HTTP clients for the receiver scenarios: slow clients on every route, header floods.

Raw sockets, so nothing between the client and the receiver's protocol tidies the bytes up.
Each client reports how long the receiver let it hold its connection (None: still open at the
client's own limit) and the statuses it was answered with.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

WEBHOOK = "/webhooks/leadterra"


@dataclass(frozen=True)
class Slow:
    """A request sent at once up to `head`, then `trickle` one byte every `every` seconds."""

    port: int
    route: str
    head: bytes
    trickle: bytes


@dataclass
class Held:
    route: str
    seconds: float | None
    statuses: list[int] = field(default_factory=list)


def head(method: str, path: str, content_length: int | None = 1000) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def every_route(public: int, admin: int, count: int, admin_count: int) -> list[Slow]:
    """`count` slow clients on the public port and `admin_count` on the admin one, spread over
    every kind of route and every phase: the head, a body before and after the answer."""
    public_kinds = [
        Slow(public, "head trickled", b"", head("POST", WEBHOOK)),
        Slow(public, "silent", b"", b""),
        Slow(public, "webhook body (408)", head("POST", WEBHOOK), b"x" * 1000),
        Slow(public, "/healthz body after 200", head("GET", "/healthz"), b"x" * 1000),
        Slow(public, "/metrics body after 404", head("GET", "/metrics"), b"x" * 1000),
        Slow(public, "unknown path body after 404", head("GET", "/nope"), b"x" * 1000),
        Slow(public, "/healthz body after 405", head("DELETE", "/healthz"), b"x" * 1000),
    ]
    admin_kinds = [
        Slow(admin, "admin /metrics body after 200", head("GET", "/metrics"), b"x" * 1000),
        Slow(admin, "admin /readyz body after the answer", head("GET", "/readyz"), b"x" * 1000),
        Slow(admin, "admin /openapi.json body after 200", head("GET", "/openapi.json"), b"x" * 999),
        Slow(admin, "admin head trickled", b"", head("GET", "/metrics")),
    ]
    return [public_kinds[n % len(public_kinds)] for n in range(count)] + [
        admin_kinds[n % len(admin_kinds)] for n in range(admin_count)
    ]


def statuses(raw: bytes) -> list[int]:
    return [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


async def _slow(client: Slow, limit: float, every: float) -> Held:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    start, received, sent = time.monotonic(), b"", 0
    try:
        if client.head:
            writer.write(client.head)
        while time.monotonic() - start < limit:
            if sent < len(client.trickle):
                writer.write(client.trickle[sent : sent + 1])
                sent += 1
            try:
                chunk = await asyncio.wait_for(reader.read(65536), every)
            except TimeoutError:
                continue
            if not chunk:
                return Held(client.route, time.monotonic() - start, statuses(received))
            received += chunk
        return Held(client.route, None, statuses(received))
    except OSError:  # reset or broken pipe: closed on us
        return Held(client.route, time.monotonic() - start, statuses(received))
    finally:
        writer.close()


def run_slow_clients(clients: list[Slow], limit: float, every: float = 0.25) -> list[Held]:
    """Every client at once, each until the receiver closes on it or `limit` passes."""

    async def run() -> list[Held]:
        return list(await asyncio.gather(*(_slow(c, limit, every) for c in clients)))

    return asyncio.run(run())


@dataclass
class Flooded:
    sent: int
    statuses: list[int]
    seconds: float


def flood_head(port: int, size: int) -> Flooded:
    """One header of `size` bytes, sent as fast as the receiver takes it."""
    start, sent, received = time.monotonic(), 0, b""
    chunk = b"a" * 65536
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
            while data := sock.recv(65536):
                received += data
    except OSError:  # reset or broken pipe: the receiver stopped reading and closed
        pass
    return Flooded(sent, statuses(received), time.monotonic() - start)


def header_flood(port: int, connections: int, size: int) -> list[Flooded]:
    with ThreadPoolExecutor(connections) as pool:
        return list(pool.map(lambda _: flood_head(port, size), range(connections)))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")
