"""The sandbox process: its options, its two listeners, and the `refuse` outage.

The API (/v1) and the control API (/_control) listen on two ports, each with its own AppRunner,
over one shared `World`. A `refuse` outage stops only the API's TCPSite (and closes its open
connections), so clients get "connection refused" while the control port stays up to end it.
Restoring starts a new TCPSite on the same port; the state lives on.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import structlog
from aiohttp import web

from leadterra_sandbox import control_drafts, control_intake, control_threads
from leadterra_sandbox.app import build_api_app
from leadterra_sandbox.calls import CallLog
from leadterra_sandbox.clock import Clock
from leadterra_sandbox.control import build_control_app
from leadterra_sandbox.faults import FaultRule, Faults
from leadterra_sandbox.seeding import seed_sdrs
from leadterra_sandbox.sender import Sender
from leadterra_sandbox.state import State
from leadterra_sandbox.world import World

log = structlog.get_logger(__name__)


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 8090
    control_port: int | None = None  # None: port + 1 (or a free port when port is 0)
    sdrs: int = 6
    disconnected: int = 0
    workspace_key: str = "sk_test_workspace"
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    followup_delay: float = 172800.0
    allow_http_webhooks: bool = False
    seed: int | None = None
    max_calls: int = 500_000
    backlog: int = 4096
    keepalive_timeout: float = 75.0


class Sandbox:
    """Owns the world, the webhook sender and both listeners."""

    def __init__(self, options: Options) -> None:
        self.options = options
        rng = random.Random(options.seed)
        state = State(Clock(), workspace_key=options.workspace_key)
        self.world = World(state, rng=rng, faults=Faults(rng=rng), calls=CallLog(options.max_calls))
        self.sender = Sender(state, rng)
        self.api_port = options.port
        self.control_port = options.control_port
        if self.control_port is None:
            self.control_port = options.port + 1 if options.port else 0
        self._api_runner: web.AppRunner | None = None
        self._control_runner: web.AppRunner | None = None
        self._api_site: web.TCPSite | None = None
        self._restore: asyncio.Task[None] | None = None
        self.seed_defaults()

    def seed_defaults(self) -> None:
        """The start-up world: the CLI's SDRs, settings and global latency."""
        options, state = self.options, self.world.state
        state.followup_delay = options.followup_delay
        state.allow_http_webhooks = options.allow_http_webhooks
        seed_sdrs(state, {"count": options.sdrs, "disconnected": options.disconnected})
        if options.latency_ms or options.jitter_ms:
            rule = FaultRule(latency_ms=options.latency_ms, jitter_ms=options.jitter_ms)
            self.world.faults.set_rule(rule)

    @property
    def _url_host(self) -> str:
        return self.options.host if self.options.host not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104

    @property
    def api_url(self) -> str:
        return f"http://{self._url_host}:{self.api_port}"

    @property
    def control_url(self) -> str:
        return f"http://{self._url_host}:{self.control_port}"

    async def start(self) -> None:
        keepalive = self.options.keepalive_timeout
        self._api_runner = web.AppRunner(
            build_api_app(self.world), access_log=None, keepalive_timeout=keepalive
        )
        control = build_control_app(self)
        control.add_routes(control_intake.ROUTES)
        control.add_routes(control_threads.ROUTES)
        control.add_routes(control_drafts.ROUTES)
        self._control_runner = web.AppRunner(control, access_log=None, keepalive_timeout=keepalive)
        await self._api_runner.setup()
        await self._control_runner.setup()
        await self._listen()
        site = web.TCPSite(
            self._control_runner,
            self.options.host,
            self.control_port,
            backlog=self.options.backlog,
            reuse_address=True,
        )
        await site.start()
        self.control_port = site.port

    async def _listen(self) -> None:
        assert self._api_runner is not None
        site = web.TCPSite(
            self._api_runner,
            self.options.host,
            self.api_port,
            backlog=self.options.backlog,
            reuse_address=True,
        )
        await site.start()
        self._api_site = site
        self.api_port = site.port

    async def stop(self) -> None:
        self._cancel_restore()
        await self.sender.cancel_all()
        for runner in (self._api_runner, self._control_runner):
            if runner is not None:
                await runner.cleanup()

    # -- outages ------------------------------------------------------------------------------

    async def refuse(self, seconds: float | None) -> None:
        """Stop listening on the API port (and drop its connections) for `seconds` or until
        `restore()`."""
        outage = self.world.outage
        self._cancel_restore()
        if self._api_site is not None:
            await self._api_site.stop()
            self._api_site = None
        if self._api_runner is not None and self._api_runner.server is not None:
            for connection in self._api_runner.server.connections:
                connection.force_close()
        outage.mode = "refuse"
        outage.until = None if seconds is None else time.monotonic() + seconds
        if seconds is not None:
            self._restore = asyncio.create_task(self._restore_after(seconds))
        log.warning("sandbox.outage", mode="refuse", seconds=seconds)

    async def restore(self) -> None:
        """End any outage: listen again if refused, stop erroring."""
        self._cancel_restore()
        outage = self.world.outage
        if self._api_site is None:
            await self._listen()
        if outage.mode is not None:
            log.info("sandbox.outage_over", mode=outage.mode)
        outage.mode = outage.until = None

    def set_error_outage(self, seconds: float | None, status: int) -> None:
        outage = self.world.outage
        outage.mode, outage.status = "error", status
        outage.until = None if seconds is None else time.monotonic() + seconds
        log.warning("sandbox.outage", mode="error", seconds=seconds, status=status)

    async def _restore_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._restore = None  # so that restore() does not cancel this very task
        await self.restore()

    def _cancel_restore(self) -> None:
        if self._restore is not None:
            self._restore.cancel()
            self._restore = None

    async def reset(self) -> None:
        """Back to the start-up world: every record, call, fault, job and the clock."""
        await self.restore()
        await self.sender.clear()
        world = self.world
        world.state.clear()
        world.state.clock.offset = 0.0
        world.calls.clear()
        world.faults.clear()
        world.faults.injected.clear()
        self.seed_defaults()
        log.info("sandbox.reset")
