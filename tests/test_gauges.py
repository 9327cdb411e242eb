"""worker/gauges.py: what the web's /metrics computes at scrape time from Redis and its Settings
(readiness, the SDRs inside their working hours, the intake mode)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import fakeredis
import pytest
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.test_metrics import KEYS, Samples, export
from worker.gauges import Scrape
from worker.health import stamp_heartbeat
from worker.metrics import Metrics
from worker.routing.policy import HoursBook, RosterSource

#: a Monday, 08:00 UTC: 10:00 in Paris (at work 09-17), 04:00 in New York (not yet)
MONDAY_8_UTC = datetime(2026, 6, 29, 8, 0, tzinfo=UTC)
PARIS = {"timezone": "Europe/Paris", "days": "mon-fri", "start": "09:00", "end": "17:00"}
NEW_YORK = {"timezone": "America/New_York", "days": "mon-fri", "start": "09:00", "end": "17:00"}


def scraped(server: fakeredis.FakeServer, **settings) -> Samples:
    metrics = Metrics("web:1")
    metrics.scrape = Scrape(
        make_settings(key_prefix=KEYS.prefix, **settings), clock=lambda: MONDAY_8_UTC
    )
    return export(metrics, server)


AT_WORK = ("leadrouter_sdrs_at_work", ())


def test_ready_follows_the_canary_like_readyz(fake_server, fake_redis) -> None:
    assert scraped(fake_server)[("leadrouter_ready", ())] == 0.0  # nobody consumed yet
    stamp_heartbeat(fake_redis, KEYS, "w1")
    assert scraped(fake_server)[("leadrouter_ready", ())] == 1.0
    fake_redis.set(KEYS.heartbeat, f"{time.time() - 120}|w1")
    assert scraped(fake_server, ready_heartbeat_seconds=60)[("leadrouter_ready", ())] == 0.0


def test_with_redis_down_ready_is_0_and_the_settings_gauges_stay(fake_server) -> None:
    fake_server.connected = False
    samples = scraped(fake_server, intake="polling")
    assert samples[("leadrouter_ready", ())] == 0.0
    assert samples[("leadrouter_redis_up", ())] == 0.0
    [(labels, value)] = [(k[1], v) for k, v in samples.items() if k[0] == "leadrouter_info"]
    assert dict(labels)["intake"] == "polling" and value == 1.0
    assert AT_WORK not in samples


def test_sdrs_at_work_counts_each_known_sdr_in_its_own_zone(fake_server, fake_redis) -> None:
    fake_redis.set(KEYS.sdr_cache, json.dumps([["sdr_paris", True], ["sdr_ny", False]]))
    fake_redis.hset(KEYS.rotation_credit, mapping={"sdr_paris": 1.0, "sdr_free": 0.5})
    hours = {"sdr_paris": PARIS, "default": NEW_YORK}
    # sdr_paris at work; sdr_ny and sdr_free take the default (New York): not yet
    assert scraped(fake_server, working_hours=hours)[AT_WORK] == 1.0
    fake_redis.delete(KEYS.sdr_cache)  # the cache expired: the rotation's members remain
    assert scraped(fake_server, working_hours=hours)[AT_WORK] == 1.0
    everyone_at_work = {"sdr_paris": PARIS}  # no default: the others are always at work
    assert scraped(fake_server, working_hours=everyone_at_work)[AT_WORK] == 2.0


def test_before_any_sdr_is_known_the_default_hours_stand_for_one(fake_server) -> None:
    assert scraped(fake_server, working_hours={"default": PARIS})[AT_WORK] == 1.0
    assert scraped(fake_server, working_hours={"default": NEW_YORK})[AT_WORK] == 0.0
    assert scraped(fake_server)[AT_WORK] == 1.0  # no hours at all: always at work


def test_the_roster_hours_win_and_its_sdrs_count(fake_server, tmp_path) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text(
        '[sdr.ana]\ntimezone = "Europe/Paris"\n'
        'working_hours = { days = "mon-fri", start = "09:00", end = "17:00" }\n'
        '[sdr.bob]\ntimezone = "America/New_York"\n'
        'working_hours = { days = "mon-fri", start = "09:00", end = "17:00" }\n'
    )
    samples = scraped(fake_server, roster_file=roster, working_hours={"ana": NEW_YORK})
    assert samples[AT_WORK] == 1.0  # ana by the roster's Paris hours, bob not yet


def test_an_unreadable_roster_leaves_the_gauge_out_and_says_why(fake_server, tmp_path) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text("[sdr.ana]\nweight = -1\n")
    with capture_logs() as logs:
        samples = scraped(fake_server, roster_file=roster)
    assert AT_WORK not in samples
    assert samples[("leadrouter_ready", ())] == 0.0  # the rest is served
    [event] = [e for e in logs if e["event"] == "metrics.hours_unreadable"]
    assert "weight" in event["error"]


def test_without_settings_there_is_no_working_hours_or_info_gauge(fake_server) -> None:
    samples = export(Metrics("web:1"), fake_server)
    assert AT_WORK not in samples
    assert not [k for k in samples if k[0] == "leadrouter_info"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (MONDAY_8_UTC, {"paris"}),
        (datetime(2026, 6, 29, 14, 0, tzinfo=UTC), {"paris", "ny"}),
        (datetime(2026, 6, 29, 22, 0, tzinfo=UTC), set()),
        (datetime(2026, 6, 27, 12, 0, tzinfo=UTC), set()),  # a Saturday
    ],
)
def test_the_hours_book_counts_who_is_at_work(moment: datetime, expected: set[str]) -> None:
    book = HoursBook.parse(RosterSource(None), {"paris": PARIS, "ny": NEW_YORK})
    assert book.at_work(["paris", "ny"], moment) == len(expected)
    assert book.named() == {"paris", "ny"}


def test_the_web_app_hands_its_settings_to_the_scrape(fake_server) -> None:
    from worker.receiver.web import create_app

    metrics = Metrics("web:1")
    settings = make_settings(key_prefix=KEYS.prefix, ready_heartbeat_seconds=7)
    client = fakeredis.FakeAsyncRedis(server=fake_server)
    create_app(settings, client=client, metrics=metrics)
    assert metrics.scrape.settings is settings and metrics.scrape.ready_after == 7
    asyncio.run(client.aclose())
