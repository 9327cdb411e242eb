"""Faults injected into real processes: nothing accepted is lost or doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def run(name: str, tmp_path: Path) -> scenarios.Row:
    row = scenarios.SCENARIOS[name](tmp_path)
    print(row)
    assert row.lost == 0, row
    assert row.duplicates == 0, row
    assert row.assigned == row.events_in, row
    assert row.events_in > 0, row
    return row


def test_the_global_rate_limit_holds_across_two_workers(tmp_path: Path) -> None:
    row = run("rate_limit", tmp_path)
    assert row.checks["worst_window"] <= row.checks["allowed"]
    assert row.checks["drain_s"] >= 0.9 * row.checks["ideal_drain_s"]
    # a stalled limiter fails this; how close to the ideal it drains is scripts/reliability.py's
    # row, not a timed test (a loaded machine stretches it)
    assert row.checks["drain_s"] <= 2 * row.checks["ideal_drain_s"] + 10
    assert row.dead_lettered == 0


def test_a_worker_killed_mid_call_loses_and_doubles_nothing(tmp_path: Path) -> None:
    row = run("worker_killed", tmp_path)
    # redelivered after the visibility timeout, plus kombu's sweep and the 2 s calls
    assert row.recovery_s is not None
    assert row.recovery_s <= row.checks["visibility_timeout"] + 60
    assert row.dead_lettered == 0


def test_a_leadterra_outage_is_ridden_out_without_dead_letters(tmp_path: Path) -> None:
    row = run("leadterra_outage", tmp_path)
    assert row.dead_lettered == 0
    assert row.checks["retries"] >= row.events_in  # the outage really hit every assign
    assert row.recovery_s is not None and row.recovery_s < 90  # the README's row: about 16 s


def test_a_redis_restart_loses_nothing_queued_and_503s_are_retried(tmp_path: Path) -> None:
    row = run("redis_restart", tmp_path)
    assert row.checks["answered_503"] > 0
    assert row.checks["queued_before"] > 0
    assert row.dead_lettered == 0


def test_every_delivery_to_a_restarting_receiver_is_processed_or_retried(tmp_path) -> None:
    row = run("receiver_restart", tmp_path)
    assert row.checks["never_acknowledged"] == 0
    assert row.dead_lettered == 0


def test_poison_is_dead_lettered_and_the_queue_flows_on(tmp_path: Path) -> None:
    row = run("poison", tmp_path)
    assert row.dead_lettered == row.checks["poison"]
    assert row.checks["worker_alive"]


def test_used_up_retries_are_dead_lettered_then_replayed_once_fixed(tmp_path: Path) -> None:
    row = run("retries_used_up", tmp_path)
    assert row.dead_lettered == row.events_in
    assert row.checks["reasons"] == ["ServerError"]
    assert row.checks["attempts"] == [3]
    assert row.checks["replay_exit"] == 0
    assert row.checks["left_after_replay"] == 0
