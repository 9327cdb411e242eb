"""A local HTTP listener that records every POST it gets: the follow-up webhook in end-to-end
tests. The `listener` fixture (tests/e2e/conftest.py) starts one per test."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def followup_id(self) -> str:
        return str(self.payload["followup"]["id"])


@dataclass
class Listener:
    """A threaded HTTP server that records every POST and answers 200."""

    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/followups"

    def received(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def per_followup(self) -> Counter[str]:
        return Counter(d.followup_id for d in self.received())

    def of(self, followup_id: str) -> list[Delivery]:
        return [d for d in self.received() if d.followup_id == followup_id]


@contextmanager
def listening() -> Iterator[Listener]:
    found = Listener()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with found.lock:
                found.deliveries.append(Delivery(time.time(), dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    found.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join(5)
