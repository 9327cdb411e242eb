"""Hostile clients against the real receiver: `python -m worker web` on free ports, raw sockets.

What the in-process tests cannot show, on every route of both listeners (GuardedProtocol,
worker/receiver/protocol.py, and uvicorn's own limits, worker/receiver/server.py):

* a request still incomplete at REQUEST_TIMEOUT_SECONDS, head or body, before or after the
  answer, has its connection closed (the webhook's slow body gets 408 first);
* an unread body after an answer is drained up to 64 KiB, then the connection is closed;
* a head over 64 KiB gets 431 and a close, before the process grows;
* past MAX_CONNECTIONS a request gets 503 and a close, and the admin listener still answers;
* an idle kept-alive connection is closed after KEEP_ALIVE_SECONDS;
* 200 slow clients at once do not stop a signed webhook from being answered, during or after;
* a storm of garbage leaves the process serving.

The deadlines here are shortened (3 s and 2 s); assertions allow SLACK past each. With
LEADROUTER_TEST_UVICORN_PATH set (tests/test_uvicorn_versions.py), the receivers run with that
folder's uvicorn ahead of the installed one: the lowest version the pin allows.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
import re
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
import uvicorn

from worker.children import Child, Children
from worker.deadline import wait_http, wait_until
from worker.embedded_redis import EmbeddedRedis, free_port
from worker.keys import Keys
from worker.receiver.protocol import DRAIN_CAP, HEAD_CAP

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_hostile_0123456789abcdef"
PREFIX = "hostile:"
KEYS = Keys(PREFIX)
PATH = "/webhooks/leadterra"
REQUEST_TIMEOUT = 3.0
KEEP_ALIVE = 2
SLACK = 2.0  # seconds allowed past a deadline for the event loop and the kernel
#: set by tests/test_uvicorn_versions.py: a folder holding another uvicorn, and its version
UVICORN_PATH = os.environ.get("LEADROUTER_TEST_UVICORN_PATH")
UVICORN_VERSION = os.environ.get("LEADROUTER_TEST_UVICORN_VERSION", uvicorn.__version__)


@dataclass
class Receiver:
    proc: Child
    port: int
    admin_port: int
    redis: redis.Redis

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def connect(self, admin: bool = False) -> socket.socket:
        port = self.admin_port if admin else self.port
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    def healthy(self) -> bool:
        return httpx.get(f"{self.base_url}/healthz", timeout=5).json() == {"status": "ok"}

    def post_signed(self, reply_id: str) -> httpx.Response:
        body = signed_body(reply_id)
        return httpx.post(
            f"{self.base_url}{PATH}",
            content=body,
            headers={"X-Leadterra-Signature": sign(body)},
            timeout=10,
        )


def sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def signed_body(reply_id: str) -> bytes:
    envelope = {
        "event": "reply.received",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {"reply": {"id": reply_id, "classification": "interested"}},
    }
    return json.dumps(envelope).encode()


def start_receiver(
    redis_server: EmbeddedRedis, folder: Path, **env: str
) -> tuple[Children, Receiver]:
    port = free_port()
    environment = {
        "LEADTERRA_WEBHOOK_SECRET": SECRET,
        "REDIS_URL": redis_server.url,
        "KEY_PREFIX": PREFIX,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ADMIN_PORT": "0",  # a free port, logged in web.listening
        "REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT),
        "KEEP_ALIVE_SECONDS": str(KEEP_ALIVE),
        "LOG_FORMAT": "json",
        **env,
    }
    if UVICORN_PATH:
        environment["PYTHONPATH"] = os.pathsep.join([UVICORN_PATH, str(ROOT)])
    children = Children(folder, environment)
    proc = children.start("web", [sys.executable, "-m", "worker", "web"])
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 30, alive=[proc])
        [listening] = [e for e in proc.events() if e.get("event") == "web.listening"]
    except BaseException:
        children.stop_all()
        raise
    client = redis.Redis.from_url(redis_server.url)
    return children, Receiver(proc, port, listening["admin_port"], client)


def no_errors_logged(receiver: Receiver) -> None:
    assert receiver.proc.alive(), receiver.proc.tail()
    errors = [e for e in receiver.proc.events() if e.get("level") in ("error", "critical")]
    assert errors == [], errors


@pytest.fixture(scope="module")
def receiver(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    children, started = start_receiver(redis_server, tmp_path_factory.mktemp("server-hostile"))
    try:
        yield started
        no_errors_logged(started)
    finally:
        children.stop_all()
        started.redis.close()


@pytest.fixture
def clean(receiver: Receiver) -> Receiver:
    for key in receiver.redis.scan_iter(f"{PREFIX}*"):
        receiver.redis.delete(key)
    return receiver


def queued(receiver: Receiver) -> int:
    return int(receiver.redis.llen(KEYS.queue("assign")))


def seen_keys(receiver: Receiver) -> list[bytes]:
    return list(receiver.redis.scan_iter(KEYS.seen("*")))


def request_head(
    content_length: int | None,
    signature: str = "0" * 64,
    method: str = "POST",
    path: str = PATH,
    **extra: str,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
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


def statuses(raw: bytes) -> list[int]:
    """The status of every response in a stream of them."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def send_until_closed(
    sock: socket.socket, head: bytes, chunk: bytes, total: int
) -> tuple[int, bytes]:
    """Send `head`, then `chunk` repeatedly up to `total` bytes while reading; stop when the
    server closes. Returns the bytes of `chunk` sent and what was received."""
    sent, received = 0, b""
    try:
        sock.sendall(head)
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
            sock.settimeout(0.001)
            try:
                got = sock.recv(65536)
                if not got:
                    break
                received += got
            except TimeoutError:
                pass
            finally:
                sock.settimeout(5)
    except OSError:  # reset or broken pipe: the server stopped reading and closed
        pass
    _, rest = trickle(sock, b"", 3.0)
    return sent, received + rest


# -- which uvicorn -------------------------------------------------------------------------------


def test_the_receiver_runs_the_uvicorn_under_test(receiver) -> None:
    [listening] = [e for e in receiver.proc.events() if e.get("event") == "web.listening"]
    assert listening["uvicorn"] == UVICORN_VERSION
    assert listening["admin_port"] not in (0, 9000, receiver.port)  # ADMIN_PORT=0: a free one


# -- the request deadline ----------------------------------------------------------------------


def test_a_client_trickling_its_head_is_cut_off_at_the_deadline_and_others_are_served(
    clean,
) -> None:
    checks: list[float] = []

    def others_are_served() -> None:
        started = time.monotonic()
        assert clean.healthy()
        checks.append(time.monotonic() - started)

    with clean.connect() as sock:
        closed_after, received = trickle(
            sock, request_head(100), REQUEST_TIMEOUT + 3 * SLACK, 0.5, others_are_served
        )
    assert closed_after is not None, "the server kept a head trickler past the deadline"
    assert REQUEST_TIMEOUT - 1 <= closed_after <= REQUEST_TIMEOUT + SLACK
    assert received == b""  # closed, not answered: the request never began
    assert len(checks) >= 2 * (REQUEST_TIMEOUT - 1)
    assert queued(clean) == 0


def test_idle_connections_are_closed_fresh_by_the_deadline_or_after_a_request_by_keep_alive(
    clean,
) -> None:
    with clean.connect() as silent, clean.connect() as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        with ThreadPoolExecutor(2) as pool:
            fresh = pool.submit(trickle, silent, b"", REQUEST_TIMEOUT + 3 * SLACK)
            after = pool.submit(trickle, kept, b"", REQUEST_TIMEOUT + 3 * SLACK)
            (fresh_after, fresh_got), (kept_after, kept_got) = fresh.result(), after.result()
    assert fresh_after is not None
    assert REQUEST_TIMEOUT - 1 <= fresh_after <= REQUEST_TIMEOUT + SLACK
    assert fresh_got == b""
    assert kept_after is not None and KEEP_ALIVE - 1 <= kept_after <= KEEP_ALIVE + SLACK
    assert parse_response(kept_got)[0] == 200


def test_a_trickled_webhook_body_gets_408_at_the_request_deadline(clean) -> None:
    body = signed_body("rpl_slow")
    with clean.connect() as sock:
        sock.sendall(request_head(len(body), sign(body)))
        closed_after, received = trickle(sock, body, REQUEST_TIMEOUT + 3 * SLACK, 0.25)
    assert closed_after is not None, "a body trickler was kept past the deadline"
    assert REQUEST_TIMEOUT - 1 <= closed_after <= REQUEST_TIMEOUT + SLACK
    status, headers, payload = parse_response(received)
    assert (status, headers["connection"], headers["content-type"]) == (
        408,
        "close",
        "application/json",
    )
    assert json.loads(payload)["status"] == "too_slow"
    assert queued(clean) == 0
    assert seen_keys(clean) == []


ROUTES = [
    # (admin listener?, method, path, the answer before the body is in)
    (False, "GET", "/healthz", 200),
    (False, "GET", "/metrics", 404),
    (False, "GET", "/readyz", 404),
    (False, "GET", "/openapi.json", 404),
    (False, "GET", "/no/such/page", 404),
    (False, "DELETE", "/healthz", 405),
    (False, "GET", PATH, 405),
    (True, "GET", "/metrics", 200),
    (True, "GET", "/readyz", 503),  # no worker in this test: not ready, with the reason
    (True, "GET", "/openapi.json", 200),
    (True, "POST", "/metrics", 405),
    (True, "GET", "/no/such/page", 404),
]


def test_on_every_route_a_body_trickled_after_the_answer_is_cut_at_the_deadline(clean) -> None:
    """The defect: after /healthz, /metrics or a 404/405 had answered, a body trickled one byte
    at a time kept the connection open for as long as the client liked."""

    def one(route: tuple[bool, str, str, int]) -> tuple[float | None, bytes]:
        admin, method, path, _ = route
        with clean.connect(admin) as sock:
            sock.sendall(request_head(1000, method=method, path=path))
            return trickle(sock, b"x" * 1000, REQUEST_TIMEOUT + 3 * SLACK, 0.25)

    with ThreadPoolExecutor(len(ROUTES)) as pool:
        results = list(pool.map(one, ROUTES))
    for route, (closed_after, received) in zip(ROUTES, results, strict=True):
        assert statuses(received) == [route[3]], (route, received[:200])
        assert closed_after is not None, f"{route}: kept open past the deadline"
        assert REQUEST_TIMEOUT - 1 <= closed_after <= REQUEST_TIMEOUT + SLACK, route
    assert clean.healthy()


# -- unread bodies, heads, connections -----------------------------------------------------------


def test_an_unread_body_beyond_the_drain_cap_closes_the_connection(clean) -> None:
    with clean.connect() as sock:
        head = request_head(10 * 1024 * 1024, method="GET", path="/healthz")
        sent, received = send_until_closed(sock, head, b"x" * 16384, 10 * 1024 * 1024)
    assert statuses(received) == [200]
    assert sent < 4 * 1024 * 1024, f"the server read {sent} bytes of an unread body"
    assert clean.healthy()


def test_a_small_unread_body_is_drained_and_the_connection_serves_on_then_idles_out(
    clean,
) -> None:
    with clean.connect() as sock:
        sock.sendall(request_head(DRAIN_CAP // 2, method="GET", path="/healthz"))
        wait_until(lambda: sock.recv(65536), 5, what="the answer before the body")
        sock.sendall(b"x" * (DRAIN_CAP // 2) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        closed_after, received = trickle(sock, b"", KEEP_ALIVE + 3 * SLACK)
    assert statuses(received) == [200], (closed_after, received)  # the next answer, same connection
    assert closed_after is not None and closed_after <= KEEP_ALIVE + SLACK  # then kept alive


def big_heads() -> dict[str, bytes]:
    return {
        "one 70 KiB header": request_head(2, X_Big="a" * 70 * 1024) + b"{}",
        "8,000 small headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 8000,
        "a 70 KiB URL": b"GET /healthz?" + b"q" * 70 * 1024 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    }


@pytest.mark.parametrize("name", sorted(big_heads()))
def test_a_head_over_64_kib_gets_431_and_a_close(clean, name) -> None:
    with clean.connect() as sock:
        sent, received = send_until_closed(sock, big_heads()[name], b"", 0)
    status, headers, body = parse_response(received)
    assert (status, headers["connection"]) == (431, "close")
    assert json.loads(body)["status"] == "headers_too_large"
    assert clean.healthy()


def test_a_head_just_under_64_kib_is_served(clean) -> None:
    filler = "a" * (HEAD_CAP - 1024)
    with clean.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + filler.encode() + b"\r\n\r\n")
        _, received = trickle(sock, b"", KEEP_ALIVE + 3 * SLACK)
    assert statuses(received) == [200]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_four_32_mib_heads_get_431_and_leave_the_receiver_small(clean) -> None:
    """The defect: four connections with 32 MiB headers took the receiver from 64 to 256 MiB."""
    before = rss_kib(clean.proc.pid)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: "

    def flood(_: int) -> tuple[int, bytes]:
        with clean.connect() as sock:
            return send_until_closed(sock, head, b"a" * 65536, 32 * 1024 * 1024)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(flood, range(4)))
    for sent, received in results:
        assert sent < 8 * 1024 * 1024, f"the server read {sent} bytes of one head"
        if received:  # else reset while sending, which is as good
            assert statuses(received) == [431]
    assert rss_kib(clean.proc.pid) - before < 16 * 1024
    assert clean.healthy()


# -- many slow clients at once -------------------------------------------------------------------


async def _slow_client(port: int, kind: int, limit: float) -> float | None:
    """One slow client; the seconds until the server closed on it (None: still open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    heads = [
        request_head(100),  # trickles its head
        request_head(1000, method="GET", path="/healthz") + b"x",  # answered, trickles its body
        b"",  # says nothing
    ]
    data = heads[kind % 3]
    sent = 0 if kind % 3 == 0 else len(data)
    if sent:
        writer.write(data)
    try:
        while time.monotonic() - start < limit:
            if kind % 3 == 0 and sent < len(data):
                writer.write(data[sent : sent + 1])
                sent += 1
            elif kind % 3 == 1:
                writer.write(b"x")
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                continue
            if not chunk:
                return time.monotonic() - start
        return None
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - start
    finally:
        writer.close()


def test_200_slow_clients_at_once_and_a_signed_webhook_is_answered_during_and_after(
    clean,
) -> None:
    async def run() -> tuple[list[float | None], list[int], int]:
        limit = REQUEST_TIMEOUT + 3 * SLACK
        clients = [asyncio.create_task(_slow_client(clean.port, n, limit)) for n in range(200)]
        await asyncio.sleep(0.5)  # let them all connect and start trickling
        async with httpx.AsyncClient(timeout=10) as http:
            during = []
            for n in range(3):
                body = signed_body(f"rpl_during_{n}")
                answer = await http.post(
                    f"{clean.base_url}{PATH}",
                    content=body,
                    headers={"X-Leadterra-Signature": sign(body)},
                )
                during.append(answer.status_code)
            ready = (await http.get(f"{clean.admin_url}/readyz")).status_code
        return await asyncio.gather(*clients), during, ready

    closed, during, ready = asyncio.run(run())
    assert during == [202, 202, 202]
    assert ready == 503  # answered (no worker here), not queued behind the slow clients
    still_open = [n for n, after in enumerate(closed) if after is None]
    assert still_open == [], f"{len(still_open)} slow clients kept past the deadline"
    assert max(c for c in closed if c is not None) <= REQUEST_TIMEOUT + SLACK
    assert clean.post_signed("rpl_after").status_code == 202
    assert queued(clean) == 4


@pytest.fixture(scope="module")
def capped(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    children, started = start_receiver(
        redis_server,
        tmp_path_factory.mktemp("server-capped"),
        MAX_CONNECTIONS="10",
        KEEP_ALIVE_SECONDS="60",
    )
    try:
        yield started
        no_errors_logged(started)
    finally:
        children.stop_all()
        started.redis.close()


def test_past_max_connections_a_request_gets_503_and_the_admin_listener_answers(capped) -> None:
    held = [capped.connect() for _ in range(10)]
    try:
        for sock in held:  # ten connections, each kept alive after a request
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert statuses(wait_until(lambda s=sock: s.recv(65536), 5)) == [200]
        with capped.connect() as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            closed_after, received = trickle(extra, b"", 5.0)
        status, headers, _ = parse_response(received)
        assert (status, headers["connection"]) == (503, "close")
        assert closed_after is not None
        assert httpx.get(f"{capped.admin_url}/metrics", timeout=5).status_code == 200
    finally:
        for sock in held:
            sock.close()
    wait_until(capped.healthy, 10, what="a connection freed")


# -- bodies declared or sent too large, clients gone, garbage -----------------------------------


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
    with clean.connect() as sock:
        sent, received = send_until_closed(
            sock, request_head(None, Transfer_Encoding="chunked"), chunk, 10 * 1024 * 1024
        )
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
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello's start
    ]
    signed = []
    for raw in [rng.randbytes(300), b"[" * 5000, b'{"event":"x","n":' + b"9" * 5000 + b"}", b"[]"]:
        signed.append(
            b"POST "
            + PATH.encode()
            + b" HTTP/1.1\r\nHost: x\r\nX-Leadterra-Signature: "
            + sign(raw).encode()
            + b"\r\nContent-Length: %d\r\n\r\n" % len(raw)
            + raw
        )
    return crafted + signed + junk


def send_garbage(port: int, raw: bytes) -> int | None:
    """Send `raw`, half-close, and return the status of any answer (None if just closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT + 5) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
    except OSError:  # reset, broken pipe, or closed before the half-close (431)
        return None
    if not received.startswith(b"HTTP/"):
        return None
    return parse_response(received)[0]


def test_a_storm_of_concurrent_garbage_leaves_both_listeners_serving(clean) -> None:
    requests = garbage_requests(random.Random(20250611)) * 5
    to_admin = requests[: len(requests) * 2 // 5]
    ports = [clean.port] * len(requests) + [clean.admin_port] * len(to_admin)
    requests += to_admin
    with ThreadPoolExecutor(64) as pool:
        found = list(pool.map(send_garbage, ports, requests))
    answered = [s for s in found if s is not None]
    assert answered, "the server answered none of the garbage"
    assert all(s < 500 for s in answered), sorted(set(answered))
    assert clean.proc.alive()
    assert clean.healthy()
    assert httpx.get(f"{clean.admin_url}/openapi.json", timeout=5).status_code == 200
    assert queued(clean) == 0
    assert seen_keys(clean) == []
    response = clean.post_signed("rpl_after")
    assert (response.status_code, response.json()["status"]) == (202, "enqueued")
    assert queued(clean) == 1
