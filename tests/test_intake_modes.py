"""INTAKE=webhooks|polling and the sweep's settings: what `web` serves and needs in each mode,
the settings' rules, the gauges of the last webhook and the last sweep, and the client's
`list_replies` across envelopes."""

from __future__ import annotations

import time
from pathlib import Path

import fakeredis
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from starlette.testclient import TestClient

from config.settings import ConfigError, load_settings
from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from tests.test_admin import run_web, web_env
from tests.test_web import body_for, post, sign
from worker import errors
from worker.keys import Keys
from worker.leadterra.client import LeadterraClient
from worker.leadterra.models import replies_page
from worker.metrics import Metrics
from worker.receiver.admin import create_admin_app
from worker.receiver.web import create_app

KEYS = Keys("test:")


# -- settings ------------------------------------------------------------------------------------


def test_the_sweep_settings_have_the_issues_defaults() -> None:
    settings = make_settings()
    assert settings.intake == "webhooks"
    assert settings.reconcile_seconds == 300
    assert settings.reconcile_overlap_seconds == 900
    assert settings.reconcile_max_pages == 50
    assert settings.reconcile_lookback_hours == 72


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"reconcile_seconds": 14}, r"RECONCILE_SECONDS must be 0 \(off\) or at least 15"),
        ({"reconcile_seconds": -1}, "RECONCILE_SECONDS"),
        ({"intake": "polling", "reconcile_seconds": 0}, "INTAKE=polling needs the sweep"),
        ({"intake": "email"}, "INTAKE"),
        ({"reconcile_max_pages": 0}, "RECONCILE_MAX_PAGES"),
        ({"reconcile_lookback_hours": 0}, "RECONCILE_LOOKBACK_HOURS"),
        ({"reconcile_lookback_hours": 24 * 8}, "must not exceed DEDUPE_TTL_SECONDS"),
    ],
)
def test_bad_sweep_settings_are_refused_by_name(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_env_file=None, **values)


def test_fifteen_seconds_and_zero_are_both_accepted() -> None:
    assert make_settings(reconcile_seconds=15).reconcile_seconds == 15
    assert make_settings(reconcile_seconds=0).reconcile_seconds == 0


# -- what web serves in each mode ---------------------------------------------------------------


def test_polling_mode_needs_no_secret_and_has_no_webhook_route() -> None:
    settings = make_settings(intake="polling", leadterra_webhook_secret=None)
    app = create_app(settings, client=fakeredis.FakeAsyncRedis())
    with TestClient(app) as client:
        body = body_for("rpl_1")
        assert post(client, body, sign(body)).status_code == 404
        assert client.get("/healthz").status_code == 200


def test_webhooks_mode_still_needs_the_secret() -> None:
    settings = make_settings(leadterra_webhook_secret=None)
    with pytest.raises(ConfigError, match="LEADTERRA_WEBHOOK_SECRET is required"):
        create_app(settings, client=fakeredis.FakeAsyncRedis())


@pytest.mark.integration
def test_web_without_a_secret_in_webhooks_mode_stops_with_one_line(redis_server, tmp_path) -> None:
    env = web_env(redis_server, INTAKE="webhooks")
    del env["LEADTERRA_WEBHOOK_SECRET"]
    result = run_web(env, Path(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "leadrouter: configuration error: LEADTERRA_WEBHOOK_SECRET is required here but not set"
    )


# -- the gauges ---------------------------------------------------------------------------------


def gauges(server: fakeredis.FakeServer) -> dict[str, float]:
    app = create_admin_app(
        make_settings(), client=fakeredis.FakeAsyncRedis(server=server), metrics=Metrics()
    )
    with TestClient(app) as client:
        page = client.get("/metrics").text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name.endswith("_timestamp_seconds")
    }


def test_the_last_webhook_and_the_last_sweep_are_exported_once_known(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    assert gauges(fake_server) == {}  # absent, not 0, before the first of each
    before = time.time()
    web = create_app(make_settings(), client=fakeredis.FakeAsyncRedis(server=fake_server))
    with TestClient(web) as client:
        body = body_for("rpl_1", classification="not_interested")  # ignored ones count too
        assert post(client, body, sign(body)).status_code == 200
    fake_redis.set(KEYS.reconcile_last_success, "1800000000.5")
    found = gauges(fake_server)
    assert found["leadrouter_reconcile_last_success_timestamp_seconds"] == 1800000000.5
    assert before <= found["leadrouter_last_webhook_received_timestamp_seconds"] <= time.time()


def test_a_positive_webhook_stamps_the_last_webhook_in_its_enqueue_call(
    fake_server: fakeredis.FakeServer, fake_redis: fakeredis.FakeRedis
) -> None:
    web = create_app(make_settings(), client=fakeredis.FakeAsyncRedis(server=fake_server))
    with TestClient(web) as client:
        for _ in range(2):  # the duplicate stamps it too
            fake_redis.delete(KEYS.last_webhook)
            body = body_for("rpl_1")
            post(client, body, sign(body))
            assert fake_redis.get(KEYS.last_webhook) is not None


# -- the client -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "more"),
    [
        ([{"id": "rpl_1"}], None),
        ({"data": [{"id": "rpl_1"}]}, None),
        (
            {"replies": [{"id": "rpl_1"}], "pagination": {"total": 51, "page": 1, "perPage": 50}},
            True,
        ),
        (
            {"replies": [{"id": "rpl_1"}], "pagination": {"total": 50, "page": 1, "perPage": 50}},
            False,
        ),
        ({"data": {"replies": [{"id": "rpl_1"}], "hasMore": True}}, True),
        ({"data": [{"id": "rpl_1"}], "pagination": "garbled"}, None),
    ],
)
def test_every_envelope_gives_the_replies_and_what_it_says_of_the_next_page(
    body: object, more: bool | None
) -> None:
    page = replies_page(body, 1, 50)
    assert [r.id for r in page.replies] == ["rpl_1"] and page.more is more


def test_list_replies_sends_page_per_page_and_campaign() -> None:
    fake = FakeLeadterra()
    fake.replies = [
        {"id": "rpl_1", "campaignId": "camp_1", "receivedAt": "2026-11-01T10:00:00.250Z"},
        {"id": "rpl_2", "campaignId": "camp_2", "receivedAt": "2026-11-01T09:00:00Z"},
    ]
    client = LeadterraClient(
        "http://leadterra.test", SecretStr(fake.workspace_key), transport=fake.transport()
    )
    page = client.list_replies(2, 1)
    assert fake.last.params == {"page": "2", "perPage": "1"}
    assert [r.id for r in page.replies] == ["rpl_2"] and page.more is False
    page = client.list_replies(1, 50, campaign_id="camp_1")
    assert fake.last.params["campaignId"] == "camp_1"
    [only] = page.replies
    assert only.received_at is not None and only.received_at.microsecond == 250_000
    assert only.received_at.utcoffset() is not None


def test_an_unreadable_item_is_counted_not_fatal() -> None:
    page = replies_page([{"id": "rpl_1"}, {"id": 7}, "text", {"noid": True}], 1, 50)
    assert [r.id for r in page.replies] == ["rpl_1"] and page.unreadable == 3


def test_list_replies_maps_errors_like_every_call() -> None:
    fake = FakeLeadterra()
    fake.answers["/v1/replies"] = httpx.Response(404, json={"error": {"code": "not_found"}})
    with pytest.raises(errors.NotFound):
        fake.client().list_replies(1, 50, campaign_id="camp_nope")
