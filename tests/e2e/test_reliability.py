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
    # the stamps are the sandbox's arrival times: a call granted on time but delayed on a
    # loaded machine can land in the next second beside the calls granted there (one such run
    # counted 26 for 25). The limiter's own bound is tests/test_ratelimit.py's; this one fails
    # on a limiter per worker (40/s) or none, and the drain time below holds the average rate
    assert row.checks["worst_window"] <= row.checks["allowed"] + 1
    assert row.checks["drain_s"] >= 0.9 * row.checks["ideal_drain_s"]
    # a stalled limiter fails this; how close to the ideal it drains is scripts/reliability.py's
    # row, not a timed test (a loaded machine stretches it)
    assert row.checks["drain_s"] <= 2 * row.checks["ideal_drain_s"] + 10
    assert row.dead_lettered == 0


def test_a_worker_killed_mid_call_loses_and_doubles_nothing(tmp_path: Path) -> None:
    row = run("worker_killed", tmp_path)
    # at the default visibility timeout (900 s): what it held is restored once it stops beating
    # (worker/jobs/liveness.py), well inside `wait_assigned`'s 120 s, or the row fails there
    assert row.checks["visibility_timeout"] == 900
    assert row.checks["held"] > 0
    assert row.checks["restored"] >= 1
    assert row.dead_lettered == 0


def test_the_window_a_killed_worker_held_of_a_backlog_is_assigned_once(tmp_path: Path) -> None:
    """The README's row (issue 17, part 6); the time it takes is scripts/reliability.py's."""
    row = run("worker_killed_holding_backlog", tmp_path)
    assert row.checks["visibility_timeout"] == 900
    assert row.checks["held_unassigned_at_kill"] > 0  # the kill really stranded replies
    assert row.checks["restored"] >= row.checks["held_unassigned_at_kill"]
    assert row.dead_lettered == 0


def test_a_leadterra_outage_is_ridden_out_without_dead_letters(tmp_path: Path) -> None:
    row = run("leadterra_outage", tmp_path)
    assert row.dead_lettered == 0
    assert row.checks["retries"] >= row.events_in  # the outage really hit every assign
    # shortened (4 s backoff cap) it recovers in about 16 s; the README's row, at the default
    # backoff, in about a minute
    assert row.recovery_s is not None and row.recovery_s < 90


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


def test_keys_with_invisible_characters_stop_every_process_with_one_clean_line(tmp_path) -> None:
    row = run("keys_with_invisible_characters", tmp_path)
    assert row.checks["starts"] == 9  # web, worker and beat, each with three bad keys
    assert row.checks["refused"] == row.checks["starts"]  # exit status 2
    assert row.checks["one_line"] == row.checks["starts"]
    assert row.checks["leaked"] == 0
    assert row.dead_lettered == 0


def test_dead_letters_past_the_old_cap_are_all_replayed_and_assigned_once(tmp_path) -> None:
    """1,200 end to end (past the old 1,000 cap) keeps the suite fast; scripts/reliability.py
    runs the README's 5,000, and tests/test_cli_dlq.py replays 5,000 onto the queue."""
    row = scenarios.dlq_replayed(tmp_path, count=1_200)
    print(row)
    assert (row.events_in, row.assigned, row.duplicates, row.lost) == (1_200, 1_200, 0, 0), row
    assert row.checks["replay_exit"] == 0
    assert row.checks["replay_output"] == "replayed 1200 dead letter(s)"
    assert row.checks["queued_after_replay"] == 1_200
    assert row.checks["left_after_replay"] == 0
    assert row.dead_lettered == 1_200  # before the replay


def test_slow_clients_on_every_route_are_cut_at_the_deadline_and_webhooks_flow(tmp_path) -> None:
    row = run("slow_clients", tmp_path)
    assert row.checks["kept_past_deadline"] == 0
    assert row.checks["longest_held_s"] <= row.checks["deadline_s"] + 2 + 1  # slack, grace
    answered = row.checks["answered"]
    assert answered["webhook body (408)"] == [408]
    assert answered["/healthz body after 200"] == [200]
    assert answered["/metrics body after 404"] == [404]  # not on Leadterra's port
    assert answered["/healthz body after 405"] == [405]
    assert answered["admin /metrics body after 200"] == [200]
    assert answered["head trickled"] == answered["silent"] == []  # closed, never answered
    assert row.checks["never_acknowledged"] == 0
    assert row.checks["answered_503"] == 0
    assert row.dead_lettered == 0


def test_a_header_flood_is_cut_early_and_the_receiver_stays_small(tmp_path) -> None:
    row = run("header_flood", tmp_path)
    assert set(row.checks["answers"]) <= {431}  # 431, or a reset before it could be read
    assert row.checks["most_bytes_taken"] < 8 * 1024 * 1024  # the kernel's buffers, no more
    assert row.checks["rss_growth_mib"] < 32
    assert row.checks["never_acknowledged"] == 0
    assert row.dead_lettered == 0


def test_a_stale_delivery_is_answered_200_and_enqueues_nothing(tmp_path) -> None:
    row = run("stale_delivery", tmp_path)
    replayed = row.checks["replayed"]
    assert row.checks["answered_stale"] == row.checks["stale_warnings"] == replayed
    assert row.checks["replay_statuses"] == [200]
    assert row.checks["records_expired"] > 0
    assert row.checks["enqueued_by_replay"] == 0
    assert row.checks["seen_markers_after"] == 0
    assert row.checks["assign_calls_after"] == 0
    assert row.dead_lettered == 0


def test_webhooks_lost_for_three_days_are_all_assigned_by_backfill_once(tmp_path) -> None:
    """The README's row; tests/e2e/test_reconcile_e2e.py runs the same machinery on a shared
    deployment, and the sweep's own recovery (a, b, d there)."""
    row = run("webhooks_lost_three_days", tmp_path)
    assert row.checks["dropped"] == 120
    assert row.checks["first"]["enqueued"] == row.events_in
    assert row.checks["second"]["enqueued"] == 0
    assert row.checks["sources"] == ["backfill"]
    assert row.dead_lettered == 0
