"""Where a log event ends: our own events straight to the stream, the standard library's through it.

structlog's events used to travel as the standard library's: a `LogRecord` (two, as the
formatter copies it), a walk up the stack for the caller, the handler's lock and its formatter,
about half of what an INFO line cost the receiver. `LineLogger` is structlog's logger here
instead: the processors render the line (the same ones, in the same order, so the line is the
same byte for byte) and it is written to the handler's stream under the handler's lock, so lines
from both paths never interleave. Records of the standard library's own loggers (Celery,
uvicorn, kombu) still go through the handler and its `ProcessorFormatter`.

Like a handler, a line that cannot be rendered or written is reported on stderr (the standard
library's `handleError`) and never raised into the code that logged it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from structlog._frames import _find_first_app_frame_and_name
from structlog.processors import _json_fallback_handler
from structlog.typing import EventDict, Processor

#: `json.dumps(event, default=...)` builds an encoder per call; the same encoder, built once
_ENCODER = json.JSONEncoder(default=_json_fallback_handler)


def render_json(_: Any, __: str, event: EventDict) -> str:
    """structlog's `JSONRenderer()`, the same string, without an encoder built per line."""
    return _ENCODER.encode(event)


class UtcStamper:
    """structlog's `TimeStamper(fmt="iso", utc=True)`, the same text (microseconds, left out when
    zero, as `datetime.isoformat` does), with the date and time formatted once a second."""

    def __init__(self) -> None:
        self.second: tuple[int, str] = (-1, "")  # swapped whole: safe across threads

    def __call__(self, _: Any, __: str, event: EventDict) -> EventDict:
        seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
        at, text = self.second
        if at != seconds:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self.second = (seconds, text)
        event["timestamp"] = f"{text}.{micros:06d}Z" if micros else f"{text}Z"
        return event


class LineLogger:
    """structlog's wrapped logger: writes the rendered line to `handler`'s stream."""

    __slots__ = ("handler", "lock", "name")

    def __init__(self, handler: logging.StreamHandler[Any], name: str) -> None:
        self.handler = handler
        # the handler's own (reset in place after a fork by logging)
        self.lock = handler.lock or threading.RLock()
        self.name = name  # read by structlog.stdlib.add_logger_name, as a stdlib logger's is

    def msg(self, line: str) -> None:
        handler = self.handler
        try:
            with self.lock:
                stream = handler.stream
                stream.write(line + handler.terminator)
                stream.flush()
        except RecursionError:  # as logging.StreamHandler.emit does
            raise
        except Exception:
            handler.handleError(logging.makeLogRecord({"name": self.name, "msg": "(a log line)"}))

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class LineLoggerFactory:
    """`structlog.get_logger(name)` -> a `LineLogger` named as `logging.getLogger(name)` would be
    (without a name: the calling module's, as structlog.stdlib.LoggerFactory guesses it)."""

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler

    def __call__(self, *args: Any) -> LineLogger:
        name = args[0] if args else _find_first_app_frame_and_name()[1]
        return LineLogger(self.handler, logging.getLogger(name).name)


def guarded(render: Sequence[Processor], handler: logging.Handler) -> Callable[..., Any]:
    """One processor running `render` (the processors that make the line): an error in them is
    reported like a handler's (`handleError`) and the event dropped, never raised to the caller."""
    chain = tuple(render)

    def run(logger: Any, method: str, event: Any) -> Any:
        try:
            for processor in chain:
                event = processor(logger, method, event)
        except RecursionError:
            raise
        except Exception:
            name = getattr(logger, "name", None)
            handler.handleError(logging.makeLogRecord({"name": name, "msg": "(a log line)"}))
            raise structlog.DropEvent from None
        return event

    return run
