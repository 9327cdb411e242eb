"""`POST /slack/actions`: the Send, Skip and Snooze buttons of a draft's Slack message.

In the order checked, each refusal logged once and nothing done:

    413 / 408 / 400   the body passes MAX_BODY (64 KiB), arrives too slowly, or stops
    401               Slack's v0 signature fails (`slack.refused`, its reason), or the same
                      signed request came before (`slack.refused`, reason `replay`: its
                      `replay_key` is SET NX for REPLAY_TTL_SECONDS)
    400               not a `block_actions` payload with a user, an action, a value and
                      Slack's own `response_url`
    503               Redis is down (the replay key cannot be stored)
    200               everything else, at once and with an empty body (Slack's 3 s): the
                      work runs in the background and its answer is POSTed to `response_url`

After the signature: an unknown `action_id` is ignored (`slack.ignored`); the button's value is
the send link's query string, verified like the link (`draft.link_refused`); only the draft's
SDR (the roster's `slack_user_id`) or a user in SLACK_ADMIN_USER_IDS may act, anyone else gets
an ephemeral note (`draft.action_refused`, with the Slack user id). The work: Send is the same
`send_draft` as the link's (actor `slack:<user>`), Skip and Snooze are
worker/oneclick/followup_buttons.py. Its answer replaces the original message when final, else
is an ephemeral note; a failed POST to `response_url` is logged (`slack.respond_failed`), never
with the URL.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import httpx
from redis.exceptions import RedisError
from starlette import status
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from worker import budget, errors
from worker.drafts.freshness import find_thread
from worker.drafts.record import DraftRecord
from worker.drafts.sending import load_record, send_draft
from worker.errors import LinkRefused, Malformed, SlackRefused, TooLarge
from worker.leadterra.client import USER_AGENT
from worker.leadterra.models import Thread
from worker.logs import get_logger
from worker.oneclick.followup_buttons import SKIP, SNOOZE, press
from worker.oneclick.links import LinkClaims
from worker.oneclick.preview import PREVIEW_SECONDS
from worker.oneclick.slack_auth import (
    REPLAY_TTL_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    replay_key,
    verify_slack,
)
from worker.oneclick.slack_messages import (
    ACTIONS,
    NOT_ALLOWED,
    SEND_ACTION,
    SKIP_ACTION,
    SlackAction,
    ephemeral,
    link_refused,
    parse_action,
    replacement,
    send_said,
)
from worker.runtime import Runtime

if TYPE_CHECKING:
    from worker.oneclick.web_routes import OneClick

log = get_logger("leadrouter.slack")
MAX_BODY = 64 * 1024
REDIS_TIMEOUT = 5.0
#: how long the app's shutdown waits for work in flight
DRAIN_SECONDS = 30.0
FAILED = "Something went wrong; nothing more was done. Try again shortly."


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def allowed(rt: Runtime, claims: LinkClaims, user_id: str) -> bool:
    """Whether `user_id` may act on the draft: its SDR (the roster) or a leadrouter admin."""
    return user_id in rt.settings.slack_admin_user_ids or rt.slack_user_id(claims.sdr_id) == user_id


def work(rt: Runtime, action: SlackAction, claims: LinkClaims) -> dict[str, Any]:
    """The button's work (sync, in a thread), answered as Slack's message."""
    user = action.user_id
    thread = None
    if action.action_id == SEND_ACTION:
        outcome = send_draft(rt, claims, actor=f"slack:{user}")
        (said, final), record, thread = send_said(outcome, user), outcome.record, outcome.thread
    else:
        result = press(rt, claims, SKIP if action.action_id == SKIP_ACTION else SNOOZE, user)
        said, final, record = result.text, result.final, load_record(rt, claims)
    if not final or record is None:
        return ephemeral(said)
    return replacement(record, thread or thread_of(rt, record), said)


def thread_of(rt: Runtime, record: DraftRecord) -> Thread | None:
    """The draft's thread for the rebuilt message, best effort (None when it cannot be read)."""
    try:
        with budget.deadline_in(PREVIEW_SECONDS):
            return find_thread(rt.for_sdr(record.sdr_id).inbox_all(), record.thread_id)
    except errors.ServiceError:
        return None


class SlackActions:
    """The endpoint's state: the secrets, an HTTP client for `response_url`, work in flight."""

    def __init__(self, owner: OneClick, transport: httpx.AsyncBaseTransport | None = None) -> None:
        settings = owner.settings
        self.owner = owner
        self.secrets = [
            secret.get_secret_value() for secret in (settings.slack_signing_secret,) if secret
        ]
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(5.0, connect=3.0),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            follow_redirects=False,
        )
        self.pending: set[asyncio.Task[None]] = set()

    async def handle(self, request: Request) -> Response:
        from worker.receiver.web import deadline_of, read_body  # web.py mounts this module

        started = time.perf_counter()
        try:
            deadline = deadline_of(request, self.owner.settings.request_timeout_seconds)
            body = await read_body(request, MAX_BODY, deadline)
        except TooLarge:
            return self._refuse(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", started)
        except TimeoutError:
            return self._refuse(status.HTTP_408_REQUEST_TIMEOUT, "too_slow", started)
        except ClientDisconnect:
            return self._refuse(status.HTTP_400_BAD_REQUEST, "disconnected", started)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        try:
            verify_slack(
                self.secrets,
                body=body,
                timestamp=timestamp,
                signature=signature,
                now=int(time.time()),
            )
            if not await self._first_time(timestamp or "", signature or ""):
                return self._refuse(status.HTTP_401_UNAUTHORIZED, "replay", started)
            action = parse_action(body)
        except SlackRefused as refused:
            return self._refuse(status.HTTP_401_UNAUTHORIZED, refused.reason, started)
        except Malformed:
            return self._refuse(status.HTTP_400_BAD_REQUEST, "malformed", started)
        except (RedisError, OSError, TimeoutError) as exc:
            log.error("slack.unavailable", error=type(exc).__name__, duration_ms=_ms(started))
            return PlainTextResponse("unavailable", status.HTTP_503_SERVICE_UNAVAILABLE)
        try:
            await self._accept(action, started)
        except (RedisError, OSError, errors.ConfigError) as exc:  # the roster or Redis, not Slack
            log.error("slack.unavailable", error=type(exc).__name__, duration_ms=_ms(started))
            return PlainTextResponse("unavailable", status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(status_code=status.HTTP_200_OK)

    async def _first_time(self, timestamp: str, signature: str) -> bool:
        """Store this signed request's replay key; False when it was there already."""
        key = self.owner.keys.slack_replay(replay_key(timestamp, signature))
        async with asyncio.timeout(REDIS_TIMEOUT):
            return bool(await self.owner.redis.set(key, "1", nx=True, ex=REPLAY_TTL_SECONDS))

    def _refuse(self, code: int, reason: str, started: float) -> Response:
        self.owner.metrics.drafts.labels("slack_refused").inc()
        log.warning("slack.refused", reason=reason, status=code, duration_ms=_ms(started))
        return PlainTextResponse("refused", status_code=code)

    async def _accept(self, action: SlackAction, started: float) -> None:
        """After the signature: the action, the link, the user; the work in the background."""
        if action.action_id not in ACTIONS:
            log.info("slack.ignored", slack_user_id=action.user_id, duration_ms=_ms(started))
            return
        try:
            claims = self.owner.claims_of(action.link_params(), "slack", started)
        except LinkRefused as refused:
            self._spawn(self._respond(action, ephemeral(link_refused(refused.reason))))
            return
        if not await self.owner.call(allowed, claims, action.user_id):
            self.owner.metrics.drafts.labels("action_refused").inc()
            log.warning(
                "draft.action_refused",
                slack_user_id=action.user_id,
                action=action.action_id,
                draft_id=claims.draft_id,
                followup_id=claims.followup_id,
                sdr_id=claims.sdr_id,
                duration_ms=_ms(started),
            )
            self._spawn(self._respond(action, ephemeral(NOT_ALLOWED)))
            return
        self._spawn(self._act(action, claims))

    async def _act(self, action: SlackAction, claims: LinkClaims) -> None:
        try:
            message = await self.owner.call(work, action, claims)
        except Exception as exc:  # logged here; the task has no one else to tell
            log.error(
                "slack.action_failed",
                slack_user_id=action.user_id,
                action=action.action_id,
                draft_id=claims.draft_id,
                error=type(exc).__name__,
            )
            message = ephemeral(FAILED)
        await self._respond(action, message)

    async def _respond(self, action: SlackAction, message: dict[str, Any]) -> None:
        """POST the answer to Slack's `response_url`; a failure is logged, never raised."""
        started = time.perf_counter()
        try:
            response = await self.http.post(action.response_url, json=message)
            code = response.status_code
        except httpx.HTTPError as exc:  # its text holds the URL: the type name only
            log.warning("slack.respond_failed", error=type(exc).__name__, duration_ms=_ms(started))
            return
        if code >= 300:
            log.warning("slack.respond_failed", status=code, duration_ms=_ms(started))

    def _spawn(self, job: Any) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Wait for the work in flight (tests; the app's shutdown)."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout)

    async def aclose(self) -> None:
        await self.drain()
        for task in self.pending:
            task.cancel()
        await self.http.aclose()
