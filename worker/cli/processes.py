"""The long-running processes: receiver, worker (beat's schedule in it) and a standalone beat.
Each builds its own Settings.

Each imports only what it runs (the receiver no Celery, beat no HTTP client or metrics): every
module imported stays resident for the life of the process (docs/benchmarks.md, "Footprint").
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import socket
import threading
from typing import TYPE_CHECKING, Any

from config.settings import ConfigError, Settings
from worker.keys import QUEUES
from worker.logs import configure_logging, get_logger

if TYPE_CHECKING:
    from celery import Celery

    from worker.metrics import Metrics

log = get_logger("leadrouter.process")


def _logging(settings: Settings, process: str) -> None:
    configure_logging(settings.log_level, settings.log_format, settings.secret_values(), process)


def _celery_logging() -> None:
    """Celery must not install its own handlers: its records go through ours."""
    from celery import signals

    signals.setup_logging.connect(_keep_our_logging, weak=False)


def _keep_our_logging(**_: Any) -> None:
    return None


def tune_gc() -> None:
    """Move everything built at start-up out of the collector's sight, and collect the young
    generation less often: the receiver spent 16 % of its time in full collections of ~50 ms,
    its whole p99 (docs/benchmarks.md); this took p99 at 50 connections from ~60 to 12-23 ms.
    A worker does the same once its consumer is up (all of Celery is loaded by then)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)


def _flush_metrics_forever(settings: Settings, metrics: Metrics, client: Any) -> threading.Event:
    from worker.keys import Keys

    stop = threading.Event()
    keys = Keys(settings.key_prefix)

    def loop() -> None:
        while not stop.wait(settings.metrics_flush_seconds):
            try:
                metrics.flush(client, keys)
            except Exception as exc:
                log.warning("metrics.flush_failed", error=type(exc).__name__)
        with contextlib.suppress(Exception):  # best effort on the way out
            metrics.flush(client, keys)

    threading.Thread(target=loop, name="metrics-flush", daemon=True).start()
    return stop


def run_web(settings: Settings) -> None:
    """The receiver on PORT and the admin listener on ADMIN_PORT (worker/receiver/server.py)."""
    from worker.metrics import Metrics
    from worker.receiver.admin import create_admin_app
    from worker.receiver.server import check_admin_exposure, serve
    from worker.receiver.web import create_app, redis_for_web

    _logging(settings, "web")
    try:
        if settings.intake == "webhooks":  # polling mode serves no webhook: no secret needed
            settings.require("leadterra_webhook_secret")
        check_admin_exposure(settings)
    except ConfigError as bad:
        raise SystemExit(f"leadrouter: configuration error: {bad}") from None
    log.info("web.starting", host=settings.host, port=settings.port, intake=settings.intake)
    client = redis_for_web(settings)
    metrics = Metrics()
    public = create_app(settings, client=client, metrics=metrics)
    admin = create_admin_app(settings, client=client, metrics=metrics)
    tune_gc()
    try:
        serve(settings, public, admin, cleanup=client.aclose)
    except ConfigError as bad:
        raise SystemExit(f"leadrouter: configuration error: {bad}") from None


def _keep_alive(settings: Settings, app: Any, name: str) -> str:
    """Beat this worker's alive key from now on, then have its transport record it as the
    holder of every message it takes: a killed worker's messages go back within seconds
    (worker/jobs/liveness.py). The holder's name is new with every process: a container
    restarted after a crash has the same host name and often the same pid, and must not pass
    for the worker it replaces."""
    from worker.jobs.liveness import HOLDER_OPTION, Liveness
    from worker.keys import Keys
    from worker.redis_conn import redis_client

    holder = f"{name}#{secrets.token_hex(4)}"
    Liveness(redis_client(settings, 2), Keys(settings.key_prefix), holder).start()
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        HOLDER_OPTION: holder,
    }
    return holder


def _lease(settings: Settings, holder: str) -> Any:
    from worker.jobs.beat_lease import BeatLease
    from worker.keys import Keys
    from worker.redis_conn import redis_client

    return BeatLease(redis_client(settings, 2), Keys(settings.key_prefix).beat_leader, holder)


def _announce_schedule(settings: Settings, app: Celery, embedded: bool) -> None:
    log.info("beat.starting", schedule=sorted(app.conf.beat_schedule), embedded=embedded)
    if settings.sla_minutes:
        log.info(
            "sla.watching",
            sla_minutes=settings.sla_minutes,
            action=settings.sla_action,
            sdrs=sorted(settings.leadterra_sdr_api_keys),
            unwatched="the handoffs of SDRs without a key in LEADTERRA_SDR_API_KEYS",
        )


def _embedded_beat(settings: Settings, app: Celery, holder: str) -> None:
    """Beat's schedule in a thread of this worker, sent while it holds the lease
    (worker/jobs/beat_lease.py): started with the consumer, stopped (the lease given up) with
    the worker."""
    from celery import signals
    from celery.beat import EmbeddedService

    from worker.jobs.beat_lease import leased

    if not settings.worker_beat:
        return
    _announce_schedule(settings, app, embedded=True)
    service: Any = EmbeddedService(app, thread=True, scheduler_cls=leased(_lease(settings, holder)))
    started = threading.Event()

    def start(**_: Any) -> None:
        service.start()
        started.set()

    def stop(**_: Any) -> None:
        if started.is_set():  # Celery's stop waits for the thread: never for one not started
            service.stop()

    signals.worker_ready.connect(start, weak=False)
    signals.worker_shutdown.connect(stop, weak=False)


def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    from celery import signals

    from worker.jobs.celery_app import create_celery, send_canary
    from worker.jobs.tasks import register
    from worker.runtime import Runtime

    _logging(settings, "worker")
    _celery_logging()
    try:
        settings.require("leadterra_api_key")
        runtime = Runtime(settings)  # loads the roster: a bad file stops here
    except ConfigError as bad:
        raise SystemExit(f"leadrouter: configuration error: {bad}") from None
    app = create_celery(settings)
    register(app, runtime)
    stop = _flush_metrics_forever(settings, runtime.metrics, runtime.redis)
    signals.worker_shutdown.connect(lambda **_: stop.set(), weak=False)
    # Readiness at once, still proven through the broker: this worker's consumer is up, and
    # the canary it sends now is consumed like beat's (worker/health.py).
    signals.worker_ready.connect(lambda **_: send_canary(app), weak=False)
    signals.worker_ready.connect(lambda **_: tune_gc(), weak=False)  # all is loaded by now
    name = f"leadrouter-{os.getpid()}@{socket.gethostname()}"
    _embedded_beat(settings, app, _keep_alive(settings, app, name))
    _consume(app, settings, name, concurrency or settings.worker_concurrency)


def _consume(app: Celery, settings: Settings, name: str, concurrency: int) -> None:
    """What `celery worker --pool=threads ... --without-gossip --without-mingle
    --without-heartbeat` runs, without Celery's command line: that imports every Celery
    subcommand, its REPL (prompt_toolkit) and installed plugins such as Flower: 11 MiB
    resident for nothing."""
    from celery.platforms import maybe_drop_privileges
    from celery.utils.log import mlevel

    maybe_drop_privileges(uid=None, gid=None)  # as the command line: refuses root with pickle
    worker = app.Worker(
        hostname=name,
        pool="threads",
        concurrency=concurrency,
        queues=list(QUEUES),
        loglevel=mlevel(settings.log_level),
        optimization="default",
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    worker.start()
    if worker.exitcode:
        raise SystemExit(worker.exitcode)


def run_beat(settings: Settings) -> None:
    """Beat's schedule on its own, under the same lease as the workers' (any number may run)."""
    from worker.jobs.beat_lease import leased
    from worker.jobs.celery_app import create_celery

    _logging(settings, "beat")
    _celery_logging()
    app = create_celery(settings)
    _announce_schedule(settings, app, embedded=False)
    holder = f"beat-{os.getpid()}@{socket.gethostname()}#{secrets.token_hex(4)}"
    scheduler: Any = leased(_lease(settings, holder))  # Celery's hint says str; a class works
    app.Beat(
        scheduler=scheduler,
        max_interval=1,
        loglevel=settings.log_level,
        redirect_stdouts=False,
    ).run()
