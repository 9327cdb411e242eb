"""The receiver: Leadterra's webhooks in, task messages out, in well under Leadterra's 10 s.

POST /webhooks/leadterra reads the body under a size cap and the request's deadline, verifies the
signature over the raw bytes, decides (worker/receiver/webhook.py), refuses a delivery whose
signed `timestamp` is older than WEBHOOK_TOLERANCE_SECONDS (a replay: 200 `stale`, nothing
written) and, for a positive reply, pushes the assign task and the dedupe marker in one atomic
Redis call. Answers: 202 enqueued, 200 ignored, duplicate or stale, 401 bad signature, 400/422
malformed, 408 too slow, 413 too large, 503 Redis down (or, with REDIS_MIN_REPLICAS_ACK, the
enqueue not confirmed by that many replicas in time). Bad input is never a 500. This app also
serves /healthz; /readyz, /metrics and /openapi.json are on the admin listener (admin.py), and,
with ACTION_SECRET set, the one-click draft routes (/actions/*, /slack/actions: worker/oneclick/).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from config.settings import Settings
from worker import signature
from worker.console.counters import MINUTE_TTL, WEBHOOKS, minute_of
from worker.errors import Malformed, NotReplicated, TooLarge
from worker.gauges import Scrape
from worker.jobs.queueing import ENQUEUE_ONCE, assign_message, enqueue_keys
from worker.keys import Keys
from worker.metrics import Metrics
from worker.receiver.protocol import DEADLINE
from worker.receiver.webhook import CLOCK_SKEW_SECONDS, decide, freshness, parse
from worker.redis_conn import REPLICA_ACK_TIMEOUT_MS, async_client, eval_confirmed

if TYPE_CHECKING:
    from worker.oneclick.web_routes import OneClick

log = structlog.get_logger("leadrouter.web")
WEBHOOK_PATH = "/webhooks/leadterra"
SIGNATURE_HEADER = "x-leadterra-signature"
REDIS_TIMEOUT = 5.0
STAMP_EVERY = 1.0
#: answers that leave the rest of the body unread: the connection is closed after them, or
#: uvicorn would keep it open for as long as the client trickles that rest
CLOSE_AFTER = frozenset({408, 413})


class RequestContext:
    """ASGI middleware: each request starts with fresh log context and its own request id."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.begin(scope)
        await self.app(scope, receive, send)

    @staticmethod
    def begin(scope: Any) -> None:
        structlog.contextvars.clear_contextvars()
        request_id = (
            next(
                (v.decode("latin-1")[:64] for k, v in scope["headers"] if k == b"x-request-id"),
                None,
            )
            or os.urandom(8).hex()  # 16 hex digits, as uuid4().hex[:16] was, cheaper
        )
        structlog.contextvars.bind_contextvars(request_id=request_id)


class PublicApp(Starlette):
    """Starlette, with the webhook's POST handed straight to its handler.

    Starlette's stack (its error middleware, RequestContext, the router's match, the endpoint
    wrapper) costs about a twentieth of what a webhook costs the receiver; for that one route the
    same work is done here: fresh log context and request id, the handler, its response, and if
    the handler ever raised, the 500 Starlette's ServerErrorMiddleware answers, raised on."""

    webhook: Any = None  # Receiver.webhook, when this app takes webhooks

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            self.webhook is None
            or scope["type"] != "http"
            or scope["path"] != WEBHOOK_PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            return await super().__call__(scope, receive, send)
        scope["app"] = self
        RequestContext.begin(scope)
        try:
            response = await self.webhook(Request(scope, receive))
        except Exception:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        await response(scope, receive, send)


def deadline_of(request: Request, timeout: float) -> float:
    """The request's deadline in loop time: the server's (GuardedProtocol), else `timeout` on."""
    deadline = (request.scope.get("extensions") or {}).get(DEADLINE, {}).get("at")
    if isinstance(deadline, float):
        return deadline
    return asyncio.get_running_loop().time() + timeout


async def read_body(request: Request, limit: int, deadline: float) -> bytes:
    """The whole body, or TooLarge as soon as it passes `limit` (before reading it all), or
    TimeoutError at `deadline` (loop time)."""
    declared = request.headers.get("content-length", "")
    # Headers are latin-1, where "²" passes isdigit() but not int(); and int() refuses more than
    # 4300 digits, so a longer number than the limit's is too large by its length alone.
    digits = declared.lstrip("0") if declared.isascii() and declared.isdigit() else ""
    if len(digits) > len(str(limit)) or (digits and int(digits) > limit):
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout_at(deadline):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


class Receiver:
    """The webhook endpoint's state: settings, the async Redis client, the enqueue script."""

    def __init__(self, settings: Settings, client: aioredis.Redis, metrics: Metrics) -> None:
        settings.require("leadterra_webhook_secret")
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.key_prefix)
        self.metrics = metrics
        self.positive = frozenset(c.lower() for c in settings.positive_classifications)
        self.secrets = [
            s.get_secret_value()
            for s in (settings.leadterra_webhook_secret, settings.leadterra_webhook_secret_previous)
            if s is not None
        ]
        self.enqueue_once = client.register_script(ENQUEUE_ONCE)
        self.stamped = 0.0
        #: ignored deliveries not yet added to the console's webhooks-per-minute count
        self.uncounted = 0
        #: the webhooks counter's child per outcome (`labels()` looks it up on every call)
        self.counted: dict[str, Any] = {}

    async def enqueue(self, reply_id: str, payload: dict[str, Any], now: float) -> bool:
        """Task message and `seen:{reply}` marker in one Lua call (which also stamps the time of
        the last webhook and counts this delivery, with any ignored ones not yet counted);
        False when the marker was there already."""
        count, self.uncounted = self.uncounted + 1, 0
        keys = [
            *enqueue_keys(self.keys, reply_id),
            self.keys.last_webhook,
            self.keys.stats_minute(minute_of(now)),
        ]
        args: list[str | int | float] = [
            assign_message(payload),
            self.settings.dedupe_ttl_seconds,
            str(payload["acceptedAt"]),
            reply_id,
            repr(now),
            repr(now),
            count,
            MINUTE_TTL,
        ]
        wanted = self.settings.redis_min_replicas_ack
        async with asyncio.timeout(REDIS_TIMEOUT):
            if wanted:  # 202 or 200 only once that many replicas have it (and the marker)
                fresh = await eval_confirmed(self.redis, self.enqueue_once, keys, args, wanted)
            else:
                fresh = await self.enqueue_once(keys=keys, args=args)
        self.stamped = now
        return bool(fresh)

    async def stamp(self, now: float) -> None:
        """The time of the last verified webhook, for /metrics, and the count of ignored
        deliveries, for the console: the enqueue's Lua call writes both for positive replies;
        ignored deliveries are written at most once a second per process (counted meanwhile in
        memory), and never fail the delivery."""
        self.uncounted += 1
        if now - self.stamped < STAMP_EVERY:
            return
        self.stamped = now
        count, self.uncounted = self.uncounted, 0
        minute = self.keys.stats_minute(minute_of(now))
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(REDIS_TIMEOUT), self.redis.pipeline(False) as pipe:
                pipe.set(self.keys.last_webhook, repr(now))
                pipe.hincrby(minute, WEBHOOKS, count)
                pipe.expire(minute, MINUTE_TTL)
                await pipe.execute()

    def answer(
        self, status: int, outcome: str, started: float, *, warn: bool = False, **fields: Any
    ) -> JSONResponse:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        counter = self.counted.get(outcome)
        if counter is None:
            counter = self.counted[outcome] = self.metrics.webhooks.labels(outcome)
        counter.inc()
        level = "warning" if warn or (status >= 400 and status != 413) else "info"
        getattr(log, level)(
            "webhook.received", outcome=outcome, status=status, duration_ms=duration_ms, **fields
        )
        body: dict[str, Any] = {"status": outcome}
        if fields.get("reply_id") is not None:  # documented as a string: absent, never null
            body["reply_id"] = fields["reply_id"]
        if "error" in fields:
            body["error"] = fields["error"]
        headers = {"connection": "close"} if status in CLOSE_AFTER else None
        return JSONResponse(body, status_code=status, headers=headers)

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            deadline = deadline_of(request, self.settings.request_timeout_seconds)
            raw = await read_body(request, self.settings.max_body_bytes, deadline)
        except TooLarge:
            return self.answer(413, "too_large", started, error="body too large")
        except TimeoutError:
            return self.answer(408, "too_slow", started, error="body not received in time")
        except ClientDisconnect:  # gone mid-body: nobody reads this, but it is no 500
            return self.answer(400, "disconnected", started, error="body not complete")
        if not signature.verify(request.headers.get(SIGNATURE_HEADER), raw, self.secrets):
            return self.answer(401, "bad_signature", started, error="missing or bad signature")
        now = time.time()
        try:
            envelope = parse(raw)
            decision = decide(envelope, self.positive, now)
        except Malformed as bad:
            return self.answer(bad.status, "malformed", started, error=str(bad))
        ids: dict[str, Any] = {"webhook_event": decision.event, "reply_id": decision.reply_id}
        age = freshness(envelope, now, self.settings.webhook_tolerance_seconds)
        if age.verdict == "stale":
            return self.answer(200, "stale", started, warn=True, age_s=age.age_s, **ids)
        if age.verdict == "ahead" and age.age_s is not None:
            log.warning("webhook.clock_skew", ahead_s=-age.age_s, bound_s=CLOCK_SKEW_SECONDS, **ids)
        elif age.verdict in ("missing", "unreadable"):
            log.info("webhook.no_timestamp", reason=age.verdict, **ids)
        if decision.action == "ignore" or decision.payload is None:
            await self.stamp(now)
            return self.answer(
                200,
                "ignored",
                started,
                reason=decision.reason,
                classification=decision.classification,
                **ids,
            )
        try:
            fresh = await self.enqueue(str(decision.reply_id), decision.payload, now)
        except NotReplicated as short:  # only the primary has it: Leadterra must send it again
            log.warning(
                "webhook.replica_ack_timeout",
                wanted=short.wanted,
                acked=short.acked,
                timeout_ms=REPLICA_ACK_TIMEOUT_MS,
                **ids,
            )
            return self.answer(503, "not_replicated", started, error="queue not replicated", **ids)
        except (RedisError, OSError, TimeoutError) as exc:
            return self.answer(
                503,
                "unavailable",
                started,
                error="queue unavailable",
                cause=type(exc).__name__,
                **ids,
            )
        if not fresh:
            return self.answer(200, "duplicate", started, **ids)
        return self.answer(202, "enqueued", started, **ids)


def redis_for_web(settings: Settings) -> aioredis.Redis:
    """An async Redis client whose pool waits for a connection instead of failing: to
    REDIS_URL, or to the primary REDIS_SENTINELS name (worker/redis_conn.py)."""
    # No socket_timeout: on Python 3.11 redis-py wraps every command in asyncio.wait_for,
    # a Task per command (a tenth of the receiver's CPU). REDIS_TIMEOUT bounds each use instead.
    return async_client(
        settings,
        pool_size=64,
        pool_wait=3,
        socket_connect_timeout=2,
        health_check_interval=30,
    )


def create_app(
    settings: Settings,
    *,
    client: aioredis.Redis | None = None,
    metrics: Metrics | None = None,
    oneclick: OneClick | None = None,
) -> Starlette:
    """The public app: the webhook (INTAKE=webhooks only), the one-click routes (ACTION_SECRET
    set, either intake; `oneclick` replaces the ones built here) and /healthz. Pass `client` and
    `metrics` to share them (the admin app does; the caller then closes the client); without
    `client`, one is built here and closed by the app's lifespan. `metrics` gets this process's
    Settings for the gauges /metrics computes at scrape time (working hours, readiness, intake)."""
    redis_client = client or redis_for_web(settings)
    metrics = metrics or Metrics()
    # the admin app's /metrics computes its scrape-time gauges from these (worker/gauges.py)
    metrics.scrape = Scrape(settings)
    routes = []
    if settings.intake == "webhooks":  # polling mode has no webhook route: 404, and no secret
        receiver = Receiver(settings, redis_client, metrics)
        routes.append(Route(WEBHOOK_PATH, receiver.webhook, methods=["POST"]))
    actions = oneclick
    if actions is None and settings.action_secret:
        # imported here (it reads bodies with this module's helpers), and only when configured:
        # its HTTP clients would otherwise stay resident for nothing
        from worker.oneclick.web_routes import OneClick

        actions = OneClick.for_settings(settings, redis_client, metrics)
    routes += actions.routes() if actions is not None else []

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if actions is not None:
            await actions.aclose()
        if client is None:
            await redis_client.aclose()

    app = PublicApp(
        routes=[*routes, Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
        middleware=[Middleware(RequestContext)],
    )
    if settings.intake == "webhooks":
        app.webhook = receiver.webhook
    return app
