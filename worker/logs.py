"""Logging: one structlog pipeline per process, JSON off a terminal, a readable console on one.

The standard library's loggers (Celery's, uvicorn's) are routed through the same processors, so
a process never mixes two formats. A scrubber replaces every configured secret's value with
`***` and drops fields whose names mark them as secret, as a last line of defence.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog
import structlog.tracebacks
from structlog.typing import EventDict, Processor

SECRET_FIELDS = frozenset(
    {
        "api_key",
        "key",
        "secret",
        "signature",
        "authorization",
        "token",
        "password",
        "snippet",
        "thread_snippet",
        "body",
        "text",
    }
)


class Scrubber:
    """A processor that hides secret values anywhere in an event, and secret-named fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value

    def __call__(self, _: Any, __: str, event: EventDict) -> EventDict:
        for name in list(event):
            if name.lower() in SECRET_FIELDS:
                event[name] = "***"
            elif self.secrets:
                event[name] = self._clean(event[name])
        return event


def _drop_color_message(_: Any, __: str, event: MutableMapping[str, Any]) -> EventDict:
    event.pop("color_message", None)  # uvicorn's duplicate of the message
    return dict(event)


def configure_logging(
    level: str = "INFO",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    process: str | None = None,
) -> None:
    """Set up structlog and route the standard library's logging through it. Call once."""
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_color_message,
        Scrubber(secrets),
    ]
    if process:
        shared.insert(1, _bind_process(process))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # below LOG_LEVEL a call returns at once, without running the processor chain
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(_handler(shared, json_out), level)


def _handler(shared: list[Processor], json_out: bool) -> logging.Handler:
    """A stderr handler that renders every record, ours or the standard library's, alike."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_out
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    # Tracebacks as data, but never with local variables: a frame's locals can hold a key.
    tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    final: list[Processor] = [tracebacks] if json_out else []
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *final,
                renderer,
            ],
        )
    )
    return handler


def _route_stdlib(handler: logging.Handler, level: str) -> None:
    """The root logger writes through `handler`; chatty libraries speak from WARNING up."""
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-message chatter ("Task ... received/succeeded"); our own events say what was decided.
    for name in (
        "httpx",
        "httpcore",
        "kombu",
        "amqp",
        "asyncio",
        "celery.app.trace",
        "celery.worker.strategy",
        "celery.beat",
    ):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "aiohttp.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def _bind_process(process: str) -> Processor:
    def add(_: Any, __: str, event: EventDict) -> EventDict:
        event.setdefault("process", process)
        event.setdefault("process_id", os.getpid())  # read per event: correct after a fork
        return event

    return add


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; events are `log.info("reply.assigned", reply_id=..., ...)`."""
    return structlog.get_logger(name)
