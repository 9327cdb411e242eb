"""worker/logs.py: the scrubber hides configured secrets anywhere in an event, and masks every
field whose name marks it as secret."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from structlog.testing import capture_logs

from worker import logs
from worker.logs import SECRET_FIELDS, Scrubber, configure_logging, get_logger
from worker.logs import scrub as scrub_text

KEY = "sk_live_SECRET123"
WEBHOOK = "whsec_0123456789"


def scrub(event: dict[str, Any], secrets: tuple[str, ...] = (KEY, WEBHOOK)) -> dict[str, Any]:
    return dict(Scrubber(secrets)(None, "info", dict(event)))


def test_a_secret_inside_a_string_is_replaced_every_time_it_appears() -> None:
    event = scrub({"event": "leadterra.call", "error": f"401 for {KEY}; retried with {KEY}"})
    assert event == {"event": "leadterra.call", "error": "401 for ***; retried with ***"}


def test_the_event_name_itself_is_scrubbed() -> None:
    assert scrub({"event": f"calling with {WEBHOOK}"}) == {"event": "calling with ***"}


def test_secrets_are_replaced_in_nested_dicts_and_lists() -> None:
    event = scrub(
        {
            "event": "webhook.failed",
            "request": {"headers": {"x-auth": f"Bearer {KEY}"}, "hops": [{"via": WEBHOOK}]},
            "attempts": [f"first {KEY}", ["second", f"third {WEBHOOK}"]],
        }
    )
    assert event == {
        "event": "webhook.failed",
        "request": {"headers": {"x-auth": "Bearer ***"}, "hops": [{"via": "***"}]},
        "attempts": ["first ***", ["second", "third ***"]],
    }


def test_a_secret_inside_a_tuple_is_replaced() -> None:
    event = scrub({"event": "e", "args": ("sdr_1", f"key={KEY}")})
    assert list(event["args"]) == ["sdr_1", "key=***"]


def test_values_that_are_not_text_are_left_as_they_are() -> None:
    event = {"event": "e", "count": 3, "ratio": 0.5, "ok": True, "nothing": None, "ids": [1, 2]}
    assert scrub(event) == event


def test_an_event_without_secrets_passes_through_unchanged() -> None:
    event = {"event": "reply.assigned", "reply_id": "rpl_1", "sdr_id": "sdr_1", "ms": 12.5}
    assert scrub(event) == event


@pytest.mark.parametrize("name", sorted(SECRET_FIELDS))
def test_a_secret_named_field_is_masked_whatever_its_value(name: str) -> None:
    event = Scrubber()(None, "info", {"event": "e", name: "not a configured secret"})
    assert event == {"event": "e", name: "***"}


@pytest.mark.parametrize("name", ["Authorization", "API_KEY", "Thread_Snippet", "TOKEN"])
def test_secret_field_names_match_in_any_case(name: str) -> None:
    event = Scrubber()(None, "info", {"event": "e", name: {"nested": "anything"}})
    assert event[name] == "***"


def test_a_field_that_merely_contains_a_secret_word_is_kept() -> None:
    event = {"event": "e", "token_count": 3, "body_bytes": 120, "secret_rotation": "daily"}
    assert scrub(event) == event


def test_the_longest_secret_is_replaced_first() -> None:
    """A short secret that is the prefix of a longer one must not leave the longer's tail."""
    short, long = "sk_live_AB", "sk_live_ABCDEF"
    for order in ((short, long), (long, short)):
        event = Scrubber(order)(None, "info", {"event": "e", "error": f"a {long} b {short} c"})
        assert event["error"] == "a *** b *** c"
        assert "CDEF" not in event["error"]


def test_empty_and_repeated_secrets_are_ignored() -> None:
    scrubber = Scrubber(["", KEY, KEY, ""])
    assert scrubber.secrets == [KEY]
    assert scrubber(None, "info", {"event": "plain text"}) == {"event": "plain text"}


def test_the_scrubber_works_as_a_structlog_processor() -> None:
    log = get_logger("test")
    with capture_logs(processors=[Scrubber([KEY])]) as logs:
        log.warning("leadterra.rate_limited", error=f"429 for {KEY}", api_key=KEY, sdr_id="sdr_1")
    assert logs == [
        {
            "event": "leadterra.rate_limited",
            "error": "429 for ***",
            "api_key": "***",
            "sdr_id": "sdr_1",
            "log_level": "warning",
        }
    ]


# -- escaped forms, nested names, tracebacks ---------------------------------------------------

#: allowed in a key (printable ASCII), yet each changes under some escaping
AWKWARD = "sk_\"q\\u%41'+&/z"


def inner_repr(text: str) -> str:
    return repr(text)[1:-1]


def inner_json(text: str) -> str:
    return json.dumps(text)[1:-1]


AWKWARD_FORMS = {
    "plain": AWKWARD,
    "repr, single quotes": inner_repr(AWKWARD),
    "repr, double quotes": inner_repr(AWKWARD + '"')[:-1].replace("\\'", "'"),
    "repr of the repr": inner_repr(inner_repr(AWKWARD)),
    "json": inner_json(AWKWARD),
    "json, unicode kept": json.dumps(AWKWARD + "\u00e9", ensure_ascii=False)[1:-2],
    "json of the json": inner_json(inner_json(AWKWARD)),
    "repr of the json": inner_repr(inner_json(AWKWARD)),
    "json of the repr": inner_json(inner_repr(AWKWARD)),
    "url quote": quote(AWKWARD),
    "url quote, nothing safe": quote(AWKWARD, safe=""),
    "url quote_plus": quote_plus(AWKWARD),
    "url quote, lower-case hex": re.sub("%..", lambda m: m.group().lower(), quote(AWKWARD)),
    "url path as httpx keeps it": httpx.URL(f"https://h.test/{AWKWARD}").raw_path.decode()[1:],
    "json of the url": inner_json(httpx.URL(f"https://h.test/{AWKWARD}").raw_path.decode()[1:]),
}
INVISIBLE = "sk_live_\u200bzw\u00a0nb"  # refused by Settings, but the scrubber must not care


def test_every_awkward_form_really_differs_from_the_plain_secret() -> None:
    """The forms below test something: each escaping changes this secret."""
    different = {name for name, form in AWKWARD_FORMS.items() if form != AWKWARD}
    assert different == set(AWKWARD_FORMS) - {"plain"}


@pytest.mark.parametrize("form", list(AWKWARD_FORMS.values()), ids=list(AWKWARD_FORMS))
def test_each_escaped_form_of_a_secret_is_masked(form: str) -> None:
    event = scrub({"event": "e", "error": f"call failed: <{form}> (retrying)"}, (AWKWARD,))
    assert event["error"] == "call failed: <***> (retrying)"


@pytest.mark.parametrize(
    "form",
    [repr(INVISIBLE)[1:-1], json.dumps(INVISIBLE)[1:-1], quote(INVISIBLE), quote_plus(INVISIBLE)],
)
def test_escaped_forms_of_invisible_characters_are_masked(form: str) -> None:
    assert form != INVISIBLE
    assert scrub({"event": "e", "error": f"x {form} y"}, (INVISIBLE,))["error"] == "x *** y"


def test_the_repr_of_an_error_carrying_the_key_is_masked() -> None:
    """What Celery logs: the error's repr, where the escaped key does not match the plain one."""
    error = UnicodeEncodeError("ascii", f"Bearer {INVISIBLE}", 15, 16, "ordinal not in range")
    shown = f"{error!r} {error} {ValueError(INVISIBLE)!r} {[INVISIBLE]!r}"
    assert INVISIBLE not in shown.replace(repr(INVISIBLE), "")  # only escaped forms are there
    cleaned = Scrubber([INVISIBLE]).scrub(shown)
    assert "zw" not in cleaned and "nb" not in cleaned


def test_scrub_is_the_same_scrubber_for_text_outside_log_lines() -> None:
    assert scrub_text(f"422 for {json.dumps(AWKWARD)}", [AWKWARD, KEY]) == '422 for "***"'
    assert scrub_text("nothing secret", []) == "nothing secret"


def test_a_rendered_line_is_scrubbed_as_a_string() -> None:
    line = json.dumps({"event": "e", "error": f"bad {AWKWARD}"})
    cleaned = Scrubber([AWKWARD])(None, "info", line)
    assert isinstance(cleaned, str)
    assert json.loads(cleaned) == {"event": "e", "error": "bad ***"}


def test_secret_named_fields_are_masked_at_any_depth() -> None:
    event = scrub(
        {
            "event": "e",
            "request": {"headers": {"Authorization": "Bearer x", "accept": "json"}},
            "calls": [{"sdr": "sdr_1", "api_key": "anything"}, [{"deep": {"token": 7}}]],
        }
    )
    assert event["request"] == {"headers": {"Authorization": "***", "accept": "json"}}
    assert event["calls"] == [{"sdr": "sdr_1", "api_key": "***"}, [{"deep": {"token": "***"}}]]


def test_a_secret_in_a_dict_key_is_masked() -> None:
    assert scrub({"event": "e", "seen": {f"k-{KEY}": 1}})["seen"] == {"k-***": 1}


@pytest.fixture
def stderr_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test call configure_logging; the root logger and the hooks come back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _fail_with(secret: str) -> None:
    try:
        raise KeyError(f"no route for {secret}")
    except KeyError as inner:
        raise ValueError(f"call failed with {secret!r} in {json.dumps(secret)}") from inner


FORMS_IN_A_TRACEBACK = (AWKWARD, repr(AWKWARD)[1:-1], json.dumps(AWKWARD)[1:-1], "%41'+&/z")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_rendered_traceback_is_scrubbed(
    fmt: str, stderr_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", fmt, [AWKWARD])
    try:
        _fail_with(AWKWARD)
    except ValueError:
        get_logger("test").exception("task.crashed", reply_id="rpl_1")
        logging.getLogger("celery.worker").error("Task raised", exc_info=True)
    err = capsys.readouterr().err
    assert "Traceback" in err or '"exc_type": "ValueError"' in err
    assert err.count("KeyError") >= 2 and err.count("rpl_1") == 1
    for form in FORMS_IN_A_TRACEBACK:
        assert form not in err, form
    assert "q\\" not in err.replace("\\\\", "").replace('\\"', "")  # no tail of it either


def test_json_lines_stay_json_after_scrubbing(
    stderr_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json", [AWKWARD])
    try:
        _fail_with(AWKWARD)
    except ValueError:
        get_logger("test").exception("task.crashed", note=f"{AWKWARD} {AWKWARD!r}")
    [line] = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["note"] == "*** '***'"
    assert event["exception"][0]["exc_value"] == "call failed with '***' in \"***\""


def test_an_uncaught_exception_is_logged_scrubbed_not_printed_raw(
    stderr_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json", [AWKWARD], process="worker")
    try:
        _fail_with(AWKWARD)
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    thread = threading.Thread(target=_fail_with, args=(AWKWARD,), name="poller")
    thread.start()
    thread.join()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["event"], e.get("thread")) for e in lines] == [
        ("process.uncaught_exception", None),
        ("thread.uncaught_exception", "poller"),
    ]
    text = json.dumps(lines)
    for form in FORMS_IN_A_TRACEBACK:
        assert form not in text


# -- the direct path writes what the standard library's path wrote ----------------------------


def _configure_through_stdlib(fmt: str, secrets: list[str], process: str) -> None:
    """The pipeline as it was before worker/logsink.py: structlog's events as stdlib records,
    rendered by ProcessorFormatter with structlog's own JSONRenderer and TimeStamper."""
    import structlog
    import structlog.tracebacks

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        logs._bind_process(process),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        logs._drop_color_message,
    ]
    scrubber = Scrubber(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([tracebacks] if fmt == "json" else []),
                scrubber,
                renderer,
                scrubber,
            ],
        )
    )
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)


class _Opaque:
    def __repr__(self) -> str:
        return f"<opaque {KEY}>"


def _log_a_bit_of_everything() -> None:
    import structlog

    structlog.contextvars.bind_contextvars(request_id="req_1", task_id="t-1")
    log = get_logger("leadrouter.web")
    log.info("webhook.received", outcome="enqueued", status=202, duration_ms=1.5, reply_id="r1")
    log.info(
        "rotation.decided",
        candidates=[["sdr_1", 1], ("sdr_2", 2.5)],
        excluded={"sdr_9": "not_connected", "token": "x", f"k{KEY}": [KEY, None, True]},
        roster=None,
        note=f"key {KEY} and {AWKWARD!r} and {json.dumps(AWKWARD)}",
        opaque=_Opaque(),
        unicode="é ✓ \u2028",
    )
    log.warning("leadterra.rate_limited", api_key=KEY, Authorization="Bearer x", body=b"raw")
    get_logger().info("no.name")
    logging.getLogger("celery.worker").warning("Task %s raised %r", "t-1", KEY)
    try:
        _fail_with(AWKWARD)
    except ValueError:
        log.exception("task.crashed", reply_id="r1")
        log.error("task.failed", exc_info=True)


def _lines(text: str) -> list[str]:
    """The lines with each timestamp (the one thing that differs) made the same."""
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"
    return [re.sub(stamp, "<time>", line) for line in text.splitlines()]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_the_direct_path_writes_the_lines_the_standard_librarys_path_wrote(
    fmt: str, stderr_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _configure_through_stdlib(fmt, [KEY, AWKWARD], "web")
    _log_a_bit_of_everything()
    before = capsys.readouterr().err
    configure_logging("INFO", fmt, [KEY, AWKWARD], process="web")
    _log_a_bit_of_everything()
    after = capsys.readouterr().err
    assert len(_lines(after)) >= 7  # one line per event in JSON; tracebacks span more
    assert _lines(after) == _lines(before)
    assert KEY not in after and "<time>" not in after


def test_the_timestamp_reads_as_structlogs_utc_iso_stamp() -> None:
    from structlog.processors import TimeStamper

    from worker.logsink import UtcStamper

    ours, theirs = UtcStamper()(None, "info", {}), TimeStamper(fmt="iso", utc=True)(None, "", {})
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"
    assert re.fullmatch(pattern, ours["timestamp"]) and re.fullmatch(pattern, theirs["timestamp"])
    assert ours["timestamp"][:16] in (theirs["timestamp"][:16], ours["timestamp"][:16])


def test_a_line_that_cannot_be_written_is_reported_not_raised(
    stderr_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json", [KEY])
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)

    class Broken:
        def write(self, _: str) -> None:
            raise OSError("pipe gone")

        def flush(self) -> None:
            return None

    handler.setStream(Broken())  # type: ignore[arg-type]
    get_logger("test").info("lost.line", key=KEY)  # no exception here
    assert "pipe gone" in capsys.readouterr().err
