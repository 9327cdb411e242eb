"""The one-click routes on the public app, mounted when ACTION_SECRET is set (both intake modes).

    GET  /actions/send?d&f&s&e&sig   the confirmation page: the draft, who it goes to, a Send
                                     button; reads only (Redis and Leadterra), changes nothing
    POST /actions/send?d&f&s&e&sig   the send (worker/drafts/sending.py, actor `link`); the signed
                                     URL is the capability, so no body or token is needed
    GET  /actions/check?d&f&s&e&sig  the thread now, after an unknown outcome: reads only
    POST /slack/actions              Slack's buttons (worker/oneclick/slack_actions.py), mounted
                                     when SLACK_SIGNING_SECRET is set too

Answers, all small HTML pages with `SECURITY_HEADERS` (no-store, no referrer, noindex, a CSP):

    200  the confirmation page, the check page, sent
    403  the link is missing a field, malformed, forged, altered or expired (nothing read)
    404  no such draft for that follow-up and SDR (or no longer kept)
    409  already sent, a send in progress, or stale (the prospect wrote, the follow-up moved on)
    422  blocked by Leadterra's guardrails (the issues listed; Send may be pressed again)
    502  not sent because Leadterra refused it (Gmail not connected, 404, key), or no answer
         (outcome unknown: never sent again; the page links to the check)
    503  Leadterra is busy or could not be read, or Redis is down: nothing was sent, try again

The sync work (Redis, Leadterra) runs in Starlette's thread pool on a `Runtime` built on first
use with a small Redis pool, and closed with the app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette import status
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from config.settings import Settings
from worker import errors
from worker.drafts import sending as outcomes
from worker.drafts.sending import send_draft
from worker.keys import Keys
from worker.logs import get_logger
from worker.metrics import Metrics
from worker.oneclick.links import PARAMS, SIG_PARAM, LinkClaims, verify_link
from worker.oneclick.preview import check_thread, preview_draft
from worker.oneclick.send_pages import (
    SECURITY_HEADERS,
    check_page,
    confirm_page,
    outcome_page,
    refused_page,
    unavailable_page,
    unknown_draft_page,
)
from worker.oneclick.slack_actions import SlackActions
from worker.redis_conn import redis_client
from worker.runtime import Runtime

log = get_logger("leadrouter.drafts")
T = TypeVar("T")
#: Redis connections of the web process's Runtime (the thread pool's share)
RUNTIME_POOL = 16
#: what the web cannot do when these are raised: Redis or the roster, not the click
UNAVAILABLE = (RedisError, OSError, errors.ConfigError)
STATUS_OF = {
    outcomes.SENT_OUTCOME: status.HTTP_200_OK,
    outcomes.ALREADY_SENT: status.HTTP_409_CONFLICT,
    outcomes.IN_PROGRESS: status.HTTP_409_CONFLICT,
    outcomes.STALE: status.HTTP_409_CONFLICT,
    outcomes.BLOCKED: status.HTTP_422_UNPROCESSABLE_CONTENT,
    outcomes.NOT_SENT: status.HTTP_502_BAD_GATEWAY,
    outcomes.UNKNOWN_OUTCOME: status.HTTP_502_BAD_GATEWAY,
    outcomes.BUSY: status.HTTP_503_SERVICE_UNAVAILABLE,
    outcomes.UNKNOWN_DRAFT: status.HTTP_404_NOT_FOUND,
}


def page(html: str, code: int = status.HTTP_200_OK) -> HTMLResponse:
    return HTMLResponse(html, status_code=code, headers=SECURITY_HEADERS)


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class OneClick:
    """The routes' state: settings, the async Redis (Slack's replay keys), the lazy Runtime."""

    def __init__(
        self,
        settings: Settings,
        client: aioredis.Redis,
        metrics: Metrics,
        *,
        runtime: Runtime | None = None,
        slack_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if settings.action_secret is None:
            raise errors.ConfigError("ACTION_SECRET is required here but not set")
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.key_prefix)
        self.metrics = metrics
        self.secret = settings.action_secret.get_secret_value()
        self._runtime = runtime
        self._owns_runtime = runtime is None
        self._lock = threading.Lock()
        self.slack = (
            SlackActions(self, transport=slack_transport) if settings.slack_signing_secret else None
        )

    @classmethod
    def for_settings(
        cls, settings: Settings, client: aioredis.Redis, metrics: Metrics
    ) -> OneClick | None:
        """The routes' state when ACTION_SECRET is set, else None (no routes)."""
        return cls(settings, client, metrics) if settings.action_secret else None

    def runtime(self) -> Runtime:
        """The Runtime, built on first use (in a worker thread: it may read the roster)."""
        if self._runtime is None:
            with self._lock:
                if self._runtime is None:
                    pool = redis_client(self.settings, RUNTIME_POOL)
                    self._runtime = Runtime(self.settings, client=pool, metrics=self.metrics)
        return self._runtime

    async def call(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(runtime, *args)` in the thread pool."""
        return await run_in_threadpool(lambda: work(self.runtime(), *args, **kwargs))

    def routes(self) -> list[Route]:
        routes = [
            Route("/actions/send", self.confirm, methods=["GET"]),
            Route("/actions/send", self.send, methods=["POST"]),
            Route("/actions/check", self.check, methods=["GET"]),
        ]
        if self.slack is not None:
            routes.append(Route("/slack/actions", self.slack.handle, methods=["POST"]))
        return routes

    def claims_of(self, params: Mapping[str, str], via: str, started: float) -> LinkClaims:
        """The link's claims, or LinkRefused (logged and counted here, with its reason only)."""
        try:
            return verify_link(self.secret, params, int(time.time()))
        except errors.LinkRefused as refused:
            self.metrics.drafts.labels("link_refused").inc()
            log.warning(
                "draft.link_refused", reason=refused.reason, via=via, duration_ms=ms_since(started)
            )
            raise

    def _unavailable(self, exc: Exception, via: str, started: float) -> HTMLResponse:
        error = type(exc).__name__
        log.error("draft.web_unavailable", via=via, error=error, duration_ms=ms_since(started))
        return page(unavailable_page(), status.HTTP_503_SERVICE_UNAVAILABLE)

    def _unknown_draft(self, claims: LinkClaims, via: str, started: float) -> HTMLResponse:
        self.metrics.drafts.labels("unknown_draft").inc()
        log.warning(
            "draft.unknown_draft",
            draft_id=claims.draft_id,
            followup_id=claims.followup_id,
            sdr_id=claims.sdr_id,
            via=via,
            duration_ms=ms_since(started),
        )
        return page(unknown_draft_page(), status.HTTP_404_NOT_FOUND)

    async def confirm(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            claims = self.claims_of(request.query_params, "page", started)
            preview = await self.call(preview_draft, claims)
        except errors.LinkRefused as refused:
            return page(refused_page(refused.reason), status.HTTP_403_FORBIDDEN)
        except UNAVAILABLE as exc:
            return self._unavailable(exc, "page", started)
        if preview is None:
            return self._unknown_draft(claims, "page", started)
        return page(confirm_page(preview, check_href(request)))

    async def send(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            claims = self.claims_of(request.query_params, "link", started)
            outcome = await self.call(send_draft, claims, actor="link")
        except errors.LinkRefused as refused:
            return page(refused_page(refused.reason), status.HTTP_403_FORBIDDEN)
        except UNAVAILABLE as exc:
            return self._unavailable(exc, "link", started)
        return page(outcome_page(outcome, check_href(request)), STATUS_OF[outcome.status])

    async def check(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            claims = self.claims_of(request.query_params, "check", started)
            checked = await self.call(check_thread, claims)
        except errors.LinkRefused as refused:
            return page(refused_page(refused.reason), status.HTTP_403_FORBIDDEN)
        except (*UNAVAILABLE, errors.ServiceError) as exc:
            return self._unavailable(exc, "check", started)
        if checked is None:
            return self._unknown_draft(claims, "check", started)
        return page(check_page(checked))

    async def aclose(self) -> None:
        """Let Slack work in flight finish (bounded), then close what was built here."""
        if self.slack is not None:
            await self.slack.aclose()
        if self._owns_runtime and self._runtime is not None:
            await run_in_threadpool(self._runtime.close)
            self._runtime = None


def check_href(request: Request) -> str:
    """The check page's link beside this send link: relative, the link's own fields only."""
    params = [(name, request.query_params.get(name, "")) for name in (*PARAMS, SIG_PARAM)]
    return "check?" + urlencode(params, quote_via=quote)
