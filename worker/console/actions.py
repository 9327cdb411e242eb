"""The console's two actions: replay and drop a dead letter, each a POST form.

    POST /dlq/replay   id=<entry id>&csrf=<token>[&confirmed=yes]
    POST /dlq/drop     the same

Without a valid CSRF token (worker/console/csrf.py) the answer is 403 and nothing happens.
Without `confirmed=yes` the answer is a confirmation page (200) whose form adds it: the step
`confirm()` takes when the page's script runs. Confirmed, the handler calls
`DeadLetters.replay` or `drop` and redirects (303) back to the page's Stuck work panel with a
fixed notice (`replayed`, `dropped`, or `gone` when the entry was no longer there).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from config.settings import Settings
from worker.console.csrf import COOKIE, Csrf
from worker.console.page import SECURITY_HEADERS, confirm_page, message_page
from worker.console.reader import Reader
from worker.console.stuck_panel import dead_letter_row
from worker.errors import TooLarge
from worker.receiver.web import deadline_of, read_body

log = structlog.get_logger("leadrouter.console")
FORM_LIMIT = 8192
MAX_ID_LENGTH = 1000
DONE = {"replay": "replayed", "drop": "dropped"}


def _page(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


async def _form(request: Request, settings: Settings) -> dict[str, str] | None:
    deadline = deadline_of(request, settings.request_timeout_seconds)
    try:
        raw = await read_body(request, FORM_LIMIT, deadline)
    except (TooLarge, TimeoutError, ClientDisconnect):
        return None
    fields = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=8)
    return {name: values[0] for name, values in fields.items() if values}


class Actions:
    def __init__(self, reader: Reader, csrf: Csrf) -> None:
        self.reader = reader
        self.csrf = csrf

    async def replay(self, request: Request) -> Response:
        return await self._act(request, "replay")

    async def drop(self, request: Request) -> Response:
        return await self._act(request, "drop")

    async def _act(self, request: Request, action: str) -> Response:
        form = await _form(request, self.reader.settings)
        if form is None:
            return _page(message_page("Bad request", "The form could not be read."), 400)
        cookie, now = request.cookies.get(COOKIE), time.time()
        if not self.csrf.valid(cookie, form.get("csrf"), now):
            log.warning("console.csrf_refused", action=action, path=request.url.path)
            text = "The form expired or did not come from this console: reload it and try again."
            return _page(message_page("Refused", text), 403)
        entry_id = form.get("id", "")
        if not entry_id or len(entry_id) > MAX_ID_LENGTH:
            return _page(message_page("Bad request", "No dead letter was named."), 400)
        store = self.reader.dead_letters()
        if form.get("confirmed") != "yes":
            entry = await run_in_threadpool(store.get, entry_id)
            if entry is None:
                return RedirectResponse("/?notice=gone#stuck", status_code=303)
            token = self.csrf.token(str(Csrf.nonce_of(cookie)), now)
            row = dead_letter_row(entry, now)
            return _page(confirm_page(action, row, entry_id, token))
        done = await run_in_threadpool(store.replay if action == "replay" else store.drop, entry_id)
        log.info(
            f"console.dlq_{DONE[action]}",
            entry_id=entry_id,
            outcome=DONE[action] if done else "gone",
        )
        return RedirectResponse(
            f"/?notice={DONE[action] if done else 'gone'}#stuck", status_code=303
        )
