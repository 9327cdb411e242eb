"""Every Leadterra call ends by its overall deadline, and by its task's, against a real local
HTTP server that drips its answer (worker/leadterra/transport.py, worker/budget.py)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpcore
import httpx
import pytest
from pydantic import SecretStr

from tests.conftest import make_settings
from worker import budget, errors
from worker.deadline import wait_until
from worker.followups.notify import Notifier
from worker.leadterra.client import LeadterraClient
from worker.leadterra.transport import DeadlineStream, cap_every_wait, capped_pools

BODY = b'{"data":[' + b'{"id":"sdr_1","gmailConnected":true},' * 60 + b'{"id":"sdr_2"}]}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
DRIP_EVERY = 0.05  # a byte every 50 ms: the whole answer would take over two minutes


@dataclass
class Dripper:
    """What the server does per connection: `mode` is "body", "headers" or "whole"."""

    mode: str = "body"
    sent: list[int] = field(default_factory=list)  # bytes sent, per connection
    left_early: list[bool] = field(default_factory=list)  # the client hung up mid-answer
    stop: threading.Event = field(default_factory=threading.Event)
    connections: int = 0

    def answer(self) -> bytes:
        return HEAD % len(BODY) + BODY

    def serve(self, conn: socket.socket) -> None:
        """Answer requests on `conn`: whole ones for as long as the client keeps it open
        (keep-alive), or one dripped answer."""
        self.connections += 1
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            data = data.split(b"\r\n\r\n", 1)[1]  # GETs carry no body
            if self.mode != "whole":
                return self.drip(conn)
            conn.sendall(self.answer())
            self.sent.append(len(self.answer()))

    def drip(self, conn: socket.socket) -> None:
        answer = self.answer()
        start = 0 if self.mode == "headers" else len(HEAD % len(BODY))
        conn.sendall(answer[:start])
        sent, early = start, False
        for byte in answer[start:]:
            if self.stop.wait(DRIP_EVERY):
                break
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                early = True
                break
            sent += 1
        self.sent.append(sent)
        self.left_early.append(early or sent < len(answer))


@pytest.fixture
def dripper() -> Iterator[tuple[Dripper, str]]:
    dripper = Dripper()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            dripper.serve(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield dripper, f"http://127.0.0.1:{server.server_address[1]}"
    dripper.stop.set()
    server.shutdown()
    server.server_close()


def client_for(url: str, call_seconds: float) -> LeadterraClient:
    return LeadterraClient(
        url, SecretStr("sk_test_key"), timeout=httpx.Timeout(1.0), call_seconds=call_seconds
    )


def wait_hung_up(dripper: Dripper) -> None:
    """The server notices the client left at its next byte; wait for that (bounded)."""
    wait_until(lambda: dripper.left_early, 10, 0.02, what="the dripping server to see a hang-up")


@pytest.mark.parametrize("mode", ["body", "headers"])
def test_a_dripped_answer_ends_at_the_calls_overall_deadline(dripper, mode) -> None:
    server, url = dripper
    server.mode = mode
    leadterra = client_for(url, call_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(errors.TransportFailure) as caught:
        leadterra.list_sdrs()
    took = time.monotonic() - started
    assert "no whole answer within its deadline (1.5 s)" in str(caught.value)
    assert took >= 1.4  # each chunk came within the 1 s read timeout: the deadline ended it
    assert took < 60  # the drip lasts over two minutes; a loaded machine is slow, not that slow
    wait_hung_up(server)
    assert server.left_early == [True]  # the client hung up mid-answer
    leadterra.close()


def test_a_call_ends_at_its_tasks_deadline_when_that_comes_first(dripper) -> None:
    server, url = dripper
    leadterra = client_for(url, call_seconds=60)
    with budget.deadline_in(1.0), pytest.raises(errors.OutOfTime):
        leadterra.list_sdrs()
    wait_hung_up(server)
    assert server.left_early == [True]
    leadterra.close()


def test_a_call_past_its_tasks_deadline_is_never_sent(dripper) -> None:
    server, url = dripper
    leadterra = client_for(url, call_seconds=60)
    with budget.deadline_in(-0.1), pytest.raises(errors.OutOfTime):
        leadterra.list_sdrs()
    assert server.sent == []
    leadterra.close()


def test_a_whole_answer_within_the_deadline_is_read_on_a_reused_connection(dripper) -> None:
    server, url = dripper
    server.mode = "whole"
    leadterra = client_for(url, call_seconds=5)
    with budget.deadline_in(30):
        assert [s.id for s in leadterra.list_sdrs()][-1] == "sdr_2"
    assert len(leadterra.list_sdrs()) == 61  # no deadline in force: httpx's own timeouts
    assert server.connections == 1  # the second call reused the first one's connection
    leadterra.close()


def test_every_pool_the_clients_send_through_has_its_waits_capped() -> None:
    settings = make_settings(followup_webhook_url="https://hooks.example/f")
    leadterra = LeadterraClient.from_settings(settings)
    notifier = Notifier(settings)
    proxied = httpx.Client(
        mounts={"https://": httpx.HTTPTransport(proxy="http://127.0.0.1:9"), "http://": None}
    )
    assert cap_every_wait(proxied) == 2  # its own pool and the proxy's
    for client in (leadterra._http, notifier._http, proxied):
        assert capped_pools(client) and all(capped_pools(client))
    for closing in (leadterra, notifier, proxied):
        closing.close()


class Recorded(httpcore.NetworkStream):
    """A stream that records the timeouts it is asked to wait with."""

    def __init__(self) -> None:
        self.waits: list[tuple[str, float | None]] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.waits.append(("read", timeout))
        return b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.waits.append(("write", timeout))

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        self.waits.append(("tls", timeout))
        return self

    def get_extra_info(self, info: str) -> object:
        return f"info:{info}"


def test_every_wait_of_a_stream_is_capped_tls_included_and_one_past_the_deadline_raises() -> None:
    inner = Recorded()
    stream = DeadlineStream(inner)
    stream.read(10, timeout=30.0)  # no deadline in force: as asked
    with budget.deadline_in(2.0):
        tls = stream.start_tls(ssl_context=None, server_hostname="leadterra.test", timeout=30.0)
        assert isinstance(tls, DeadlineStream)
        tls.write(b"x", timeout=None)
        tls.read(10, timeout=1.0)
    assert inner.waits[0] == ("read", 30.0)
    assert [kind for kind, _ in inner.waits] == ["read", "tls", "write", "read"]
    assert all(0 < wait <= 2.0 for _, wait in inner.waits[1:3])  # type: ignore[operator]
    assert inner.waits[3] == ("read", 1.0)
    assert stream.get_extra_info("socket") == "info:socket"
    with budget.deadline_in(-1.0):
        for late in (
            lambda: stream.read(1),
            lambda: stream.write(b"x"),
            lambda: stream.start_tls(None),
        ):
            with pytest.raises(
                (httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.ConnectTimeout)
            ):
                late()
