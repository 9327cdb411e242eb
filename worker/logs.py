"""Logging: one structlog pipeline per process, JSON off a terminal, a readable console on one.

The standard library's loggers (Celery's, uvicorn's) are routed through the same processors, so
a process never mixes two formats; our own events skip the standard library's records and are
written straight to its handler's stream (worker/logsink.py): the same lines, at a third of the
cost. A scrubber, the last line of defence, replaces every configured secret with `***`, in its
plain form and in every escaped form it takes on the way to a log line (`repr`, JSON, URL
encoding), and masks fields whose names mark them as secret, at any depth. It runs after
exceptions are rendered (so tracebacks are scrubbed) and once more on the rendered line.
Uncaught exceptions, in any thread, are logged through the same pipeline rather than printed raw
by Python. `scrub(text, secrets)` is the same scrubber for text that
leaves the process another way (a dead letter's message).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import structlog
import structlog.tracebacks
from structlog.typing import EventDict, Processor

from worker.logsink import LineLoggerFactory, UtcStamper, guarded, render_json

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
MASK = "***"
#: values that no secret can hide in, left as they are without a look
_PLAIN = frozenset({int, float, bool, type(None)})
_NAMES_CACHED = 4096
#: what no escaping we know of changes (RFC 3986's unreserved characters)
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")


def _repr_forms(text: str) -> set[str]:
    """`repr(text)` without its quotes, as Python writes it between single quotes (a `'` is
    escaped) and between double quotes (it is not; Python never escapes a `"`)."""
    plain = "".join(c if c in "'\"" else repr(c)[1:-1] for c in text)
    return {plain, plain.replace("'", "\\'")}


def _json_forms(text: str) -> set[str]:
    return {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}


def _url_forms(char: str) -> set[str]:
    """`char` percent-encoded, in upper- and lower-case hex; a space also as `+`."""
    upper = quote(char, safe="", errors="surrogatepass")
    return {upper, upper.lower(), *(["+"] if char == " " else [])}


def char_forms(char: str) -> set[str]:
    """Every form one character of a secret takes on its way to a log line: itself, repr'd,
    JSON-escaped, URL-encoded, and one escape inside another (the repr of a JSON body)."""
    first = {char, *_repr_forms(char), *_json_forms(char), *_url_forms(char)}
    return first | {f for form in first for f in (*_repr_forms(form), *_json_forms(form))}


def secret_pattern(secret: str) -> re.Pattern[str]:
    """A pattern for `secret` in any of those forms, each character escaped its own way or not
    at all (URL encoders differ in what they leave as it is: httpx keeps `\\` and `'`)."""
    parts = []
    for char in secret:
        forms = sorted(char_forms(char), key=lambda form: (-len(form), form))
        parts.append(
            re.escape(char) if len(forms) == 1 else f"(?:{'|'.join(map(re.escape, forms))})"
        )
    return re.compile("".join(parts))


class Scrubber:
    """A processor that hides secret values anywhere in an event, and secret-named fields.

    Given a rendered line (a string) instead of an event, it scrubs the line. A secret made of
    letters, digits and `._~-` only has one form, replaced as text; any other is matched by its
    pattern, tried only where its longest run of such characters (in every form) occurs.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # the longest first, so a short secret inside a longer one leaves no tail behind
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._checks: list[tuple[str, str, re.Pattern[str] | None]] = []
        #: field name -> whether it is secret-named, as field names repeat from line to line
        self._secret_name: dict[str, bool] = {}
        for secret in self.secrets:
            runs = _UNRESERVED.findall(secret)
            if runs == [secret]:
                self._checks.append((secret, secret, None))
            else:
                anchor = max(runs, key=len) if runs else ""
                self._checks.append((anchor, secret, secret_pattern(secret)))

    def scrub(self, text: str) -> str:
        """`text` with every form of every secret replaced by `***`."""
        for anchor, secret, pattern in self._checks:
            if anchor in text:
                text = text.replace(secret, MASK) if pattern is None else pattern.sub(MASK, text)
        return text

    def _clean(self, value: Any) -> Any:
        if type(value) in _PLAIN:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {
                (self.scrub(k) if isinstance(k, str) else k): (
                    MASK if isinstance(k, str) and k.lower() in SECRET_FIELDS else self._clean(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value

    def __call__(self, _: Any, __: str, event: EventDict | str) -> EventDict | str:
        if isinstance(event, str):
            return self.scrub(event)
        secret_name = self._secret_name
        texts: list[str] = []  # names of the plain strings, scrubbed below if need be
        for name, value in list(event.items()):
            masked = secret_name.get(name)
            if masked is None:
                masked = name.lower() in SECRET_FIELDS
                if len(secret_name) < _NAMES_CACHED:
                    secret_name[name] = masked
            if masked:
                event[name] = MASK
            elif type(value) is str:
                texts.append(name)
            elif type(value) not in _PLAIN and name != "exc_info":  # exc_info: see the line
                event[name] = self._clean(value)
        if texts and self._checks:
            # one look at them all: most lines hold no secret's anchor anywhere
            joined = "\0".join([event[name] for name in texts])
            if any(anchor in joined for anchor, _, _ in self._checks):
                for name in texts:
                    event[name] = self.scrub(event[name])
        return event


@functools.lru_cache(maxsize=16)
def _scrubber(secrets: tuple[str, ...]) -> Scrubber:
    return Scrubber(secrets)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret in `secrets`, in any escaped form, replaced by `***`."""
    return _scrubber(tuple(sorted(set(secrets)))).scrub(text)


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
        UtcStamper(),  # TimeStamper(fmt="iso", utc=True), the same text, cheaper
        _drop_color_message,
    ]
    if process:
        shared.insert(1, _bind_process(process))
    render = _render(json_out, Scrubber(secrets))
    handler = _handler(shared, render)
    structlog.configure(
        # our events are rendered by the same processors and written straight to the handler's
        # stream, without a detour through the standard library's records (worker/logsink.py)
        processors=[*shared, guarded(render, handler)],
        logger_factory=LineLoggerFactory(handler),
        # below LOG_LEVEL a call returns at once, without running the processor chain
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(handler, level)
    if process:  # a service process, not a test: nothing uncaught is printed unscrubbed
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def _render(json_out: bool, scrubber: Scrubber) -> list[Processor]:
    """The processors that make the line, for every event, ours or the standard library's.

    The scrubber runs after the traceback is rendered as data (JSON) and again on the rendered
    line (the console renderer formats its traceback itself)."""
    renderer: Processor = (
        render_json
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
    return [*([tracebacks] if json_out else []), scrubber, renderer, scrubber]


def _handler(shared: list[Processor], render: list[Processor]) -> logging.StreamHandler[Any]:
    """A stderr handler that renders the standard library's records as our events are."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
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


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    get_logger("leadrouter.crash").critical(
        "process.uncaught_exception", error_type=kind.__name__, exc_info=(kind, value, tb)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    get_logger("leadrouter.crash").critical(
        "thread.uncaught_exception",
        thread=args.thread.name if args.thread else None,
        error_type=args.exc_type.__name__,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; events are `log.info("reply.assigned", reply_id=..., ...)`."""
    return structlog.get_logger(name)
