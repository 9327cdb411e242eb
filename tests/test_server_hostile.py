"""Hostile clients against the real receiver: `python -m worker web` on a port, over raw sockets.

What the in-process tests cannot show: uvicorn with `GuardedProtocol` (worker/receiver/server.py)
closes a connection whose headers trickle in past HEADER_TIMEOUT, or that sends nothing; the app
answers a trickled body with 408 after BODY_TIMEOUT_SECONDS (worker/receiver/web.py) and a declared
10 MB body with 413 before reading it; and a storm of garbage leaves the process serving.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from worker.children import Child, Children
from worker.deadline import wait_http, wait_until
from worker.embedded_redis import EmbeddedRedis, free_port
from worker.keys import Keys
from worker.receiver.server import HEADER_TIMEOUT
from worker.receiver.web import BODY_TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

SECRET = "whsec_hostile_0123456789abcdef"
PREFIX = "hostile:"
KEYS = Keys(PREFIX)
PATH = "/webhooks/leadterra"
SLACK = 2.0  # seconds allowed past a deadline for the event loop and the kernel


@dataclass
class Receiver:
    proc: Child
    port: int
    redis: redis.Redis

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def healthy(self) -> bool:
        return httpx.get(f"{self.base_url}/healthz", timeout=2).json() == {"status": "ok"}


@pytest.fixture(scope="module")
def receiver(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    port = free_port()
    children = Children(
        Path(tmp_path_factory.mktemp("server-hostile")),
        {
            "LEADTERRA_WEBHOOK_SECRET": SECRET,
            "REDIS_URL": redis_server.url,
            "KEY_PREFIX": PREFIX,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_FORMAT": "json",
        },
    )
    client = redis.Redis.from_url(redis_server.url)
    try:
        proc = children.start("web", [sys.executable, "-m", "worker", "web"])
        wait_http(f"http://127.0.0.1:{port}/healthz", 30, alive=[proc])
        yield Receiver(proc, port, client)
        assert proc.alive(), proc.tail()
        errors = [e for e in proc.events() if e.get("level") in ("error", "critical")]
        assert errors == [], errors
    finally:
        children.stop_all()
        client.close()


@pytest.fixture
def clean(receiver: Receiver) -> Receiver:
    for key in receiver.redis.scan_iter(f"{PREFIX}*"):
        receiver.redis.delete(key)
    return receiver


def queued(receiver: Receiver) -> int:
    return int(receiver.redis.llen(KEYS.queue("assign")))


def seen_keys(receiver: Receiver) -> list[bytes]:
    return list(receiver.redis.scan_iter(KEYS.seen("*")))


def request_head(content_length: int | None, signature: str = "0" * 64, **extra: str) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines.append(f"X-Leadterra-Signature: {signature}")
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle(
    sock: socket.socket,
    data: bytes,
    limit: float,
    every: float = 1.0,
    on_wait: Callable[[], None] | None = None,
) -> tuple[float | None, bytes]:
    """Send `data` one byte per `every` seconds while reading, until the server closes.

    Returns the seconds until the close (None if still open after `limit`) and what it sent.
    """
    start = time.monotonic()
    received = b""
    sent = 0
    next_send = start
    while (now := time.monotonic()) - start < limit:
        if sent < len(data) and now >= next_send:
            try:
                sock.send(data[sent : sent + 1])
            except OSError:  # reset or broken pipe: the server closed on us
                return time.monotonic() - start, received
            sent += 1
            next_send += every
            if on_wait is not None:
                on_wait()
        wake = next_send if sent < len(data) else start + limit
        sock.settimeout(max(0.01, min(wake, start + limit) - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, received
        if not chunk:
            return time.monotonic() - start, received
        received += chunk
    return None, received


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def test_a_client_trickling_its_headers_is_cut_off_and_others_are_served(clean) -> None:
    checks: list[float] = []

    def others_are_served() -> None:
        if len(checks) < 12:
            started = time.monotonic()
            assert clean.healthy()
            checks.append(time.monotonic() - started)

    head = request_head(100)
    with clean.connect() as sock:
        closed_after, received = trickle(
            sock, head, HEADER_TIMEOUT + 3 * SLACK, 1.0, others_are_served
        )
    assert closed_after is not None, "the server kept a header trickler past the header timeout"
    assert HEADER_TIMEOUT - 1 <= closed_after <= HEADER_TIMEOUT + SLACK
    assert received == b""  # closed, not answered: the request never began
    assert len(checks) >= HEADER_TIMEOUT - 1
    assert max(checks) < HEADER_TIMEOUT  # served while the trickler was still connected
    assert queued(clean) == 0


def test_idle_connections_are_closed_fresh_or_after_a_request(clean) -> None:
    """A fresh silent connection by the header timer; a kept-alive one by uvicorn's keep-alive."""
    with clean.connect() as silent, clean.connect() as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        with ThreadPoolExecutor(2) as pool:
            fresh = pool.submit(trickle, silent, b"", HEADER_TIMEOUT + 3 * SLACK)
            after = pool.submit(trickle, kept, b"", HEADER_TIMEOUT + 3 * SLACK)
            (fresh_after, fresh_got), (kept_after, kept_got) = fresh.result(), after.result()
    assert fresh_after is not None
    assert HEADER_TIMEOUT - 1 <= fresh_after <= HEADER_TIMEOUT + SLACK
    assert fresh_got == b""
    assert kept_after is not None and kept_after <= 5 + SLACK  # timeout_keep_alive=5
    assert parse_response(kept_got)[0] == 200


def test_a_trickled_body_gets_408_within_the_body_timeout(clean) -> None:
    body = json.dumps({"event": "reply.received", "data": {"reply": {"id": "rpl_slow"}}}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with clean.connect() as sock:
        sock.sendall(request_head(len(body), signature))
        closed_after, received = trickle(sock, body, BODY_TIMEOUT_SECONDS + 3 * SLACK, 0.5)
    assert closed_after is not None, "a body trickler was kept past the body timeout"
    assert BODY_TIMEOUT_SECONDS - 1 <= closed_after <= BODY_TIMEOUT_SECONDS + SLACK
    status, headers, payload = parse_response(received)
    assert (status, headers["connection"], headers["content-type"]) == (
        408,
        "close",
        "application/json",
    )
    assert json.loads(payload)["status"] == "too_slow"
    assert queued(clean) == 0
    assert seen_keys(clean) == []


def test_a_declared_10_mb_body_is_413_before_any_of_it_is_sent(clean) -> None:
    with clean.connect() as sock:
        sock.sendall(request_head(10 * 1024 * 1024))
        closed_after, received = trickle(sock, b"", 5.0)
    status, headers, payload = parse_response(received)
    assert status == 413
    assert json.loads(payload) == {"status": "too_large", "error": "body too large"}
    assert headers["connection"] == "close"  # the unread body makes the connection unusable
    assert closed_after is not None  # answered and closed without waiting for the body
    assert clean.healthy()


def test_an_undeclared_10_mb_chunked_body_is_413_long_before_its_end(clean) -> None:
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    sent = 0
    received = b""
    with clean.connect() as sock:
        sock.sendall(request_head(None, Transfer_Encoding="chunked"))
        try:
            for _ in range(160):  # 10 MiB
                sock.sendall(chunk)
                sent += 65536
                sock.settimeout(0.01)
                try:
                    received += sock.recv(65536)
                except TimeoutError:
                    continue
                finally:
                    sock.settimeout(5)
                if received:
                    break
        except OSError:  # reset while sending: the server stopped reading
            pass
        if not received:
            _, received = trickle(sock, b"", 3.0)
    assert sent < 2 * 1024 * 1024, f"the server read {sent} bytes of an oversized body"
    if received:  # else the server reset the connection, which is as good
        status, headers, _ = parse_response(received)
        assert (status, headers["connection"]) == (413, "close")
    assert clean.healthy()


def test_a_client_gone_mid_body_leaves_no_error_behind(clean) -> None:
    """The module's teardown fails on any error-level log line, such as an unhandled disconnect."""

    def disconnects() -> list[int]:
        return [e["status"] for e in clean.proc.events() if e.get("outcome") == "disconnected"]

    before = disconnects()
    with clean.connect() as sock:
        sock.sendall(request_head(1000) + b'{"event":"reply.rec')
    wait_until(lambda: len(disconnects()) > len(before), 5, 0.05, what="the disconnect logged")
    assert disconnects() == [*before, 400]
    assert clean.healthy()


def garbage_requests(rng: random.Random) -> list[bytes]:
    """Raw requests a fuzzer or a scanner might send: malformed, partial, hostile, random."""
    junk = [rng.randbytes(rng.randint(1, 4096)) for _ in range(40)]
    body = rng.randbytes(512)
    crafted = [
        b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"BREW /coffee HTCPCP/1.0\r\n\r\n",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\nx",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Content-Length: 7\r\n\r\nhello",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\nzz\r\n",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffff\r\n",
        b"POST "
        + PATH.encode()
        + b" HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 200_000
        + b"\r\n\r\n",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 5000 + b"\r\n",
        b"POST " + PATH.encode() + b"\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Leadterra-Signature: \xff\xfe\r\n"
        b"Content-Length: 512\r\n\r\n" + body,
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
        b"X-Leadterra-Signature: sha256=" + b"0" * 64 + b"\r\nContent-Length: 512\r\n\r\n" + body,
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n[[[[",
        b"POST " + PATH.encode() + b" HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
        b"POST " + PATH.encode() + b" HTTP/2.0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello's start
    ]
    signed = []
    for raw in [rng.randbytes(300), b"[" * 5000, b'{"event":"x","n":' + b"9" * 5000 + b"}", b"[]"]:
        signature = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest().encode()
        signed.append(
            b"POST "
            + PATH.encode()
            + b" HTTP/1.1\r\nHost: x\r\nX-Leadterra-Signature: "
            + signature
            + b"\r\nContent-Length: %d\r\n\r\n" % len(raw)
            + raw
        )
    return crafted + signed + junk


def send_garbage(port: int, raw: bytes) -> int | None:
    """Send `raw`, half-close, and return the status of any answer (None if just closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
    except (ConnectionResetError, BrokenPipeError):
        return None
    if not received.startswith(b"HTTP/"):
        return None
    return parse_response(received)[0]


def test_a_storm_of_concurrent_garbage_leaves_the_server_serving(clean) -> None:
    requests = garbage_requests(random.Random(20250611)) * 5
    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(lambda raw: send_garbage(clean.port, raw), requests))
    answered = [s for s in statuses if s is not None]
    assert answered, "the server answered none of the garbage"
    assert all(s < 500 for s in answered), sorted(set(answered))
    assert clean.proc.alive()
    assert clean.healthy()
    assert queued(clean) == 0
    assert seen_keys(clean) == []
    body = json.dumps(
        {
            "event": "reply.received",
            "data": {"reply": {"id": "rpl_after", "classification": "interested"}},
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = httpx.post(
        f"{clean.base_url}{PATH}", content=body, headers={"X-Leadterra-Signature": signature}
    )
    assert (response.status_code, response.json()["status"]) == (202, "enqueued")
    assert queued(clean) == 1
