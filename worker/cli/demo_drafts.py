"""The demo's drafts: a local inbox for follow-up notifications, and an SDR who clicks Send.

The demo turns FOLLOWUP_DRAFTS on with a fresh ACTION_SECRET and PUBLIC_BASE_URL at its own
receiver. `Inbox` is the follow-up webhook (FOLLOWUP_WEBHOOK_URL): a threaded HTTP server on
loopback that keeps each notification's `draft.sendUrl`. Once the follow-ups are decided,
`click_all` POSTs every link once, twice for every fourth (a double click: sent once), as an
SDR clicking Send on the confirmation page would; the summary counts what the logs say.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

#: how many clicks run at once, and how long one may take
CLICKERS, CLICK_SECONDS = 8, 30.0


def drafts_environment(receiver: str, inbox: str) -> dict[str, str]:
    """The settings that turn drafts on for the demo: links under the demo's own receiver."""
    return {
        "FOLLOWUP_DRAFTS": "true",
        "PUBLIC_BASE_URL": receiver,
        "ACTION_SECRET": secrets.token_urlsafe(32),
        "FOLLOWUP_WEBHOOK_URL": inbox,
    }


class Inbox:
    """The send links the follow-up webhook delivered, by follow-up id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._links: dict[str, str] = {}
        self.url = ""

    def add(self, body: bytes) -> None:
        try:
            note = json.loads(body)
            followup, draft = note["followup"]["id"], note.get("draft") or {}
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(draft, dict) and isinstance(draft.get("sendUrl"), str):
            with self._lock:
                self._links[str(followup)] = draft["sendUrl"]

    def links(self) -> list[str]:
        with self._lock:
            return [self._links[k] for k in sorted(self._links)]


@contextmanager
def inbox() -> Iterator[Inbox]:
    """An `Inbox` listening on loopback for as long as the block runs."""
    found = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            found.add(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    found.url = f"http://127.0.0.1:{server.server_address[1]}/followups"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def click_all(links: list[str]) -> dict[int, int]:
    """POST each link (every fourth twice at once): how many answers had each status."""
    clicks = [link for n, link in enumerate(links) for _ in range(2 if n % 4 == 0 else 1)]

    def click(link: str) -> int:
        try:
            return httpx.post(link, timeout=CLICK_SECONDS).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(CLICKERS) as pool:
        codes = list(pool.map(click, clicks))
    return {code: codes.count(code) for code in sorted(set(codes))}
