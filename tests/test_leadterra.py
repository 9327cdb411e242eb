"""worker/leadterra/client.py through httpx.MockTransport: requests sent, statuses mapped, no key
leaks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from pydantic import SecretStr

from tests.conftest import make_settings
from tests.support.fake_leadterra import Answer, FakeLeadterra
from worker import errors
from worker.leadterra.client import USER_AGENT, AssignOutcome, LeadterraClient, parse_retry_after
from worker.leadterra.models import AssignResult

BASE_URL = "https://leadterra.test"
KEY = "sk_live_SECRET123"
SDR_KEY = "sk_live_SDRKEY456"
THREADS = [{"id": f"thr_{n}", "status": "new", "priorityScore": n} for n in range(250)]
DUE_ITEM = {"id": "fu_1", "threadId": "thr_1", "sdrId": "sdr_1", "status": "pending",
            "dueAt": "2026-06-29T14:00:00.000Z"}  # fmt: skip


@dataclass
class RecordingObserver:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def before_call(self, endpoint: str) -> None:
        self.calls.append(("before", endpoint))

    def after_call(
        self, endpoint: str, status: str, seconds: float, retry_after: float | None
    ) -> None:
        assert seconds >= 0
        self.calls.append(("after", endpoint, status, retry_after))


@pytest.fixture
def api() -> FakeLeadterra:
    return FakeLeadterra(
        [{"id": "sdr_1", "gmailConnected": True}],
        workspace_key=KEY,
        sdr_keys={"sdr_1": SDR_KEY},
        due={None: [dict(DUE_ITEM)]},  # copies: a test may edit the fake's data
        inbox={None: [dict(t) for t in THREADS]},
        base_url=BASE_URL,
        max_calls=20,
    )


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def client(api: FakeLeadterra, observer: RecordingObserver) -> Iterator[LeadterraClient]:
    leadterra = api.client(observer=observer)
    yield leadterra
    leadterra.close()


def answer(status: int, body: Any = None, **kwargs: Any) -> httpx.Response:
    if isinstance(body, str | bytes):
        return httpx.Response(status, content=body, **kwargs)
    return httpx.Response(status, json=body, **kwargs)


# -- the httpx.Client ---------------------------------------------------------------------------


def test_every_request_carries_the_bearer_key_and_user_agent(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    client.list_sdrs()
    assert api.last.headers["authorization"] == f"Bearer {KEY}"
    assert api.last.headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("leadterra-router/")
    assert api.last.headers["accept"] == "application/json"
    assert str(api.last.url) == f"{BASE_URL}/v1/sdrs"


def test_the_default_timeouts_are_explicit(client: LeadterraClient) -> None:
    assert client._http.timeout == httpx.Timeout(10.0, connect=3.0, pool=5.0)


def test_from_settings_takes_the_timeouts_base_url_and_key_from_settings(
    api: FakeLeadterra,
) -> None:
    settings = make_settings(
        leadterra_api_key=KEY,
        leadterra_base_url="https://eu.leadterra.test/",
        leadterra_timeout_connect=1.5,
        leadterra_timeout_read=7.0,
        leadterra_timeout_pool=2.5,
    )
    leadterra = LeadterraClient.from_settings(settings, transport=api.transport())
    leadterra.list_sdrs()
    timeout = leadterra._http.timeout
    assert (timeout.connect, timeout.read, timeout.pool) == (1.5, 7.0, 2.5)
    assert str(api.last.url) == "https://eu.leadterra.test/v1/sdrs"
    assert api.last.headers["authorization"] == f"Bearer {KEY}"


def test_from_settings_without_a_key_is_an_auth_error() -> None:
    with pytest.raises(errors.AuthError, match="LEADTERRA_API_KEY"):
        LeadterraClient.from_settings(make_settings(leadterra_api_key=None))


def test_with_key_reuses_the_pool_and_sends_its_own_key(
    client: LeadterraClient, api: FakeLeadterra, observer: RecordingObserver
) -> None:
    sdr_client = client.with_key(SecretStr(SDR_KEY))

    sdr_client.gmail_status()
    client.list_sdrs()

    assert sdr_client._http is client._http
    assert [call.authorization for call in api.calls] == [
        f"Bearer {SDR_KEY}",
        f"Bearer {KEY}",
    ]
    assert str(api.calls[0].url) == f"{BASE_URL}/v1/sdr/gmail/status"
    assert ("before", "GET /v1/sdr/gmail/status") in observer.calls  # observer is shared


def test_repr_shows_the_base_url_but_never_the_key(client: LeadterraClient) -> None:
    sdr_client = client.with_key(SecretStr(SDR_KEY))
    assert BASE_URL in repr(client)
    for text in (repr(client), str(client), repr(sdr_client), str(sdr_client)):
        assert KEY not in text
        assert SDR_KEY not in text


# -- each endpoint: method, path, query, body, parsed result ----------------------------------


def test_list_sdrs_gets_v1_sdrs(client: LeadterraClient, api: FakeLeadterra) -> None:
    sdrs = client.list_sdrs()
    assert (api.last.method, api.last.url.path) == ("GET", "/v1/sdrs")
    assert api.last.request.content == b""
    assert [(s.id, s.gmail_connected) for s in sdrs] == [("sdr_1", True)]


def test_assign_posts_the_documented_body(client: LeadterraClient, api: FakeLeadterra) -> None:
    outcome = client.assign_reply("rpl_01HZB3MNPW6XT8QA", "sdr_1")

    assert api.last.method == "POST"
    assert api.last.url.path == "/v1/replies/rpl_01HZB3MNPW6XT8QA/assign"
    assert api.last.headers["content-type"] == "application/json"
    assert api.last.body == {"sdrId": "sdr_1", "category": "A", "skipIcpCheck": True}
    assert outcome == AssignOutcome(
        already_assigned=False,
        result=AssignResult(handoff_id="h1", thread_id="t1", message_id="m1", gmail_thread_id="g1"),
    )


@pytest.mark.parametrize(
    ("kwargs", "extra"),
    [
        ({"note": "Hot lead"}, {"note": "Hot lead"}),
        ({"force_forward": True}, {"forceForward": True}),
        ({"force_forward": False}, {"forceForward": False}),
        (
            {"skip_icp_check": False, "seniority": "VP", "employee_count": "51-200"},
            {"skipIcpCheck": False, "seniority": "VP", "employeeCount": "51-200"},
        ),
        ({"category": "C"}, {"category": "C"}),
    ],
)
def test_assign_sends_optional_fields_only_when_given(
    client: LeadterraClient, api: FakeLeadterra, kwargs: dict[str, Any], extra: dict[str, Any]
) -> None:
    client.assign_reply("rpl_1", "sdr_1", **kwargs)
    assert api.last.body == {"sdrId": "sdr_1", "category": "A", "skipIcpCheck": True, **extra}


def test_assign_can_leave_out_category_and_skip_icp_check(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    client.assign_reply("rpl_1", "sdr_1", category=None, skip_icp_check=None)
    assert api.last.body == {"sdrId": "sdr_1"}


@pytest.mark.parametrize(
    ("limit", "sent"), [(50, "50"), (200, "200"), (201, "200"), (10_000, "200"), (0, "1")]
)
def test_due_followups_clamps_the_limit_to_200(
    client: LeadterraClient, api: FakeLeadterra, limit: int, sent: str
) -> None:
    client.due_followups(limit=limit)
    assert api.last.url.params.get_list("limit") == [sent]


def test_due_followups_sends_include_upcoming_true_and_parses_the_items(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    followups = client.due_followups(limit=10, include_upcoming=True)

    assert (api.last.method, api.last.url.path) == ("GET", "/v1/sdr/followups/due")
    assert dict(api.last.url.params) == {"limit": "10", "includeUpcoming": "true"}
    assert len(followups) == 1
    assert followups[0].id == "fu_1"
    assert followups[0].due_at == datetime(2026, 6, 29, 14, tzinfo=UTC)


def test_due_followups_leaves_include_upcoming_out_by_default(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    client.due_followups()
    assert "includeUpcoming" not in api.last.url.params


def test_complete_followup_posts_without_a_body(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    assert client.complete_followup("fu_1") is None
    assert (api.last.method, api.last.url.path) == ("POST", "/v1/sdr/followups/fu_1/complete")
    assert api.last.request.content == b""


def test_skip_followup_sends_the_reason(client: LeadterraClient, api: FakeLeadterra) -> None:
    client.skip_followup("fu_1", "lead replied on another thread")
    assert (api.last.method, api.last.url.path) == ("POST", "/v1/sdr/followups/fu_1/skip")
    assert api.last.body == {"reason": "lead replied on another thread"}


@pytest.mark.parametrize(
    "due_at",
    [
        datetime(2026, 7, 5, 14, 0, tzinfo=UTC),
        datetime(2026, 7, 5, 16, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 7, 5, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 7, 5, 14, 0, 0, 999, tzinfo=UTC),
    ],
)
def test_reschedule_sends_due_at_as_utc_with_milliseconds_and_z(
    client: LeadterraClient, api: FakeLeadterra, due_at: datetime
) -> None:
    client.reschedule_followup("fu_1", due_at)
    assert (api.last.method, api.last.url.path) == ("POST", "/v1/sdr/followups/fu_1/reschedule")
    assert api.last.body == {"dueAt": "2026-07-05T14:00:00.000Z"}


def test_schedule_sends_due_at_as_utc_with_milliseconds_and_z(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    due_at = datetime(2026, 7, 5, 23, 30, 15, 123456, tzinfo=timezone(timedelta(hours=9)))
    client.schedule_thread_followup("thr_1", due_at)
    assert (api.last.method, api.last.url.path) == (
        "POST",
        "/v1/sdr/threads/thr_1/followup/schedule",
    )
    assert api.last.body == {"dueAt": "2026-07-05T14:30:15.123Z"}


def test_schedule_without_due_at_sends_an_empty_object(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    client.schedule_thread_followup("thr_1")
    assert api.last.headers["content-type"] == "application/json"
    assert api.last.body == {}


def test_inbox_sends_repeated_status_params_category_limit_and_offset(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    page = client.inbox(status=["new", "needs_followup"], category="A", limit=20, offset=40)

    assert (api.last.method, api.last.url.path) == ("GET", "/v1/sdr/inbox")
    params = api.last.url.params
    assert params.get_list("status") == ["new", "needs_followup"]
    assert params.get_list("limit") == ["20"]
    assert params.get_list("offset") == ["40"]
    assert params.get_list("category") == ["A"]
    assert [t.id for t in page.threads] == [f"thr_{n}" for n in range(40, 60)]
    assert (page.total, page.has_more) == (250, True)


@pytest.mark.parametrize(("limit", "sent"), [(100, "100"), (101, "100"), (5000, "100"), (0, "1")])
def test_inbox_caps_the_limit_at_100(
    client: LeadterraClient, api: FakeLeadterra, limit: int, sent: str
) -> None:
    client.inbox(limit=limit)
    assert api.last.url.params.get_list("limit") == [sent]
    assert "offset" not in api.last.url.params
    assert "status" not in api.last.url.params


def test_inbox_accepts_a_bare_list_of_threads(client: LeadterraClient, api: FakeLeadterra) -> None:
    api.answers["/v1/sdr/inbox"] = answer(200, {"data": [{"id": "thr_a"}, {"id": "thr_b"}]})
    page = client.inbox()
    assert [t.id for t in page.threads] == ["thr_a", "thr_b"]
    assert page.has_more is False


def test_inbox_all_pages_until_has_more_is_false(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    threads = client.inbox_all(status=["new"])

    assert [t.id for t in threads] == [t["id"] for t in THREADS]
    assert [c.url.params.get("offset", "0") for c in api.calls] == ["0", "100", "200"]
    assert all(c.url.params.get_list("status") == ["new"] for c in api.calls)


def test_inbox_all_stops_on_an_empty_page_even_if_has_more_says_otherwise(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    body = {"data": {"threads": [], "total": 9, "hasMore": True}}
    api.answers["/v1/sdr/inbox"] = answer(200, body)
    assert client.inbox_all() == []
    assert len(api.calls) == 1


def test_gmail_status_gets_the_sdr_connection(client: LeadterraClient, api: FakeLeadterra) -> None:
    status = client.gmail_status()
    assert (api.last.method, api.last.url.path) == ("GET", "/v1/sdr/gmail/status")
    assert (status.connected, status.email, status.health_state) == (
        True,
        "sdr@gmail.com",
        "active",
    )


def test_create_webhook_posts_url_and_events(client: LeadterraClient, api: FakeLeadterra) -> None:
    hook = client.create_webhook("https://router.example/hooks", ["reply.received"])
    assert (api.last.method, api.last.url.path) == ("POST", "/v1/webhooks")
    assert api.last.body == {"url": "https://router.example/hooks", "events": ["reply.received"]}
    assert (hook.id, hook.status, hook.events) == ("wh_1", "active", ["reply.received"])


@pytest.mark.parametrize(
    ("call", "template", "identifier"),
    [
        (lambda c, i: c.assign_reply(i, "sdr_1"), "/v1/replies/{}/assign", "a/b?c"),
        (lambda c, i: c.complete_followup(i), "/v1/sdr/followups/{}/complete", "../x"),
        (lambda c, i: c.skip_followup(i, "r"), "/v1/sdr/followups/{}/skip", "f?x=1&y=2"),
        (
            lambda c, i: c.reschedule_followup(i, datetime(2026, 1, 1, tzinfo=UTC)),
            "/v1/sdr/followups/{}/reschedule",
            "f#1 %",
        ),
        (
            lambda c, i: c.schedule_thread_followup(i),
            "/v1/sdr/threads/{}/followup/schedule",
            "t/1",
        ),
        (
            lambda c, i: c.assign_reply(i, "sdr_1"),
            "/v1/replies/{}/assign",
            "camp_01hx4mrqpbcn7wh2gfk9yz6e3s",
        ),
    ],
)
def test_ids_are_quoted_as_one_path_segment(
    client: LeadterraClient,
    api: FakeLeadterra,
    call: Callable[[Any, str], Any],
    template: str,
    identifier: str,
) -> None:
    call(client, identifier)
    raw_path = api.last.url.raw_path.decode()
    prefix, suffix = template.split("{}")
    assert raw_path.startswith(prefix) and raw_path.endswith(suffix), raw_path
    segment = raw_path[len(prefix) : -len(suffix)]
    assert not set("/?#") & set(segment)
    assert unquote(segment) == identifier
    assert api.last.url.query == b""


@pytest.mark.parametrize("dots", ["..", "."])
def test_a_dot_id_cannot_climb_out_of_its_path(
    client: LeadterraClient, api: FakeLeadterra, dots: str
) -> None:
    """Known bug: see the report. httpx removes dot segments that quote() leaves alone."""
    try:
        client.complete_followup(dots)
    except errors.InvalidRequest:
        return  # refusing the id outright is an acceptable fix
    except errors.NotFound:
        pass  # the fake knows no path the id escaped to
    path = api.last.url.raw_path.decode()
    segments = path.split("/")
    assert segments[:4] == ["", "v1", "sdr", "followups"] and len(segments) == 6, (
        f"BUG worker/leadterra/client.py:350-354 (_seg): id {dots!r} is sent as POST {path}; "
        "quote() keeps '.', and httpx removes dot segments, so the id leaves its path "
        "segment. Fix: reject '', '.' and '..' ids (or send the dots as %2E)."
    )


# -- status mapping -----------------------------------------------------------------------------


def test_a_409_on_assign_means_already_assigned_not_an_error(
    client: LeadterraClient, api: FakeLeadterra, observer: RecordingObserver
) -> None:
    api.answers["/v1/replies/rpl_1/assign"] = answer(409, {"error": {"code": "already_forwarded"}})
    outcome = client.assign_reply("rpl_1", "sdr_1")
    assert outcome == AssignOutcome(already_assigned=True, result=None)
    assert observer.calls[-1] == ("after", "POST /v1/replies/{id}/assign", "409", None)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.complete_followup("fu_1"),
        lambda c: c.skip_followup("fu_1", "r"),
        lambda c: c.reschedule_followup("fu_1", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_409_outside_assign_is_a_permanent_conflict(
    client: LeadterraClient, api: FakeLeadterra, call: Callable[[Any], Any]
) -> None:
    api.answers.update(
        {f"/v1/sdr/followups/fu_1/{action}": answer(409, {"code": "not_pending"})
         for action in ("complete", "skip", "reschedule")}
    )  # fmt: skip
    with pytest.raises(errors.Conflict) as caught:
        call(client)
    assert caught.value.status == 409
    assert caught.value.code == "not_pending"
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "body",
    [
        {"icpFailed": True, "error": "icp_failed"},
        {"error": {"icpFailed": True, "message": "Contact fails ICP"}},
        {"error": {"details": {"icpFailed": True}}},
        {"data": {"icpFailed": True}},
    ],
)
def test_a_400_with_icp_failed_anywhere_is_an_icp_rejection(
    client: LeadterraClient, api: FakeLeadterra, body: dict[str, Any]
) -> None:
    api.answers["/v1/replies/rpl_1/assign"] = answer(400, body)
    with pytest.raises(errors.IcpRejected) as caught:
        client.assign_reply("rpl_1", "sdr_1", skip_icp_check=False)
    assert isinstance(caught.value, errors.PermanentError)
    assert caught.value.retryable is False
    assert (caught.value.status, caught.value.endpoint) == (400, "POST /v1/replies/{id}/assign")


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "invalid_request", "message": "category must be A, B or C"}},
        {"icpFailed": False},
        {"icpFailed": "true"},
        "<html>Bad Request</html>",
        None,
    ],
)
def test_a_400_without_icp_failed_true_is_an_invalid_request(
    client: LeadterraClient, api: FakeLeadterra, body: Any
) -> None:
    api.answers["/v1/replies/rpl_1/assign"] = answer(400, body)
    with pytest.raises(errors.InvalidRequest) as caught:
        client.assign_reply("rpl_1", "sdr_1")
    assert not isinstance(caught.value, errors.IcpRejected)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, errors.InvalidRequest),
        (401, errors.AuthError),
        (403, errors.AuthError),
        (404, errors.NotFound),
        (405, errors.InvalidRequest),
        (409, errors.Conflict),
        (410, errors.InvalidRequest),
        (418, errors.InvalidRequest),
        (422, errors.InvalidRequest),
    ],
)
def test_4xx_statuses_map_to_permanent_errors(
    client: LeadterraClient, api: FakeLeadterra, status: int, error_type: type[Exception]
) -> None:
    api.answers["/v1/sdrs"] = answer(status, {"error": {"code": "x", "message": "nope"}})
    with pytest.raises(errors.PermanentError) as caught:
        client.list_sdrs()
    assert type(caught.value) is error_type
    assert caught.value.retryable is False
    assert not isinstance(caught.value, errors.RetryableError)
    assert (caught.value.status, caught.value.endpoint) == (status, "GET /v1/sdrs")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_statuses_are_retryable_server_errors(
    client: LeadterraClient, api: FakeLeadterra, status: int
) -> None:
    api.answers["/v1/sdr/followups/due"] = answer(status, "upstream exploded")
    with pytest.raises(errors.ServerError) as caught:
        client.due_followups()
    assert isinstance(caught.value, errors.RetryableError)
    assert not isinstance(caught.value, errors.PermanentError)
    assert caught.value.retryable is True
    assert caught.value.status == status


def test_a_429_with_retry_after_seconds_is_rate_limited_with_that_wait(
    client: LeadterraClient, api: FakeLeadterra, observer: RecordingObserver
) -> None:
    api.answers["/v1/sdrs"] = answer(429, {"error": "rate_limited"}, headers={"Retry-After": "7"})
    with pytest.raises(errors.RateLimited) as caught:
        client.list_sdrs()
    assert caught.value.retry_after == 7.0
    assert caught.value.retryable is True
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert observer.calls[-1] == ("after", "GET /v1/sdrs", "429", 7.0)


def test_a_429_with_an_http_date_waits_until_that_date(
    client: LeadterraClient, api: FakeLeadterra, observer: RecordingObserver
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    api.answers["/v1/sdrs"] = answer(429, None, headers={"Retry-After": when})
    with pytest.raises(errors.RateLimited) as caught:
        client.list_sdrs()
    assert caught.value.retry_after is not None
    assert 115 <= caught.value.retry_after <= 121
    retry_after = observer.calls[-1][3]
    assert retry_after is not None and 115 <= retry_after <= 121


def test_a_429_without_retry_after_leaves_the_wait_to_the_backoff(
    client: LeadterraClient, api: FakeLeadterra, observer: RecordingObserver
) -> None:
    api.answers["/v1/sdrs"] = answer(429, {"message": "slow down"})
    with pytest.raises(errors.RateLimited) as caught:
        client.list_sdrs()
    assert caught.value.retry_after is None
    assert observer.calls[-1] == ("after", "GET /v1/sdrs", "429", None)


NOW = datetime(2026, 7, 5, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Sun, 05 Jul 2026 14:01:30 GMT", 90.0),
        ("Sun, 05 Jul 2026 13:00:00 GMT", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(
    header: str | None, expected: float | None
) -> None:
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize(
    ("exception", "status"),
    [
        (httpx.ConnectTimeout("connect timed out"), "timeout"),
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.PoolTimeout("pool exhausted"), "timeout"),
        (httpx.ConnectError("connection refused"), "connection_error"),
        (httpx.RemoteProtocolError("server disconnected"), "connection_error"),
        (httpx.ReadError("connection reset"), "connection_error"),
    ],
)
def test_timeouts_and_connection_errors_are_retryable_transport_failures(
    client: LeadterraClient,
    api: FakeLeadterra,
    observer: RecordingObserver,
    exception: Exception,
    status: str,
) -> None:
    api.answers["/v1/replies/rpl_1/assign"] = exception
    with pytest.raises(errors.TransportFailure) as caught:
        client.assign_reply("rpl_1", "sdr_1")
    assert isinstance(caught.value, errors.RetryableError)
    assert caught.value.retryable is True
    assert caught.value.endpoint == "POST /v1/replies/{id}/assign"
    assert caught.value.__cause__ is None
    assert observer.calls == [
        ("before", "POST /v1/replies/{id}/assign"),
        ("after", "POST /v1/replies/{id}/assign", status, None),
    ]


# -- error bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"error": {"code": "invalid_request", "message": "sdrId is required"}},
         "invalid_request", "sdrId is required"),
        ({"code": "campaign_not_found", "message": "No such campaign"},
         "campaign_not_found", "No such campaign"),
        ({"error": "authentication_failed"}, "authentication_failed", "HTTP 422"),
        ({"error": "authentication_failed", "message": "Bad key"},
         "authentication_failed", "Bad key"),
        ({"error": {"code": "invalid_request"}, "message": "top-level text"},
         "invalid_request", "top-level text"),
        ({"errors": [{"field": "category"}]}, None, "HTTP 422"),
        ("<html><body>Unprocessable</body></html>", None, "HTTP 422"),
        (b"\xff\xfe not even utf-8", None, "HTTP 422"),
        ([1, 2, 3], None, "HTTP 422"),
        (None, None, "HTTP 422"),
    ],
)  # fmt: skip
def test_error_bodies_in_every_shape_give_a_code_and_a_message(
    client: LeadterraClient, api: FakeLeadterra, body: Any, code: str | None, message: str
) -> None:
    api.answers["/v1/sdrs"] = answer(422, body)
    with pytest.raises(errors.InvalidRequest) as caught:
        client.list_sdrs()
    assert caught.value.code == code
    assert str(caught.value) == f"GET /v1/sdrs: 422 {message}"


def test_a_long_error_message_is_cut_to_200_characters(
    client: LeadterraClient, api: FakeLeadterra
) -> None:
    api.answers["/v1/sdrs"] = answer(400, {"message": "x" * 5000, "code": "c" * 500})
    with pytest.raises(errors.InvalidRequest) as caught:
        client.list_sdrs()
    assert str(caught.value) == "GET /v1/sdrs: 400 " + "x" * 200
    assert caught.value.code == "c" * 60


# -- the key never leaks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer_",
    [
        answer(400, {"error": {"icpFailed": True}}),
        answer(401, {"error": {"code": "authentication_failed", "message": "Invalid key"}}),
        answer(403, "forbidden"),
        answer(404, {"error": "not_found"}),
        answer(409, {"code": "conflict"}),
        answer(422, {"errors": []}),
        answer(429, None, headers={"Retry-After": "1"}),
        answer(500, "oops"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
    ids=["400", "401", "403", "404", "409", "422", "429", "500", "connect", "timeout"],
)
def test_the_api_key_never_appears_in_an_error(
    client: LeadterraClient, api: FakeLeadterra, answer_: Answer
) -> None:
    api.answers["/v1/sdr/followups/fu_1/complete"] = answer_
    sdr_client = client.with_key(SecretStr(SDR_KEY))
    for leadterra, key in ((client, KEY), (sdr_client, SDR_KEY)):
        with pytest.raises(errors.ServiceError) as caught:
            leadterra.complete_followup("fu_1")
        error = caught.value
        assert api.last.headers["authorization"] == f"Bearer {key}"  # the key was sent...
        rendered = [str(error), repr(error), *map(str, error.args), *map(str, vars(error).values())]
        for text in rendered:  # ...but never echoed back
            assert KEY not in text
            assert SDR_KEY not in text
            assert "SECRET123" not in text


# -- the observer -------------------------------------------------------------------------------


def test_the_observer_sees_each_call_by_endpoint_template_and_status(
    client: LeadterraClient, api: FakeLeadterra, observer: RecordingObserver
) -> None:
    # request.url.path is the decoded path, so the quoted id "fu/9" routes as two segments
    api.answers["/v1/sdr/followups/fu/9/skip"] = answer(404, {"error": "not_found"})
    client.assign_reply("rpl_1", "sdr_1")
    client.complete_followup("fu_2")
    client.inbox()
    with pytest.raises(errors.NotFound):
        client.skip_followup("fu/9", "gone")  # quoted path, same template

    assert observer.calls == [
        ("before", "POST /v1/replies/{id}/assign"),
        ("after", "POST /v1/replies/{id}/assign", "200", None),
        ("before", "POST /v1/sdr/followups/{id}/complete"),
        ("after", "POST /v1/sdr/followups/{id}/complete", "200", None),
        ("before", "GET /v1/sdr/inbox"),
        ("after", "GET /v1/sdr/inbox", "200", None),
        ("before", "POST /v1/sdr/followups/{id}/skip"),
        ("after", "POST /v1/sdr/followups/{id}/skip", "404", None),
    ]


@pytest.mark.parametrize("status", [500, 503])
def test_the_observer_records_server_errors_as_their_status(
    client: LeadterraClient, api: FakeLeadterra, observer: RecordingObserver, status: int
) -> None:
    api.answers["/v1/sdr/gmail/status"] = answer(status)
    with pytest.raises(errors.ServerError):
        client.gmail_status()
    assert observer.calls[-1] == ("after", "GET /v1/sdr/gmail/status", str(status), None)


def test_the_observer_can_block_a_call_before_it_is_sent(api: FakeLeadterra) -> None:
    class Refuse:
        def before_call(self, endpoint: str) -> None:
            raise errors.RateLimited(f"{endpoint}: local budget spent", retry_after=1.0)

        def after_call(self, *args: Any) -> None:
            raise AssertionError("after_call must not run for a call never made")

    leadterra = api.client(observer=Refuse())
    with pytest.raises(errors.RateLimited):
        leadterra.list_sdrs()
    assert api.calls == []
