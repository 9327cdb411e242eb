"""Hostile input against the receiver, in-process: property-based (hypothesis) and explicit.

The properties every delivery must keep, whatever its bytes and headers:
- no answer is a 5xx (the only deliberate one, 503 for Redis down, is not reachable here),
- every answer is a JSON object with a `status`,
- nothing reaches Redis unless the signature is valid,
- a validly signed body of the wrong shape is 400/422 and reaches nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.conftest import WEBHOOK_SECRET, make_settings
from worker.keys import Keys
from worker.receiver.protocol import DEADLINE
from worker.receiver.web import create_app

PREVIOUS_SECRET = "whsec_old_9876543210"
SETTINGS = make_settings(leadterra_webhook_secret_previous=PREVIOUS_SECRET)
CAP = SETTINGS.max_body_bytes
KEYS = Keys(SETTINGS.key_prefix)
QUEUE = KEYS.queue("assign")
URL = "/webhooks/leadterra"
SIGNATURE = "x-leadterra-signature"

# Hypothesis warns when it builds the repr of a huge generated body (deep nesting, oversized
# bodies); with filterwarnings=error that warning would replace the real report.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --- signatures -----------------------------------------------------------------------------


def _digest(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


ENCODINGS: dict[str, Callable[[bytes], str]] = {
    "hex": lambda d: d.hex(),
    "HEX": lambda d: d.hex().upper(),
    "sha256=hex": lambda d: "sha256=" + d.hex(),
    "SHA256=hex": lambda d: "SHA256=" + d.hex(),
    "base64": lambda d: base64.b64encode(d).decode(),
    "base64 unpadded": lambda d: base64.b64encode(d).decode().rstrip("="),
    "base64url": lambda d: base64.urlsafe_b64encode(d).decode().rstrip("="),
    "sha256=base64": lambda d: "sha256=" + base64.b64encode(d).decode(),
    "spaced hex": lambda d: f"  {d.hex()} ",
}


def sign(body: bytes, secret: str = WEBHOOK_SECRET, encoding: str = "hex") -> str:
    return ENCODINGS[encoding](_digest(body, secret))


def is_valid(signature: str | None, body: bytes) -> bool:
    """An independent oracle: does any accepted encoding of either secret equal `signature`?"""
    if signature is None:
        return False
    return signature.strip() in {
        sign(body, secret, encoding).strip()
        for secret in (WEBHOOK_SECRET, PREVIOUS_SECRET)
        for encoding in ENCODINGS
    }


def good_signatures(body: bytes) -> st.SearchStrategy[str]:
    return st.builds(
        lambda secret, encoding: sign(body, secret, encoding),
        st.sampled_from([WEBHOOK_SECRET, PREVIOUS_SECRET]),
        st.sampled_from(sorted(ENCODINGS)),
    )


def _flip(signature: str, at: int) -> str:
    at %= len(signature)
    swapped = "0" if signature[at] != "0" else "1"
    return signature[:at] + swapped + signature[at + 1 :]


def bad_signatures(body: bytes) -> st.SearchStrategy[str | None]:
    """Absent, empty, garbage, well-formed but wrong, right but for another body or secret."""
    latin1 = st.text(st.characters(codec="latin-1"), max_size=300)
    return st.one_of(
        st.none(),
        st.just(""),
        latin1,
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.binary(min_size=32, max_size=32).map(lambda d: base64.b64encode(d).decode()),
        st.binary(min_size=32, max_size=32).map(lambda d: "sha256=" + d.hex()),
        st.binary(min_size=0, max_size=48).map(lambda d: base64.b64encode(d).decode()),
        st.text(min_size=1, max_size=40).map(lambda secret: sign(body, secret + "!")),
        st.builds(lambda extra: sign(body + extra), st.binary(min_size=1, max_size=8)),
        st.integers(0, 63).map(lambda at: _flip(sign(body), at)),
        st.just(sign(body)[:-1]),
        st.just(sign(body) + "0"),
        st.just("sha256=sha256=" + sign(body)),
    ).filter(lambda s: not is_valid(s, body))


# --- bodies ---------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
good_ids = st.from_regex(r"rpl_[A-Za-z0-9]{1,12}", fullmatch=True)
ids = st.one_of(
    good_ids,
    st.text(max_size=12),
    st.text(min_size=195, max_size=205),
    json_values,
)
classifications = st.one_of(
    st.sampled_from(["interested", "Interested", " INTERESTED ", "not_interested", "", "bounce"]),
    json_values,
)
texts = st.text(max_size=30) | json_values
replies = st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "email": texts,
        "campaignId": texts,
        "classification": classifications,
        "receivedAt": texts,
        "threadSnippet": st.text(max_size=50),
    },
)
datas = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "reply": replies | json_values,
            "replyId": ids,
            "id": ids,
            "classification": classifications,
            "email": texts,
        },
    ),
    json_values,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["reply.received", "message.sent", ""]) | json_values,
        "timestamp": texts,
        "data": datas,
        "extra": json_values,
    },
)

plausible_envelopes = st.fixed_dictionaries(
    {
        "event": st.just("reply.received"),
        "data": st.fixed_dictionaries(
            {
                "reply": st.fixed_dictionaries(
                    {
                        "id": good_ids | ids,
                        "classification": st.sampled_from(["interested", " Interested"])
                        | classifications,
                    },
                    optional={
                        "email": texts,
                        "campaignId": texts,
                        "receivedAt": texts,
                        "threadSnippet": texts,
                    },
                )
            },
            optional={"replyId": ids, "email": texts, "classification": classifications},
        ),
    },
    optional={"timestamp": texts, "extra": json_values},
)


@st.composite
def json_bodies(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> bytes:
    """JSON text of a drawn value; without ensure_ascii, lone surrogates make it invalid UTF-8."""
    value = draw(values)
    ascii_only = draw(st.booleans())
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def nested(depth: int, kind: str) -> bytes:
    if kind == "lists":
        return b"[" * depth + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "in reply":
        inner = b"[" * depth + b"]" * depth
        return b'{"event":"reply.received","data":{"reply":{"id":"rpl_n","x":' + inner + b"}}}"
    return b"[" * depth  # unbalanced


nested_bodies = st.builds(
    nested, st.integers(1, 60_000), st.sampled_from(["lists", "objects", "in reply", "open"])
)
huge_numbers = st.integers(4_000, 20_000).map(lambda n: b'{"event":"x","n":' + b"7" * n + b"}")
too_long_ints = huge_numbers.filter(lambda body: len(body) > 4_300 + 20)  # int() stops at 4300
sized_bodies = st.builds(
    lambda chunk, size: (chunk * (size // len(chunk) + 1))[:size],
    st.binary(min_size=1, max_size=64),
    st.integers(0, 2 * CAP) | st.sampled_from([CAP - 1, CAP, CAP + 1]),
)
bodies = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_bodies(envelopes),
    json_bodies(plausible_envelopes),
    json_bodies(json_values),
    nested_bodies,
    huge_numbers,
    sized_bodies,
)


not_a_dict = json_values.filter(lambda v: not isinstance(v, dict))
not_a_dict_or_null = not_a_dict.filter(lambda v: v is not None)
bad_events = st.one_of(
    st.just(""),
    st.text(min_size=101, max_size=120),
    json_values.filter(lambda v: not isinstance(v, str)),
)
bad_ids = st.one_of(
    st.just(""),
    st.text(min_size=201, max_size=210),
    st.from_regex(r"\s+rpl_1|rpl_1\s+", fullmatch=True),
    st.from_regex(r"rpl_[\x00-\x1f\x7f]", fullmatch=True),
    json_values.filter(lambda v: not isinstance(v, str)),
)
eventless = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k != "event"), json_values, max_size=3
)
unparsable = st.builds(
    nested, st.integers(1, 40_000), st.sampled_from(["lists", "objects", "open"])
)


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8"))
    except ValueError:
        return True
    return False


def _dump(pair: tuple[Any, bool]) -> bytes:
    value, ascii_only = pair
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def as_json(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """JSON text of a drawn value, as `json_bodies`, built without a composite."""
    return st.tuples(values, st.booleans()).map(_dump)


def _with_event(parts: tuple[dict[str, Any], Any, bool]) -> dict[str, Any]:
    envelope, event, include = parts
    return {**envelope, "event": event} if include else dict(envelope)


# JSON that `parse`/`decide` must reject with 422, or bytes that are not JSON (400).
wrong_shapes = st.one_of(
    as_json(not_a_dict),
    as_json(st.tuples(eventless, bad_events, st.booleans()).map(_with_event)),
    as_json(
        st.fixed_dictionaries(
            {"event": st.sampled_from(["reply.received", "message.sent"]), "data": not_a_dict}
        )
    ),
    as_json(
        st.fixed_dictionaries(
            {
                "event": st.just("reply.received"),
                "data": st.fixed_dictionaries({"reply": not_a_dict_or_null}),
            }
        )
    ),
    as_json(
        st.fixed_dictionaries(
            {
                "event": st.just("reply.received"),
                "data": st.fixed_dictionaries(
                    {
                        "reply": st.fixed_dictionaries(
                            {"id": bad_ids, "classification": st.just("interested")}
                        )
                    }
                ),
            }
        )
    ),
    as_json(
        st.fixed_dictionaries(
            {
                "event": st.just("reply.received"),
                "data": st.fixed_dictionaries(
                    {
                        "reply": st.fixed_dictionaries(
                            {
                                "id": st.just("rpl_1"),
                                "classification": not_a_dict_or_null.filter(
                                    lambda v: not isinstance(v, str)
                                ),
                            }
                        )
                    }
                ),
            }
        )
    ),
    st.binary(max_size=64).filter(_not_json),
    unparsable,
    too_long_ints,
)


# --- headers --------------------------------------------------------------------------------

header_names = st.one_of(
    st.sampled_from(
        [
            "content-type",
            "Content-Type",
            "content-encoding",
            "content-length",
            "transfer-encoding",
            "x-leadterra-signature",
            "X-LEADTERRA-SIGNATURE",
            "expect",
            "connection",
            "x-request-id",
        ]
    ),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
)
header_values = st.one_of(
    st.sampled_from(
        [
            b"application/json",
            b"application/json; charset=latin-1",
            b"text/plain",
            b"multipart/form-data; boundary=x",
            b"application/x-www-form-urlencoded",
            b"gzip",
            b"br, deflate",
            b"chunked",
            b"100-continue",
            b"0",
            b"-1",
            b"1e3",
            b"99999999999999999999999999",
            b"\xb2",  # superscript two: str.isdigit() says yes, int() says no
            b"\xb9\xb2\xb3",
        ]
    ),
    st.text(st.characters(codec="latin-1"), max_size=80).map(lambda s: s.encode("latin-1")),
)
headers_lists = st.lists(st.tuples(header_names, header_values), max_size=8)


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def sync(server: fakeredis.FakeServer) -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


@pytest.fixture
def app(server: fakeredis.FakeServer) -> Starlette:
    return create_app(SETTINGS, client=fakeredis.FakeAsyncRedis(server=server))


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with capture_logs(), TestClient(app) as test_client:
        yield test_client


def post(
    client: TestClient,
    body: bytes,
    signature: str | None,
    headers: list[tuple[str, bytes]] | None = None,
) -> httpx.Response:
    sent: list[tuple[str, bytes]] = [("content-type", b"application/json")]
    if signature is not None:
        sent.append((SIGNATURE, signature.encode("latin-1")))
    sent += headers or []
    return client.post(URL, content=body, headers=sent)


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON object every answer must be; fails the test otherwise."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert isinstance(answer, dict)
    assert isinstance(answer["status"], str)
    return answer


def stored(sync: fakeredis.FakeRedis) -> int:
    """Keys in Redis besides the time of the last verified webhook (which even an ignored
    delivery may stamp, for /metrics) and the minute's webhook count (for the console)."""
    counts = KEYS.stats_minute(0).removesuffix("0").encode()
    return sum(
        1
        for key in sync.scan_iter()
        if key != KEYS.last_webhook.encode() and not key.startswith(counts)
    )


def untouched(sync: fakeredis.FakeRedis) -> bool:
    return stored(sync) == 0


NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # this run's deliveries are fresh


def valid_envelope(reply_id: str = "rpl_1", **reply: Any) -> bytes:
    data = {"reply": {"id": reply_id, "classification": "interested", "email": "a@b.co", **reply}}
    envelope = {"event": "reply.received", "timestamp": NOW, "data": data}
    return json.dumps(envelope, separators=(",", ":")).encode()


# --- properties -----------------------------------------------------------------------------


@FUZZ
@given(body=bodies, data=st.data())
def test_an_unsigned_or_badly_signed_delivery_is_401_or_413_and_reaches_nothing(
    client, sync, body, data
) -> None:
    signature = data.draw(bad_signatures(body), label="signature")
    response = post(client, body, signature)
    answer = answer_of(response)
    if len(body) > CAP:
        assert (response.status_code, answer["status"]) == (413, "too_large")
    else:
        assert (response.status_code, answer["status"]) == (401, "bad_signature")
    assert untouched(sync)


@FUZZ
@given(
    body=wrong_shapes,
    secret=st.sampled_from([WEBHOOK_SECRET, PREVIOUS_SECRET]),
    encoding=st.sampled_from(sorted(ENCODINGS)),
)
def test_a_validly_signed_body_of_the_wrong_shape_is_400_or_422_and_reaches_nothing(
    client, sync, body, secret, encoding
) -> None:
    response = post(client, body, sign(body, secret, encoding))
    answer = answer_of(response)
    assert response.status_code in (400, 422)
    assert answer["status"] == "malformed"
    assert isinstance(answer["error"], str)
    assert untouched(sync)


@FUZZ
@given(body=bodies, data=st.data())
def test_any_validly_signed_body_is_answered_and_only_a_202_enqueues(
    client, sync, body, data
) -> None:
    sync.flushall()
    response = post(client, body, data.draw(good_signatures(body), label="signature"))
    answer = answer_of(response)
    event(f"{response.status_code} {answer['status']}")
    assert response.status_code in (200, 202, 400, 413, 422)
    if response.status_code == 202:
        assert answer["status"] == "enqueued"
        assert sync.llen(QUEUE) == 1
        assert sync.exists(KEYS.seen(answer["reply_id"]))
        assert sync.hexists(KEYS.inflight, answer["reply_id"])  # kept in flight
        assert stored(sync) == 4  # the queue, the marker, the in-flight message and its time
    else:
        assert untouched(sync)


@FUZZ
@given(
    body=st.one_of(bodies, st.builds(valid_envelope, good_ids)),
    headers=headers_lists,
    signed=st.booleans(),
    data=st.data(),
)
def test_random_and_duplicate_headers_never_break_the_receiver(
    client, sync, body, headers, signed, data
) -> None:
    """Only the first signature header counts; nothing is enqueued unless it is valid."""
    sync.flushall()
    signature = data.draw(good_signatures(body) if signed else bad_signatures(body))
    sent = [("content-type", b"application/json")]
    if signature is not None:
        sent.append((SIGNATURE, signature.encode("latin-1")))
    sent += headers
    response = client.post(URL, content=body, headers=sent)
    answer = answer_of(response)
    first = next((v.decode("latin-1") for n, v in sent if n.lower() == SIGNATURE), None)
    if response.status_code == 202 or not untouched(sync):
        assert answer["status"] == "enqueued"
        assert is_valid(first, body)
        assert sync.llen(QUEUE) == 1


# --- explicit cases -------------------------------------------------------------------------


def call_asgi(
    app: Starlette,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    *,
    stall: bool = False,
    hang_up: bool = False,
    deadline_in: float | None = None,
) -> tuple[int, dict[str, Any], int]:
    """POST through the raw ASGI interface, as a server would, counting the chunks the app read.

    `stall` keeps the request open after the last chunk, as a client that stops sending does;
    `hang_up` disconnects after it, as a client that goes away mid-body does. `deadline_in`
    passes a request deadline that many seconds ahead, as GuardedProtocol does.
    """

    async def run() -> tuple[list[dict[str, Any]], int]:
        sent: list[dict[str, Any]] = []
        pulled = 0

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            if pulled < len(chunks):
                pulled += 1
                more = pulled < len(chunks) or stall or hang_up
                return {"type": "http.request", "body": chunks[pulled - 1], "more_body": more}
            if stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": URL,
            "raw_path": URL.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        if deadline_in is not None:
            at = asyncio.get_running_loop().time() + deadline_in
            scope["extensions"] = {DEADLINE: {"at": at}}
        await app(scope, receive, send)
        return sent, pulled

    sent, pulled = asyncio.run(run())
    start, *parts = sent
    assert (b"content-type", b"application/json") in start["headers"]
    if start["status"] in (408, 413):  # the rest of the body is unread: the connection must go
        assert (b"connection", b"close") in start["headers"]
    return start["status"], json.loads(b"".join(p.get("body", b"") for p in parts)), pulled


def test_a_declared_oversized_body_is_413_before_a_byte_of_it_is_read(app, sync) -> None:
    chunks = [b"x" * 65536] * 160  # 10 MiB, never pulled
    body_size = str(sum(map(len, chunks))).encode()
    status, answer, pulled = call_asgi(app, [(b"content-length", body_size)], chunks)
    assert (status, answer["status"], pulled) == (413, "too_large", 0)
    assert untouched(sync)


def test_an_undeclared_oversized_body_is_413_as_soon_as_it_passes_the_cap(app, sync) -> None:
    chunk = b"x" * 16384
    chunks = [chunk] * (10 * CAP // len(chunk))
    headers = [(b"transfer-encoding", b"chunked"), (SIGNATURE.encode(), b"0" * 64)]
    status, answer, pulled = call_asgi(app, headers, chunks)
    assert (status, answer["status"]) == (413, "too_large")
    assert pulled == CAP // len(chunk) + 1
    assert untouched(sync)


def test_a_chunked_oversized_signed_body_through_the_client_is_413(client, sync) -> None:
    body = valid_envelope(padding="x" * (2 * CAP))

    def chunks() -> Iterator[bytes]:
        for at in range(0, len(body), 10_000):
            yield body[at : at + 10_000]

    response = client.post(URL, content=chunks(), headers={SIGNATURE: sign(body)})
    assert "content-length" not in response.request.headers
    assert (response.status_code, answer_of(response)["status"]) == (413, "too_large")
    assert untouched(sync)


def test_a_body_of_exactly_the_cap_is_accepted_and_one_byte_more_is_413(client, sync) -> None:
    short = valid_envelope(padding="")
    exact = valid_envelope(padding="x" * (CAP - len(short)))
    over = valid_envelope("rpl_2", padding="x" * (CAP - len(short) + 1))
    assert (len(exact), len(over)) == (CAP, CAP + 1)
    assert post(client, exact, sign(exact)).status_code == 202
    assert post(client, over, sign(over)).status_code == 413
    assert sync.llen(QUEUE) == 1


@pytest.mark.parametrize(
    "declared", [b"\xb2", b"\xb9\xb2\xb3", b"abc", b"-1", b"", b"1e3", b" 12", b"0x10", b"+5"]
)
def test_a_content_length_that_is_not_ascii_digits_is_not_a_500(app, sync, declared) -> None:
    """Starlette decodes headers as latin-1, where '²' passes str.isdigit() but not int()."""
    chunks = [b'{"event":"reply.received"}']
    status, answer, _ = call_asgi(app, [(b"content-length", declared)], chunks)
    assert (status, answer["status"]) == (401, "bad_signature")
    assert untouched(sync)


@pytest.mark.parametrize(
    ("declared", "status"),
    [
        (b"9" * 5000, 413),  # past int()'s 4300-digit limit
        (str(CAP + 1).encode(), 413),
        (b"0" * 5000 + str(CAP + 1).encode(), 413),
        (b"0" * 5000 + b"26", 401),
        (str(CAP).encode(), 401),
        (b"0", 401),
    ],
)
def test_a_declared_length_of_any_number_of_digits_is_compared_exactly(
    app, sync, declared, status
) -> None:
    chunks = [b'{"event":"reply.received"}']
    assert call_asgi(app, [(b"content-length", declared)], chunks)[0] == status
    assert untouched(sync)


def test_a_body_that_stops_arriving_is_408_at_the_servers_deadline(app, sync) -> None:
    body = valid_envelope()
    headers = [
        (b"content-length", str(len(body)).encode()),
        (SIGNATURE.encode(), sign(body).encode()),
    ]
    status, answer, pulled = call_asgi(app, headers, [body[:10]], stall=True, deadline_in=0.2)
    assert (status, answer["status"], pulled) == (408, "too_slow", 1)
    assert untouched(sync)


def test_a_client_gone_mid_body_is_answered_not_a_500(app, sync) -> None:
    body = valid_envelope()
    headers = [
        (b"content-length", str(len(body)).encode()),
        (SIGNATURE.encode(), sign(body).encode()),
    ]
    status, answer, _ = call_asgi(app, headers, [body[:10]], hang_up=True)
    assert (status, answer["status"]) == (400, "disconnected")
    assert untouched(sync)


NOT_JSON = [
    b"",
    b"not json",
    b"{",
    b'{"event":"reply.received",}',
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",
    b'{"event":"\xed\xa0\x80"}',  # a UTF-16 surrogate, encoded: not valid UTF-8
    b'{"event":"caf\xe9"}',  # latin-1
    '{"event":"reply.received"}'.encode("utf-16"),
    b'\xef\xbb\xbf{"event":"reply.received"}',  # a UTF-8 byte-order mark
    b'{"event":"x","n":' + b"9" * 5000 + b"}",  # past int()'s 4300-digit limit
]


@pytest.mark.parametrize("body", NOT_JSON)
def test_a_signed_body_that_is_not_utf8_json_is_400(client, sync, body) -> None:
    response = post(client, body, sign(body))
    assert (response.status_code, answer_of(response)["status"]) == (400, "malformed")
    assert untouched(sync)


@pytest.mark.parametrize("body", NOT_JSON)
def test_an_unsigned_body_that_is_not_utf8_json_is_401(client, sync, body) -> None:
    response = post(client, body, None)
    assert (response.status_code, answer_of(response)["status"]) == (401, "bad_signature")
    assert untouched(sync)


WRONG_SHAPES = [
    b"[]",
    b"null",
    b"NaN",
    b'"reply.received"',
    b"{}",
    b'{"event":""}',
    b'{"event":7,"data":{}}',
    b'{"event":"' + b"e" * 101 + b'"}',
    b'{"event":"reply.received","data":[]}',
    b'{"event":"reply.received","data":null}',
    b'{"event":"message.sent","data":"x"}',
    b'{"event":"reply.received","data":{}}',
    b'{"event":"reply.received","data":{"reply":[]}}',
    b'{"event":"reply.received","data":{"reply":null}}',
    b'{"event":"reply.received","data":{"reply":{"id":7}}}',
    b'{"event":"reply.received","data":{"reply":{"id":" rpl_1"}}}',
    b'{"event":"reply.received","data":{"reply":{"id":"rpl\\n1"}}}',
    b'{"event":"reply.received","data":{"reply":{"id":"' + b"r" * 201 + b'"}}}',
    b'{"event":"reply.received","data":{"reply":{"id":"rpl_1","classification":1}}}',
    b'{"event":"reply.received","data":{"reply":{"id":"rpl_1","classification":["x"]}}}',
]


@pytest.mark.parametrize("body", WRONG_SHAPES)
def test_a_validly_signed_body_of_the_wrong_shape_is_422(client, sync, body) -> None:
    response = post(client, body, sign(body, PREVIOUS_SECRET, "base64"))
    assert (response.status_code, answer_of(response)["status"]) == (422, "malformed")
    assert untouched(sync)


def test_a_replayed_delivery_is_200_duplicate_and_enqueued_once(client, sync) -> None:
    body = valid_envelope("rpl_replay")
    first = post(client, body, sign(body))
    assert (first.status_code, answer_of(first)) == (
        202,
        {"status": "enqueued", "reply_id": "rpl_replay"},
    )
    resent = [
        (body, sign(body)),
        (body, sign(body, PREVIOUS_SECRET, "base64")),
        (body.replace(NOW.encode(), b"2999-01-01T00:00:00Z"), None),
    ]
    for again, signature in resent:
        response = post(client, again, signature or sign(again, encoding="sha256=hex"))
        assert (response.status_code, answer_of(response)) == (
            200,
            {"status": "duplicate", "reply_id": "rpl_replay"},
        )
    assert sync.llen(QUEUE) == 1
    assert stored(sync) == 4  # the queue, the marker, the in-flight message and its time


@pytest.mark.parametrize("depth", [1_000, 10_000, 40_000])
@pytest.mark.parametrize("kind", ["lists", "objects", "in reply", "open"])
def test_deep_nesting_is_400_not_a_recursion_error(client, sync, depth, kind) -> None:
    body = nested(depth, kind)
    response = post(client, body, sign(body))
    assert (response.status_code, answer_of(response)["status"]) == (400, "malformed")
    assert untouched(sync)


def test_nesting_that_parses_inside_a_valid_reply_is_enqueued_without_it(client, sync) -> None:
    body = nested(200, "in reply").replace(
        b'"id":"rpl_n"', b'"id":"rpl_n","classification":"interested"'
    )
    response = post(client, body, sign(body))
    assert response.status_code == 202
    [message] = sync.lrange(QUEUE, 0, -1)
    [[args], _, _] = json.loads(base64.b64decode(json.loads(message)["body"]))
    assert sorted(args) == [
        "acceptedAt",
        "campaignId",
        "classification",
        "email",
        "id",
        "receivedAt",
    ]
