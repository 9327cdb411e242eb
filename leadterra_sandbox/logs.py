"""The sandbox's logging: structlog, JSON lines off a terminal (or with `LOG_FORMAT=json`), a
console renderer on one (or with `LOG_FORMAT=console`). The standard library's loggers (aiohttp's)
go through the same chain, every event carries `process="sandbox"`, and the one secret the
sandbox knows, the workspace key given on the command line, becomes `***` wherever it appears.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor


def _hide(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, dict):
        return {k: _hide(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hide(v, secret) for v in value]
    return value


def configure_logging(level: str, secret: str) -> None:
    """Set up structlog and route the standard library's logging through it. Call once."""

    def tag_and_scrub(_: Any, __: str, event: EventDict) -> EventDict:
        event.setdefault("process", "sandbox")
        event.setdefault("process_id", os.getpid())
        return {k: _hide(v, secret) for k, v in event.items()} if secret else event

    fmt = os.environ.get("LOG_FORMAT", "auto")
    json_out = fmt == "json" or (fmt != "console" and not sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # a traceback as text, scrubbed like the rest
        tag_and_scrub,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_out
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(level)
