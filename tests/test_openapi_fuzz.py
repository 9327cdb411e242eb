"""Schema-driven fuzzing: schemathesis against the receiver's own /openapi.json, in-process.

Two passes. The first lets schemathesis generate every operation's requests from the document
(valid and invalid: missing or mangled headers, bodies of the wrong type) and checks each answer
against it: never a 5xx, only documented status codes, documented media types and schemas. The
generated signatures are never valid, so it also proves nothing reaches Redis unsigned. The second
signs schema-generated bodies with the real secret, so they get past the signature and exercise
the 202 / 200 ignored / 200 duplicate / 200 stale / 422 paths. The document covers both
listeners: operator paths go to the admin app, the rest to the public app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import WEBHOOK_SECRET, make_settings
from worker.health import stamp_heartbeat
from worker.keys import Keys
from worker.metrics import Metrics
from worker.receiver.admin import create_admin_app
from worker.receiver.openapi import OPENAPI
from worker.receiver.web import create_app
from worker.receiver.webhook import sent_at

SETTINGS = make_settings()
KEYS = Keys(SETTINGS.key_prefix)
QUEUE = KEYS.queue("assign")
WEBHOOK = ("/webhooks/leadterra", "POST")
ADMIN_PATHS = frozenset({"/readyz", "/metrics", "/openapi.json", "/api/{panel}"})
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def sync(server: fakeredis.FakeServer) -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis(server=server)
    stamp_heartbeat(client, KEYS, "fuzz")  # /readyz is then 200: any 5xx at all is a failure
    yield client
    client.close()


@pytest.fixture
def apps(server: fakeredis.FakeServer, sync: fakeredis.FakeRedis) -> Iterator[dict[str, Starlette]]:
    client, metrics = fakeredis.FakeAsyncRedis(server=server), Metrics()
    yield {
        "public": create_app(SETTINGS, client=client, metrics=metrics),
        "admin": create_admin_app(SETTINGS, client=client, metrics=metrics, sync_client=sync),
    }
    shutdown_lifespans()  # schemathesis keeps each app's lifespan running until told


@pytest.fixture
def app(apps: dict[str, Starlette]) -> Starlette:
    return apps["public"]


def app_for(apps: dict[str, Starlette], path: str) -> Starlette:
    return apps["admin" if path in ADMIN_PATHS else "public"]


# The document is loaded as data, and each test sends to its own app (`case.call(app=...)`):
# `schemathesis.pytest.from_fixture` reads `item._nodeid`, which pytest 9.2 no longer has.
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_fuzzed_document_is_the_one_served(apps) -> None:
    with TestClient(apps["admin"]) as client:
        assert client.get("/openapi.json").json() == OPENAPI


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented_and_never_5xx(case, apps, sync) -> None:
    response = case.call(app=app_for(apps, case.path))
    event(f"{case.meta.generation.mode.value} {case.meta.phase.name.value}: {response.status_code}")
    # The signatures schemathesis makes up are never valid, so its "positive" webhook cases get
    # a documented 401, not the 2xx positive_data_acceptance expects; every other check holds.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500
    if (case.path, case.method.upper()) == WEBHOOK:
        assert response.status_code in (401, 413)
        assert sync.llen(QUEUE) == 0
        assert list(sync.scan_iter(KEYS.seen("*"))) == []


def sign(raw: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def valid_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 200
        and value.isprintable()
        and value == value.strip()
    )


@FUZZ
@given(data=st.data())
def test_signed_schema_generated_deliveries_take_the_documented_paths(app, sync, data) -> None:
    operation = schema[WEBHOOK[0]][WEBHOOK[1]]
    case = data.draw(operation.as_strategy(), label="case")
    body: dict[str, Any] = case.body
    if data.draw(st.booleans(), label="steer towards a positive reply"):
        body["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body["event"] = "reply.received"
        reply = body["data"].setdefault("reply", {})
        reply["id"] = data.draw(st.from_regex(r"rpl_[a-z0-9]{1,8}", fullmatch=True), label="id")
        reply["classification"] = data.draw(
            st.sampled_from(["interested", "Interested ", "not_interested"]), label="class"
        )
    raw = json.dumps(body).encode()
    before = sync.llen(QUEUE)
    reply = body["data"].get("reply")
    reply_id = reply.get("id") if isinstance(reply, dict) else None
    seen_before = valid_id(reply_id) and sync.exists(KEYS.seen(reply_id))
    if isinstance(reply, dict):  # the receiver falls back to data's own field, as here
        classification = reply.get("classification", body["data"].get("classification"))

    response = case.call(app=app, headers={"X-Leadterra-Signature": sign(raw)}, data=raw)
    case.validate_response(response, checks=CONFORMANCE)
    answer = response.json()
    event(f"{response.status_code} {answer['status']}")

    if not 0 < len(body["event"]) <= 100:
        assert (response.status_code, answer["status"]) == (422, "malformed")
    elif (
        sent_at(body.get("timestamp")) or time.time()
    ) < time.time() - SETTINGS.webhook_tolerance_seconds:
        assert (response.status_code, answer["status"]) == (200, "stale")
    elif body["event"] != "reply.received":
        assert (response.status_code, answer["status"]) == (200, "ignored")
    elif not valid_id(reply_id):
        assert response.status_code in (200, 202, 422)  # an id may come from elsewhere in data
    elif str(classification).strip().lower() != "interested":
        assert (response.status_code, answer) == (
            200,
            {"status": "ignored", "reply_id": reply_id},
        )
    elif seen_before:
        assert (response.status_code, answer["status"]) == (200, "duplicate")
    else:
        assert (response.status_code, answer) == (
            202,
            {"status": "enqueued", "reply_id": reply_id},
        )
        again = case.call(app=app, headers={"X-Leadterra-Signature": sign(raw)}, data=raw)
        case.validate_response(again, checks=CONFORMANCE)
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    if response.status_code == 202:
        assert sync.llen(QUEUE) == before + 1
    else:
        assert sync.llen(QUEUE) == before
