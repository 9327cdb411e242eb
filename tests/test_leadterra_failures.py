"""worker/leadterra/client.py and answers.py in an open world: every httpx failure and every body
a 2xx can carry end in the error tree (or a valid model), never in anything else, never with the
key in them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tests.support.fake_leadterra import FakeLeadterra
from worker import errors
from worker.leadterra.client import LeadterraClient

KEY = "sk_live_SECRET123"
REQUEST = httpx.Request("POST", "https://leadterra.test/v1/replies/rpl_1/assign")


class OurOwnHTTPError(httpx.HTTPError):
    """An httpx error class httpx may add one day: the catch-all maps it."""


FAILURES: list[tuple[Exception, type[errors.ServiceError], str]] = [
    (httpx.ConnectTimeout("slow"), errors.TransportFailure, "timeout"),
    (httpx.WriteTimeout("slow"), errors.TransportFailure, "timeout"),
    (httpx.PoolTimeout("full"), errors.TransportFailure, "timeout"),
    (httpx.ConnectError("refused"), errors.TransportFailure, "connection_error"),
    (httpx.ReadError("reset"), errors.TransportFailure, "connection_error"),
    (httpx.WriteError("broken pipe"), errors.TransportFailure, "connection_error"),
    (httpx.CloseError("close"), errors.TransportFailure, "connection_error"),
    (httpx.RemoteProtocolError("illegal chunk"), errors.TransportFailure, "connection_error"),
    (httpx.ProxyError("proxy down"), errors.TransportFailure, "connection_error"),
    (httpx.DecodingError("incorrect header check"), errors.ServerError, "garbled"),
    (httpx.TooManyRedirects("loop", request=REQUEST), errors.ServerError, "garbled"),
    (httpx.LocalProtocolError("Illegal header value"), errors.UnsendableRequest, "unsendable"),
    (httpx.UnsupportedProtocol("ftp://"), errors.UnsendableRequest, "unsendable"),
    (httpx.InvalidURL("URL too long"), errors.UnsendableRequest, "unsendable"),
    (UnicodeEncodeError("ascii", KEY, 3, 4, "no"), errors.UnsendableRequest, "unsendable"),
    (httpx.StreamConsumed(), errors.TransportFailure, "connection_error"),
    (OurOwnHTTPError("new in httpx 9"), errors.TransportFailure, "connection_error"),
]


@pytest.fixture
def api() -> FakeLeadterra:
    return FakeLeadterra(workspace_key=KEY, base_url="https://leadterra.test")


@pytest.fixture
def calls() -> list[tuple[Any, ...]]:
    return []


@pytest.fixture
def client(api: FakeLeadterra, calls: list[tuple[Any, ...]]) -> Iterator[LeadterraClient]:
    class Observer:
        def before_call(self, endpoint: str) -> None:
            pass

        def after_call(self, endpoint: str, status: str, *_: Any) -> None:
            calls.append((endpoint, status))

    leadterra = api.client(observer=Observer())
    yield leadterra
    leadterra.close()


def no_key_in(error: BaseException) -> None:
    for text in (str(error), repr(error), *map(str, vars(error).values())):
        assert KEY not in text and "SECRET123" not in text


@pytest.mark.parametrize(
    ("raised", "mapped", "status"), FAILURES, ids=[type(f[0]).__name__ for f in FAILURES]
)
def test_every_httpx_failure_is_mapped_onto_the_error_tree(
    client, api, calls, raised, mapped, status
) -> None:
    api.answers["/v1/replies/rpl_1/assign"] = raised
    with pytest.raises(errors.ServiceError) as caught:
        client.assign_reply("rpl_1", "sdr_1")
    assert type(caught.value) is mapped
    assert caught.value.endpoint == "POST /v1/replies/{id}/assign"
    assert caught.value.__cause__ is None  # the original (and what it holds) stays behind
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    assert calls == [("POST /v1/replies/{id}/assign", status)]
    no_key_in(caught.value)


def test_garbled_answers_are_retryable_and_unsendable_requests_permanent() -> None:
    retryable = {mapped.retryable for _, mapped, status in FAILURES if status != "unsendable"}
    permanent = {mapped.retryable for _, mapped, status in FAILURES if status == "unsendable"}
    assert (retryable, permanent) == ({True}, {False})


def test_a_body_that_does_not_match_its_content_encoding_is_a_retryable_server_error(
    client, api
) -> None:
    api.assign_script.append(
        httpx.Response(
            200,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            stream=httpx.ByteStream(b'{"data":{"handoffId":"h1"}}'),
        )
    )
    with pytest.raises(errors.ServerError) as caught:
        client.assign_reply("rpl_1", "sdr_1")
    assert "does not decode as its Content-Encoding (gzip)" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [b"<html>502</html>", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe\x00garbage", b'{"data": '],
    ids=["html", "too-deep", "not-utf8", "cut"],
)
def test_a_2xx_that_is_not_json_is_a_retryable_server_error(client, api, body) -> None:
    api.answers["/v1/sdrs"] = httpx.Response(200, content=body)
    with pytest.raises(errors.ServerError, match="not JSON"):
        client.list_sdrs()


@pytest.mark.parametrize(
    "body",
    [{"data": {"garbled": True}}, {"data": [1, 2]}, [], "ok", None, {"data": {"handoffId": ""}}],
)
def test_an_assign_2xx_that_names_no_handoff_is_an_unexpected_answer(client, api, body) -> None:
    api.assign_script.append(httpx.Response(200, json=body))
    with pytest.raises(errors.UnexpectedAnswer):
        client.assign_reply("rpl_1", "sdr_1")


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_an_error_body_nested_too_deep_still_maps_by_status(client, api, status) -> None:
    deep = b'{"error":' * 50_000 + b"1" + b"}" * 50_000
    api.answers["/v1/sdrs"] = httpx.Response(status, content=deep)
    with pytest.raises(errors.ServiceError) as caught:
        client.list_sdrs()
    assert caught.value.status == status
    assert str(caught.value) == f"GET /v1/sdrs: {status} HTTP {status}"


@pytest.mark.parametrize(
    "key",
    ["sk_live_zero\u200bwidth", "sk_live_nb\u00a0sp", "sk_live_tab\tkey", "sk live", "sk\x7fdel"],
    ids=["zero-width", "nbsp", "tab", "space", "control"],
)
def test_a_key_no_header_can_carry_is_an_auth_error_sent_nowhere(api, key) -> None:
    leadterra = LeadterraClient("https://leadterra.test", SecretStr(key), transport=api.transport())
    with pytest.raises(errors.AuthError) as caught:
        leadterra.gmail_status()
    assert key not in str(caught.value) and "LEADTERRA_API_KEY" in str(caught.value)
    assert api.calls == []


def test_a_non_ascii_id_goes_into_the_path_escaped_never_a_header(client, api) -> None:
    client.complete_followup("fu_é\u200b")
    assert api.last.url.raw_path == b"/v1/sdr/followups/fu_%C3%A9%E2%80%8B/complete"


# -- any body a 2xx can carry -------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
WRAPPED = JSON | st.builds(lambda v: {"data": v}, JSON) | st.builds(lambda v: {"data": [v]}, JSON)
ENDPOINTS: dict[str, Callable[[LeadterraClient], Any]] = {
    "/v1/sdrs": lambda c: c.list_sdrs(),
    "/v1/replies/rpl_1/assign": lambda c: c.assign_reply("rpl_1", "sdr_1"),
    "/v1/sdr/followups/due": lambda c: c.due_followups(),
    "/v1/sdr/inbox": lambda c: c.inbox(),
    "/v1/sdr/gmail/status": lambda c: c.gmail_status(),
    "/v1/webhooks": lambda c: c.create_webhook("https://x.test/h", ["reply.received"]),
    "/v1/sdr/followups/fu_1/skip": lambda c: c.skip_followup("fu_1", "done"),
}


def _outcome(path: str, answer: httpx.Response) -> None:
    fake = FakeLeadterra(workspace_key=KEY)
    fake.answers[path] = answer
    leadterra = fake.client()
    try:
        ENDPOINTS[path](leadterra)
    except errors.ServiceError as error:
        no_key_in(error)
    finally:
        leadterra.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(sorted(ENDPOINTS)), body=WRAPPED, status=st.sampled_from([200, 204]))
def test_any_json_on_a_2xx_is_a_model_or_an_error_of_ours(path, body, status) -> None:
    _outcome(path, httpx.Response(status, content=json.dumps(body).encode()))


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(sorted(ENDPOINTS)),
    body=st.binary(max_size=64),
    status=st.integers(min_value=200, max_value=599),
    encoding=st.sampled_from([None, "gzip", "deflate", "br", "identity", "zstd", "x-odd"]),
)
def test_any_bytes_with_any_status_and_encoding_end_in_the_error_tree(
    path, body, status, encoding
) -> None:
    headers = {"Content-Encoding": encoding} if encoding else {}
    _outcome(path, httpx.Response(status, headers=headers, stream=httpx.ByteStream(body)))
