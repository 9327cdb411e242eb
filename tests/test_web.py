"""The public app in-process (TestClient, fakeredis): the webhook's answers and /healthz, with
the admin app beside it for /readyz and /metrics."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from tests.conftest import WEBHOOK_SECRET, make_settings
from worker.embedded_redis import free_port
from worker.keys import Keys
from worker.metrics import Metrics
from worker.receiver.admin import create_admin_app
from worker.receiver.web import create_app

KEYS = Keys("test:")


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def body_for(reply_id: str = "rpl_1", classification: str = "interested", **extra: object) -> bytes:
    reply = {
        "id": reply_id,
        "email": "lead@acme.io",
        "campaignId": "camp_1",
        "classification": classification,
        "receivedAt": "2025-06-11T09:14:32Z",
        "threadSnippet": "Sounds great, let's talk",
    }
    envelope = {
        "event": "reply.received",
        "timestamp": iso(time.time()),
        "data": {"reply": reply},
        **extra,
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def client(server: fakeredis.FakeServer, metrics: Metrics) -> Iterator[TestClient]:
    app = create_app(
        make_settings(leadterra_webhook_secret_previous="whsec_old_9876543210"),
        client=fakeredis.FakeAsyncRedis(server=server),
        metrics=metrics,
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin(server: fakeredis.FakeServer, metrics: Metrics) -> Iterator[TestClient]:
    app = create_admin_app(
        make_settings(), client=fakeredis.FakeAsyncRedis(server=server), metrics=metrics
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def sync(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=server)


def post(client: TestClient, body: bytes, signature: str | None = None, **headers: str) -> object:
    sent = {"content-type": "application/json", **headers}
    if signature is not None:
        sent["x-leadterra-signature"] = signature
    return client.post("/webhooks/leadterra", content=body, headers=sent)


def queued(sync: fakeredis.FakeRedis) -> list[dict]:
    return [json.loads(m) for m in sync.lrange(KEYS.queue("assign"), 0, -1)]


def test_a_signed_interested_reply_is_enqueued_with_202(client, sync) -> None:
    body = body_for()
    response = post(client, body, sign(body))
    assert response.status_code == 202
    assert response.json() == {"status": "enqueued", "reply_id": "rpl_1"}
    [message] = queued(sync)
    assert message["headers"]["task"] == "leadrouter.assign_reply"
    args = json.loads(base64.b64decode(message["body"]))[0][0]
    assert args["id"] == "rpl_1"
    assert "threadSnippet" not in args
    assert sync.exists(KEYS.seen("rpl_1"))
    assert sync.ttl(KEYS.seen("rpl_1")) >= 3 * 24 * 3600


def test_a_duplicate_delivery_is_200_and_enqueues_nothing_more(client, sync) -> None:
    body = body_for()
    assert post(client, body, sign(body)).status_code == 202
    again = post(client, body, sign(body))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(queued(sync)) == 1


@pytest.mark.parametrize(
    "classification",
    ["not_interested", "out_of_office", "bounce", "unsubscribe", "referral", "brand_new_value"],
)
def test_a_non_positive_reply_is_acknowledged_and_ignored(client, sync, classification) -> None:
    body = body_for(classification=classification)
    response = post(client, body, sign(body))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert queued(sync) == []
    assert not sync.exists(KEYS.seen("rpl_1"))


def test_an_unknown_event_is_acknowledged_and_ignored(client, sync) -> None:
    body = json.dumps({"event": "message.sent", "data": {"messageId": "m1"}}).encode()
    response = post(client, body, sign(body))
    assert response.status_code == 200
    assert queued(sync) == []


@pytest.mark.parametrize("signature", [None, "", "nope", "sha256=" + "0" * 64])
def test_a_missing_or_bad_signature_is_401_and_changes_nothing(client, sync, signature) -> None:
    response = post(client, body_for(), signature)
    assert response.status_code == 401
    assert queued(sync) == []
    assert sync.dbsize() == 0


def test_a_signature_under_another_secret_is_401(client, sync) -> None:
    body = body_for()
    assert post(client, body, sign(body, "some-other-secret")).status_code == 401
    assert queued(sync) == []


def test_base64_and_prefixed_signatures_are_accepted(client, sync) -> None:
    first, second = body_for("r1"), body_for("r2")
    digest = hmac.new(WEBHOOK_SECRET.encode(), first, hashlib.sha256).digest()
    assert post(client, first, base64.b64encode(digest).decode()).status_code == 202
    assert post(client, second, "sha256=" + sign(second)).status_code == 202
    assert len(queued(sync)) == 2


def test_the_previous_secret_is_accepted_during_a_rotation(client, sync) -> None:
    body = body_for()
    assert post(client, body, sign(body, "whsec_old_9876543210")).status_code == 202


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"[]", 422),
        (b'{"event":"reply.received","data":{"reply":{}}}', 422),
    ],
)
def test_a_signed_but_malformed_body_is_400_or_422(client, sync, body, status) -> None:
    response = post(client, body, sign(body))
    assert response.status_code == status
    assert queued(sync) == []


def test_a_body_over_the_cap_is_413_before_it_is_read(client, sync) -> None:
    body = body_for(padding="x" * (256 * 1024))
    response = post(client, body, sign(body))
    assert response.status_code == 413
    assert queued(sync) == []


def test_a_lying_content_length_still_hits_the_cap(client, sync) -> None:
    body = body_for(padding="x" * (300 * 1024))

    def chunks():
        for i in range(0, len(body), 16384):
            yield body[i : i + 16384]

    response = client.post(
        "/webhooks/leadterra", content=chunks(), headers={"x-leadterra-signature": sign(body)}
    )
    assert response.status_code == 413
    assert queued(sync) == []


def test_redis_unreachable_is_503_so_leadterra_retries() -> None:
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    app = create_app(make_settings(), client=dead)
    body = body_for()
    with TestClient(app) as test_client:
        response = post(test_client, body, sign(body))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_the_log_line_carries_ids_and_duration_but_no_secret_or_text(client) -> None:
    from structlog.testing import capture_logs

    body = body_for()
    with capture_logs() as logs:
        post(client, body, sign(body))
    [event] = [e for e in logs if e["event"] == "webhook.received"]
    assert event["reply_id"] == "rpl_1"
    assert event["outcome"] == "enqueued"
    assert event["status"] == 202
    assert event["duration_ms"] >= 0
    flat = json.dumps(logs)
    assert WEBHOOK_SECRET not in flat
    assert sign(body) not in flat
    assert "Sounds great" not in flat


def test_healthz_answers_while_the_process_is_up(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_503_with_a_reason_until_a_worker_consumes(admin, sync) -> None:
    response = admin.get("/readyz")
    assert response.status_code == 503
    assert "no worker" in response.json()["reason"]
    from worker.health import stamp_heartbeat

    stamp_heartbeat(sync, KEYS, "w1")
    assert admin.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/readyz", "/openapi.json"])
def test_operator_pages_are_not_on_the_public_app(client, admin, path) -> None:
    assert client.get(path).status_code == 404
    assert admin.get(path).status_code in (200, 503)


def test_metrics_count_webhooks_by_outcome(client, admin) -> None:
    body = body_for()
    post(client, body, sign(body))
    post(client, body, sign(body))
    post(client, body, "bad")
    text = admin.get("/metrics").text
    assert 'leadrouter_webhooks_total{outcome="enqueued"} 1.0' in text
    assert 'leadrouter_webhooks_total{outcome="duplicate"} 1.0' in text
    assert 'leadrouter_webhooks_total{outcome="bad_signature"} 1.0' in text
    assert 'leadrouter_queue_messages{queue="assign"} 1.0' in text


# -- the signed timestamp: stale deliveries refused, a fast clock only logged ------------------

DAY = 24 * 3600


def test_a_delivery_older_than_the_tolerance_is_200_stale_and_writes_nothing(
    client, admin, sync
) -> None:
    """A captured delivery replayed after its dedupe marker expired: nothing is enqueued."""
    body = body_for(timestamp=iso(time.time() - DAY - 3600))
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        response = post(client, body, sign(body))
    assert (response.status_code, response.json()) == (
        200,
        {"status": "stale", "reply_id": "rpl_1"},
    )
    assert queued(sync) == []
    assert sync.dbsize() == 0  # no dedupe marker either
    [event] = [e for e in logs if e["event"] == "webhook.received"]
    assert (event["log_level"], event["outcome"], event["reply_id"]) == (
        "warning",
        "stale",
        "rpl_1",
    )
    assert DAY + 3600 <= event["age_s"] < DAY + 3700
    assert 'leadrouter_webhooks_total{outcome="stale"} 1.0' in admin.get("/metrics").text


@pytest.mark.parametrize("event", ["reply.received", "message.sent"])
def test_stale_applies_to_every_event_and_classification(client, sync, event) -> None:
    envelope = {"event": event, "timestamp": iso(time.time() - 2 * DAY), "data": {"id": "m1"}}
    body = json.dumps(envelope).encode()
    assert post(client, body, sign(body)).json()["status"] == "stale"
    assert sync.dbsize() == 0


def test_a_delivery_just_inside_the_tolerance_is_enqueued(client, sync) -> None:
    body = body_for(timestamp=iso(time.time() - DAY + 120))
    assert post(client, body, sign(body)).status_code == 202
    assert len(queued(sync)) == 1


@pytest.mark.parametrize(("offset", "skew_logged"), [(30, False), (61 + 5, True), (30 * DAY, True)])
def test_a_timestamp_ahead_of_our_clock_is_accepted_and_logged_past_a_minute(
    client, sync, offset, skew_logged
) -> None:
    from structlog.testing import capture_logs

    body = body_for(timestamp=iso(time.time() + offset))
    with capture_logs() as logs:
        response = post(client, body, sign(body))
    assert response.status_code == 202
    skews = [e for e in logs if e["event"] == "webhook.clock_skew"]
    assert bool(skews) == skew_logged
    if skews:
        assert skews[0]["log_level"] == "warning"
        assert skews[0]["reply_id"] == "rpl_1"
        assert skews[0]["ahead_s"] >= offset - 5


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (None, "missing"),
        ("yesterday", "unreadable"),
        ("", "unreadable"),
        (1760000000, "unreadable"),
        ("2025-13-45T99:00:00Z", "unreadable"),
        ("9" * 100, "unreadable"),
    ],
)
def test_a_missing_or_unreadable_timestamp_is_accepted_and_logged(
    client, sync, timestamp, reason
) -> None:
    from structlog.testing import capture_logs

    envelope = json.loads(body_for())
    if timestamp is None:
        del envelope["timestamp"]
    else:
        envelope["timestamp"] = timestamp
    body = json.dumps(envelope).encode()
    with capture_logs() as logs:
        response = post(client, body, sign(body))
    assert response.status_code == 202
    [event] = [e for e in logs if e["event"] == "webhook.no_timestamp"]
    assert (event["reason"], event["reply_id"]) == (reason, "rpl_1")


def test_the_tolerance_is_a_setting(server, sync) -> None:
    app = create_app(
        make_settings(webhook_tolerance_seconds=2 * DAY),
        client=fakeredis.FakeAsyncRedis(server=server),
    )
    with TestClient(app) as test_client:
        fresh = body_for("rpl_a", timestamp=iso(time.time() - DAY - 3600))
        stale = body_for("rpl_b", timestamp=iso(time.time() - 2 * DAY - 60))
        assert post(test_client, fresh, sign(fresh)).status_code == 202
        assert post(test_client, stale, sign(stale)).json()["status"] == "stale"


@pytest.mark.parametrize(
    ("body", "signed"),
    [
        (body_for("rpl_same"), True),
        (body_for("rpl_same"), False),
        (body_for("rpl_other", classification="not_interested"), True),
        (b"{not json", True),
    ],
)
def test_the_webhook_answers_alike_straight_and_through_starlettes_stack(
    server: fakeredis.FakeServer, body: bytes, signed: bool
) -> None:
    """PublicApp hands the webhook's POST straight to its handler; with that turned off, the
    same requests take Starlette's stack: the same answers, bodies and headers."""
    answers = []
    for straight in (True, False):
        app = create_app(
            make_settings(), client=fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        )
        if not straight:
            app.webhook = None
        with TestClient(app) as test_client:
            response = post(test_client, body, sign(body) if signed else None)
        answers.append((response.status_code, response.content, sorted(response.headers.items())))
    assert answers[0] == answers[1]


def test_a_handler_that_raises_answers_500_as_starlette_does(server: fakeredis.FakeServer) -> None:
    app = create_app(make_settings(), client=fakeredis.FakeAsyncRedis(server=server))

    async def broken(_: object) -> None:
        raise RuntimeError("a bug")

    app.webhook = broken
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = post(test_client, body_for())
    assert (response.status_code, response.text) == (500, "Internal Server Error")
