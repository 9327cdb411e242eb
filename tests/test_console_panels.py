"""The console's panel functions (worker/console/) and the counters they read, on fakeredis.

The writers are exercised through the code that calls them (an assignment, a follow-up
decision, a Leadterra call, a webhook); the panels are read through `Reader`, and reading
never changes Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import make_settings
from tests.support.fake_leadterra import FakeLeadterra
from tests.test_web import body_for, post, sign
from worker.console import counters
from worker.console.decisions_panel import decisions_panel
from worker.console.followups_panel import followups_panel
from worker.console.health_panel import health_panel
from worker.console.intake_panel import intake_panel
from worker.console.panels import PANELS, Query, query_of, read_all
from worker.console.reader import Reader
from worker.console.rotation_panel import rotation_panel
from worker.console.sla_panel import percentile, sla_panel
from worker.console.stuck_panel import stuck_panel
from worker.followups.poll import route
from worker.jobs.deadletter import DeadLetter, DeadLetters
from worker.keys import Keys
from worker.leadterra.models import Sdr
from worker.metrics import Metrics
from worker.receiver.web import create_app
from worker.routing.assign import assign
from worker.routing.rotation import Policy, Rotation
from worker.runtime import Runtime
from worker.sla.ledger import ESCALATED, Attempt, Ledger

KEYS = Keys("test:")
NOW = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
DAY = 86400


@pytest.fixture
def make_reader(fake_redis: fakeredis.FakeRedis) -> Callable[..., Reader]:
    def make(**overrides: Any) -> Reader:
        reader = Reader.of(make_settings(**overrides), fake_redis)
        reader.clock = lambda: NOW
        return reader

    return make


@pytest.fixture
def reader(make_reader: Callable[..., Reader]) -> Reader:
    return make_reader()


def sdrs(*ids: str, disconnected: tuple[str, ...] = ()) -> list[Sdr]:
    return [Sdr(id=i, gmail_connected=i not in disconnected) for i in ids]


def assigned(client: fakeredis.FakeRedis, sdr: str, n: int, at: float = NOW, source="webhook"):
    with client.pipeline() as pipe:
        for _ in range(n):
            counters.count_assignment(pipe, KEYS, sdr, source, at)
        pipe.execute()


def roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.toml"
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(client: fakeredis.FakeRedis) -> dict[bytes, Any]:
    return {k: (client.type(k), client.dump(k)) for k in sorted(client.keys("*"))}


def by_id(panel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in panel["sdrs"]}


# -- the writers ---------------------------------------------------------------------------------


def test_an_assignment_counts_per_sdr_and_source_for_the_day_and_expires(fake_redis) -> None:
    rt = Runtime(make_settings(), client=fake_redis, leadterra=FakeLeadterra().client())
    assert assign(rt, {"id": "rpl_1", "source": "reconcile"}, attempt=1, retries=0) == "assigned"
    day = counters.day_of(time.time())
    assert fake_redis.hgetall(KEYS.stats_day(day, "assigned")) == {b"sdr_1": b"1"}
    assert fake_redis.hgetall(KEYS.stats_day(day, "source")) == {b"reconcile": b"1"}
    for kind in ("assigned", "source"):
        assert 7 * DAY < fake_redis.ttl(KEYS.stats_day(day, kind)) <= counters.DAY_TTL


def test_an_icp_rejection_or_a_409_is_not_counted_as_an_assignment(fake_redis) -> None:
    fake = FakeLeadterra()
    fake.assign_script += [
        httpx.Response(400, json={"icpFailed": True}),
        httpx.Response(409, json={"error": {"code": "already"}}),
    ]
    rt = Runtime(make_settings(), client=fake_redis, leadterra=fake.client())
    assert assign(rt, {"id": "rpl_1"}, attempt=1, retries=0) == "icp_rejected"
    assert assign(rt, {"id": "rpl_2"}, attempt=1, retries=0) == "already_assigned"
    assert fake_redis.keys("test:stats:*") == []


def test_a_followup_decision_is_counted_per_sdr(fake_redis) -> None:
    rt = Runtime(make_settings(), client=fake_redis, leadterra=FakeLeadterra().client())
    note = {
        "followup": {"id": "fu_1", "dueAt": "2026-05-28T10:00:00.000Z", "sdrId": "sdr_2"},
        "thread": {"status": "needs_followup"},
        "sdr": None,
    }
    assert route(rt, note, lambda _: None, lambda *_: None, []) == "routed"
    key = KEYS.stats_day(counters.day_of(time.time()), "followups")
    assert fake_redis.hgetall(key) == {b"routed:sdr_2": b"1"}


def test_leadterra_calls_that_are_not_2xx_are_counted_by_status(fake_redis, monkeypatch) -> None:
    monkeypatch.setattr(counters.time, "time", lambda: NOW)
    rt = Runtime(make_settings(), client=fake_redis, leadterra=FakeLeadterra().client())
    for status in ("200", "201", "503", "429", "timeout", "503"):
        rt.recorder.after_call("assign", status, 0.01, 0.0)
    assert fake_redis.hgetall(KEYS.stats_minute(counters.minute_of(NOW))) == {
        b"leadterra:503": b"2",
        b"leadterra:429": b"1",
        b"leadterra:timeout": b"1",
    }


def test_a_redis_failure_never_fails_the_call_it_counts() -> None:
    broken = fakeredis.FakeRedis()
    broken.connected = False  # fakeredis: every command raises ConnectionError
    counters.count_leadterra_failure(broken, KEYS, "503")


def test_the_receiver_counts_verified_webhooks_per_minute(fake_server, fake_redis) -> None:
    web = create_app(make_settings(), client=fakeredis.FakeAsyncRedis(server=fake_server))
    with TestClient(web) as client:
        for n in range(3):
            body = body_for(f"rpl_{n}")
            assert post(client, body, sign(body)).status_code == 202
        ignored = body_for("rpl_x", classification="not_interested")
        assert post(client, ignored, sign(ignored)).status_code == 200  # counted in memory
        body = body_for("rpl_3")
        assert post(client, body, sign(body)).status_code == 202  # and added with this one
        assert post(client, b"{}", "bad").status_code == 401  # not verified: not counted
    total = sum(int(fake_redis.hget(k, "webhooks") or 0) for k in fake_redis.keys("test:stats:*"))
    assert total == 5
    [key] = fake_redis.keys("test:stats:minute:*")
    assert 0 < fake_redis.ttl(key) <= counters.MINUTE_TTL


def test_the_sdr_list_outlives_its_cache_for_the_console(fake_redis) -> None:
    rotation = Rotation(fake_redis, KEYS, pick_ttl=60, cache_ttl=30)
    rotation.store_roster(sdrs("sdr_2", "sdr_1", disconnected=("sdr_2",)))
    kept = json.loads(fake_redis.get(KEYS.sdr_last_known))
    assert kept["sdrs"] == [["sdr_1", True], ["sdr_2", False]]
    assert fake_redis.ttl(KEYS.sdr_last_known) > fake_redis.ttl(KEYS.sdr_cache)


# -- rotation ------------------------------------------------------------------------------------


def test_rotation_counts_today_and_the_last_7_days_against_the_weighted_share(
    fake_redis, make_reader, tmp_path
) -> None:
    path = roster(tmp_path, "[sdr.sdr_1]\nweight = 2\n\n[sdr.sdr_3]\nweight = 0\n")
    reader = make_reader(roster_file=path)
    Rotation(fake_redis, KEYS, pick_ttl=60, cache_ttl=60).store_roster(
        sdrs("sdr_1", "sdr_2", "sdr_3")
    )
    assigned(fake_redis, "sdr_1", 4)
    assigned(fake_redis, "sdr_2", 2)
    assigned(fake_redis, "sdr_1", 5, NOW - 6 * DAY)
    assigned(fake_redis, "sdr_2", 7, NOW - 7 * DAY)  # 8 days back: not in the week
    panel = rotation_panel(reader)
    rows = by_id(panel)
    assert panel["totals"] == {"today": 6, "week": 11}
    assert (rows["sdr_1"]["today"], rows["sdr_1"]["week"]) == (4, 9)
    assert (rows["sdr_2"]["today"], rows["sdr_2"]["week"]) == (2, 2)
    # weights 2 and 1 share the assignments; weight 0 takes no share
    assert (rows["sdr_1"]["fair_today"], rows["sdr_2"]["fair_today"]) == (4.0, 2.0)
    assert (rows["sdr_1"]["fair_week"], rows["sdr_2"]["fair_week"]) == (7.33, 3.67)
    assert rows["sdr_3"]["fair_week"] is None
    assert rows["sdr_3"]["why_not"] == "weight_zero"


def test_rotation_says_why_each_sdr_is_out_in_the_picks_order(
    fake_redis, make_reader, tmp_path
) -> None:
    path = roster(
        tmp_path,
        "[sdr.paused]\npaused = true\n\n"
        "[sdr.away]\naway = [ { start = 2026-05-01, end = 2026-06-30 } ]\n\n"
        "[sdr.capped]\ndaily_cap = 2\n\n"
        "[sdr.off_and_gone]\npaused = true\n",
    )
    reader = make_reader(roster_file=path, leadterra_sdr_api_keys={"sick": "sk_sdr_sick_0123"})
    ids = ("ok", "paused", "away", "capped", "sick", "off_and_gone", "unplugged")
    Rotation(fake_redis, KEYS, pick_ttl=60, cache_ttl=60).store_roster(
        sdrs(*ids, disconnected=("unplugged", "off_and_gone"))
    )
    fake_redis.hset(KEYS.mailbox_health, "sick", "suspended")
    fake_redis.set(KEYS.daily_count("capped", "2026-05-28"), 2)
    fake_redis.hset(KEYS.rotation_count, "departed", 3)
    rows = by_id(rotation_panel(reader))
    assert {i: rows[i]["why_not"] for i in rows} == {
        "ok": None,
        "paused": "paused",
        "away": "away",
        "capped": "cap",
        "sick": "mailbox:suspended",
        "off_and_gone": "not_connected",  # the pick checks the connection first
        "unplugged": "not_connected",
        "departed": "not_in_sdr_list",
    }
    assert rows["ok"]["eligible"] is True and rows["capped"]["eligible"] is False
    assert (rows["capped"]["cap"], rows["capped"]["cap_used"]) == (2, 2)


def test_rotation_falls_back_to_the_last_sdr_list_and_says_so(fake_redis, reader) -> None:
    Rotation(fake_redis, KEYS, pick_ttl=60, cache_ttl=60).store_roster(
        sdrs("sdr_1", "sdr_2", disconnected=("sdr_2",))
    )
    fake_redis.delete(KEYS.sdr_cache)  # expired
    panel = rotation_panel(reader)
    assert panel["sdr_list"]["source"] == "last_known"
    assert by_id(panel)["sdr_2"]["why_not"] == "not_connected"


def test_without_any_sdr_list_eligibility_is_unknown_not_made_up(fake_redis, reader) -> None:
    fake_redis.hset(KEYS.rotation_count, "sdr_1", 1)
    panel = rotation_panel(reader)
    assert panel["sdr_list"] == {"source": None, "age_s": 0.0}
    assert by_id(panel)["sdr_1"]["eligible"] is None


def test_rotation_positions_follow_the_credit_as_the_cli_did(fake_redis, reader) -> None:
    rotation = Rotation(fake_redis, KEYS, pick_ttl=60, cache_ttl=60)
    team = sdrs("sdr_1", "sdr_2", "sdr_3")
    for n in range(7):
        rotation.pick(f"rpl_{n}", Policy(), lambda: team)
    state = rotation.state()
    rows = by_id(rotation_panel(reader))
    best = max(state, key=lambda s: state[s]["credit"])
    assert rows[best]["position"] == 1
    assert {s: rows[s]["picks"] for s in rows} == {"sdr_1": 3, "sdr_2": 2, "sdr_3": 2}
    assert rotation.pick("rpl_next", Policy(), lambda: team).sdr_id == best


def test_a_bad_roster_file_does_not_stop_the_console(make_reader, tmp_path) -> None:
    reader = make_reader(roster_file=roster(tmp_path, "[sdr.x]\nweight = -1\n"))
    panel = rotation_panel(reader)
    assert "weight" in panel["roster_error"]


# -- decisions -----------------------------------------------------------------------------------


def picks(fake_redis, count: int, team: list[Sdr], prefix: str = "rpl_") -> None:
    rotation = Rotation(fake_redis, KEYS, pick_ttl=60, cache_ttl=60)
    rotation.invalidate()  # this team, not the cached one
    for n in range(count):
        rotation.pick(f"{prefix}{n}", Policy(), lambda: team)


def test_decisions_are_the_newest_first_with_candidates_and_exclusions(fake_redis, reader) -> None:
    picks(fake_redis, 12, sdrs("sdr_1", "sdr_2", "sdr_3", disconnected=("sdr_3",)))
    panel = decisions_panel(reader, limit=5)
    assert [d["reply"] for d in panel["decisions"]] == [f"rpl_{n}" for n in (11, 10, 9, 8, 7)]
    assert panel["length"] == 12
    first = panel["decisions"][0]
    assert first["candidates"] == [["sdr_1", 1], ["sdr_2", 1]]
    assert first["excluded"] == {"sdr_3": "not_connected"}
    assert (first["rule"], first["attempt"]) == ("rotation", 1)
    assert first["winner"] in ("sdr_1", "sdr_2")


def test_the_sdr_filter_keeps_what_the_sdr_took_part_in_and_says_how(fake_redis, reader) -> None:
    picks(fake_redis, 4, sdrs("sdr_1", "sdr_2"))
    picks(fake_redis, 3, sdrs("sdr_1", "sdr_2", disconnected=("sdr_2",)), "later_")
    panel = decisions_panel(reader, sdr="sdr_2")
    roles = [(d["reply"], d["role"]) for d in panel["decisions"]]
    assert roles[:3] == [(f"later_{n}", "excluded:not_connected") for n in (2, 1, 0)]
    assert {r for _, r in roles[3:]} == {"won", "candidate"}
    assert decisions_panel(reader, sdr="nobody")["decisions"] == []


def test_the_filter_reads_back_a_page_at_a_time_and_no_further_than_the_limit(
    fake_redis, reader, monkeypatch
) -> None:
    from worker.console import decisions_panel as module

    monkeypatch.setattr(module, "PAGE", 10)
    monkeypatch.setattr(module, "SCAN_LIMIT", 30)
    picks(fake_redis, 5, sdrs("old"), "old_")
    picks(fake_redis, 25, sdrs("new"), "new_")
    assert [d["reply"] for d in decisions_panel(reader, sdr="old")["decisions"]] == [
        f"old_{n}" for n in (4, 3, 2, 1, 0)
    ]
    picks(fake_redis, 10, sdrs("new"), "newer_")  # now the old ones are 35 back: out of reach
    panel = decisions_panel(reader, sdr="old")
    assert (panel["decisions"], panel["scanned"]) == ([], 30)


def test_an_unreadable_decision_reads_as_empty_fields(fake_redis, reader) -> None:
    fake_redis.xadd(KEYS.decisions, {"reply": "r", "candidates": "{nope", "at": "x"})
    [item] = decisions_panel(reader)["decisions"]
    assert (item["candidates"], item["excluded"], item["at"], item["winner"]) == (
        [],
        {},
        None,
        None,
    )


# -- stuck work ------------------------------------------------------------------------------------


def test_stuck_shows_held_replies_oldest_first_and_dead_letters_without_arguments(
    fake_redis, reader
) -> None:
    for reply_id, since in (("rpl_new", NOW - 60), ("rpl_old", NOW - 7200)):
        held = {"since": since, "reason": "no_eligible_sdr", "checked": NOW}
        fake_redis.hset(KEYS.held, reply_id, json.dumps(held))
    store = DeadLetters(fake_redis, KEYS)
    for n in range(3):
        store.add(
            DeadLetter(
                id=f"reply:rpl_d{n}",
                task="leadrouter.assign_reply",
                queue="assign",
                args=[{"id": f"rpl_d{n}", "email": "secret.prospect@acme.io"}],
                error="boom",
                error_type="ServerError",
                attempts=12,
                at=NOW - 100 * (3 - n),
            )
        )
    panel = stuck_panel(reader, limit=2)
    assert [h["reply_id"] for h in panel["held"]["replies"]] == ["rpl_old", "rpl_new"]
    assert (panel["held"]["count"], panel["held"]["oldest_age_s"]) == (2, 7200.0)
    letters = panel["dead_letters"]
    assert letters["count"] == 3
    assert [e["id"] for e in letters["entries"]] == ["reply:rpl_d0", "reply:rpl_d1"]
    assert letters["entries"][0] == {
        "id": "reply:rpl_d0",
        "task": "assign_reply",
        "queue": "assign",
        "reply_id": "rpl_d0",
        "error_type": "ServerError",
        "error": "boom",
        "attempts": 12,
        "at": NOW - 300,
        "age_s": 300.0,
    }
    assert "secret.prospect" not in json.dumps(panel)


# -- follow-ups ------------------------------------------------------------------------------------


def test_followups_are_today_per_sdr_with_the_due_sum(fake_redis, reader, monkeypatch) -> None:
    monkeypatch.setattr(counters.time, "time", lambda: NOW)
    for sdr, decision, n in (
        ("sdr_1", "routed", 3),
        ("sdr_1", "skipped", 1),
        ("sdr_2", "rescheduled", 2),
        ("sdr_2", "already_closed", 1),
        (None, "routed", 1),
    ):
        for _ in range(n):
            counters.count_followup(fake_redis, KEYS, sdr, decision)
    panel = followups_panel(reader)
    assert panel["sdrs"] == [
        {
            "sdr": "-",
            "routed": 1,
            "skipped": 0,
            "rescheduled": 0,
            "already_closed": 0,
            "completed": 0,
            "due": 1,
        },
        {
            "sdr": "sdr_1",
            "routed": 3,
            "skipped": 1,
            "rescheduled": 0,
            "already_closed": 0,
            "completed": 0,
            "due": 4,
        },
        {
            "sdr": "sdr_2",
            "routed": 0,
            "skipped": 0,
            "rescheduled": 2,
            "already_closed": 1,
            "completed": 0,
            "due": 3,
        },
    ]
    assert panel["totals"] == {
        "due": 8,
        "routed": 4,
        "skipped": 1,
        "rescheduled": 2,
        "already_closed": 1,
        "completed": 0,
    }


# -- health ------------------------------------------------------------------------------------


def test_health_reads_queues_webhooks_workers_and_leadterra_failures(
    fake_redis, reader, monkeypatch
) -> None:
    fake_redis.lpush(KEYS.queue("assign"), "m1", "m2")
    fake_redis.hset(KEYS.held, "rpl_1", json.dumps({"since": NOW}))
    fake_redis.set(KEYS.last_webhook, repr(NOW - 30))
    fake_redis.set(KEYS.heartbeat, f"{time.time() - 2}|leadrouter-1@host")
    minute = counters.minute_of(NOW)
    fake_redis.hset(KEYS.stats_minute(minute - 1), "webhooks", 7)
    fake_redis.hset(KEYS.stats_minute(minute - 30), mapping={"webhooks": 5, "leadterra:429": 2})
    fake_redis.hset(KEYS.stats_minute(minute - 90), "webhooks", 100)  # over an hour ago
    fake_redis.hset(KEYS.stats_minute(minute), mapping={"leadterra:503": 1, "leadterra:409": 4})
    monkeypatch.setattr("worker.metrics.time.time", lambda: NOW - 20)
    Metrics("worker-a").flush(fake_redis, KEYS)
    monkeypatch.setattr("worker.metrics.time.time", lambda: NOW - 3600)
    Metrics("worker-gone").flush(fake_redis, KEYS)
    panel = health_panel(reader)
    assert panel["queues"] == {
        "assign": 2,
        "followups": 0,
        "default": 0,
        "unacked": 0,
        "delayed": 0,
        "held": 1,
        "dead_letters": 0,
    }
    assert panel["last_webhook"] == {"at": NOW - 30, "age_s": 30.0}
    assert (panel["webhooks"]["last_minute"], panel["webhooks"]["last_hour"]) == (7, 12)
    assert len(panel["webhooks"]["per_minute"]) == 60
    assert panel["workers"]["ready"] is True
    assert panel["workers"]["heartbeat"]["worker"] == "leadrouter-1@host"
    assert panel["workers"]["processes"] == [{"ident": "worker-a", "age_s": 20.0}]
    assert panel["leadterra"] == {
        "errors_last_hour": 1,
        "rate_limited_last_hour": 2,
        "by_status": {"409": 4, "429": 2, "503": 1},
    }


# -- SLA -----------------------------------------------------------------------------------------


def test_sla_gives_open_clocks_outcomes_and_time_to_action_per_sdr(fake_redis, make_reader) -> None:
    reader = make_reader(sla_minutes=30)
    ledger = Ledger(fake_redis, KEYS, 7 * DAY)
    for n, sdr in enumerate(("sdr_1", "sdr_1", "sdr_2", "sdr_1")):
        ledger.record(f"rpl_{n}", None, sdr, f"thr_{n}", watch=True)
    handoffs = {f"rpl_{n}": ledger.get(f"rpl_{n}") for n in range(4)}
    for reply_id, took in (("rpl_0", 600), ("rpl_1", 1800)):
        h = handoffs[reply_id]
        h.current.at, h.current.acted_at, h.state = NOW - 3600, NOW - 3600 + took, "acted"
        ledger.save(h)
    rerouted = handoffs["rpl_2"]
    rerouted.current.at = NOW - 7200
    rerouted.current.breached_at = NOW - 5400
    rerouted.attempts.append(Attempt(2, "sdr_1", "thr_9", NOW - 600))
    ledger.save(rerouted)
    escalated = handoffs["rpl_3"]
    escalated.current.breached_at, escalated.state = NOW, ESCALATED
    ledger.save(escalated)
    panel = sla_panel(reader)
    assert panel["enabled"] and panel["sla_minutes"] == 30
    [clock] = panel["open"]["handoffs"]
    assert (clock["reply_id"], clock["sdr_id"], clock["attempt"]) == ("rpl_2", "sdr_1", 2)
    assert (clock["elapsed_minutes"], clock["left_minutes"]) == (10.0, 20.0)
    assert panel["window"] | {"since": None} == {
        "handoffs": 4,
        "since": None,
        "breaches": 2,
        "reroutes": 1,
        "escalated": 1,
    }
    rows = {r["sdr"]: r for r in panel["sdrs"]}
    assert rows["sdr_1"] | {"tta_p50_s": 0, "tta_p90_s": 0} == {
        "sdr": "sdr_1",
        "handoffs": 4,
        "acted": 2,
        "breached": 1,
        "rerouted_away": 0,
        "tta_p50_s": 0,
        "tta_p90_s": 0,
    }
    assert (rows["sdr_1"]["tta_p50_s"], rows["sdr_1"]["tta_p90_s"]) == (600.0, 1800.0)
    assert (rows["sdr_2"]["rerouted_away"], rows["sdr_2"]["tta_p50_s"]) == (1, None)


def test_the_sla_panel_leaves_the_ledger_as_it_is(fake_redis, reader) -> None:
    Ledger(fake_redis, KEYS, 7 * DAY).record("rpl_1", None, "sdr_1", "thr_1", watch=True)
    fake_redis.delete(KEYS.handoff("rpl_1"))  # gone with its TTL; the watch tidies the index
    before = snapshot(fake_redis)
    assert sla_panel(reader)["open"]["count"] == 0
    assert snapshot(fake_redis) == before


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 0.5, None), ([5.0], 0.9, 5.0), ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0), ([1.0, 9.0], 0.9, 9.0)],
)
def test_percentiles_are_nearest_rank(values, q, expected) -> None:
    assert percentile(values, q) == expected


# -- intake ---------------------------------------------------------------------------------------


def test_intake_compares_webhooks_with_recovered_replies(fake_redis, reader) -> None:
    assigned(fake_redis, "sdr_1", 6, source="webhook")
    assigned(fake_redis, "sdr_1", 2, source="reconcile")
    assigned(fake_redis, "sdr_1", 3, NOW - 2 * DAY, source="webhook")
    assigned(fake_redis, "sdr_1", 1, NOW - 2 * DAY, source="backfill")
    fake_redis.set(KEYS.reconcile_watermark, repr(NOW - 900))
    fake_redis.set(KEYS.reconcile_last_success, repr(NOW - 60))
    panel = intake_panel(reader)
    assert panel["today"] == {"webhook": 6, "reconcile": 2, "backfill": 0, "recovered_share": 0.25}
    assert panel["week"] == {"webhook": 9, "reconcile": 2, "backfill": 1, "recovered_share": 0.182}
    assert [d["day"] for d in panel["days"]][-1] == "2026-05-28"
    assert panel["watermark"] == {"at": NOW - 900, "age_s": 900.0}
    assert panel["last_sweep"]["age_s"] == 60.0
    assert panel["resume_pending"] is False


def test_intake_before_anything_happened(reader) -> None:
    panel = intake_panel(reader)
    assert panel["today"]["recovered_share"] is None
    assert panel["watermark"] == {"at": None, "age_s": None}


# -- all panels ----------------------------------------------------------------------------------


def test_reading_every_panel_changes_nothing_in_redis(fake_redis, reader) -> None:
    picks(fake_redis, 5, sdrs("sdr_1", "sdr_2"))
    assigned(fake_redis, "sdr_1", 2)
    Ledger(fake_redis, KEYS, 7 * DAY).record("rpl_1", None, "sdr_1", "thr_1", watch=True)
    before = snapshot(fake_redis)
    data = read_all(reader, Query(sdr="sdr_1"))
    assert list(data) == list(PANELS)
    json.dumps(data)  # JSON-ready as it is
    assert snapshot(fake_redis) == before


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, Query(None, 50)),
        ({"sdr": " sdr_1 ", "limit": "7"}, Query("sdr_1", 7)),
        ({"sdr": "", "limit": "0"}, Query(None, 1)),
        ({"limit": "99999"}, Query(None, 50)),
        ({"limit": "600"}, Query(None, 500)),
        ({"limit": "-3"}, Query(None, 50)),
        ({"limit": "²"}, Query(None, 50)),
        ({"sdr": "x" * 500}, Query("x" * 200, 50)),
    ],
)
def test_query_parameters_are_bounded(params: dict[str, str], expected: Query) -> None:
    assert query_of(params) == expected
