import json

from tests.conftest import make_settings
from worker.jobs.celery_app import (
    CANARY_OPTIONS,
    beat_schedule,
    create_celery,
    restore_interval,
    send_canary,
)
from worker.jobs.tasks import register
from worker.keys import (
    QUEUE_ASSIGN,
    QUEUE_DEFAULT,
    QUEUE_FOLLOWUPS,
    TASK_ASSIGN,
    TASK_CANARY,
    TASK_COMPLETE,
    TASK_MAILBOXES,
    TASK_NOTIFY,
    TASK_POLL,
    TASK_RECONCILE,
    TASK_RECOVER,
    TASK_RELEASE,
    TASK_ROUTE,
    TASK_WATCH,
)
from worker.runtime import Runtime


def test_the_reliable_delivery_baseline_is_set_on_the_app() -> None:
    settings = make_settings(worker_concurrency=40, visibility_timeout=900)
    conf = create_celery(settings).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.task_ignore_result is True
    assert conf.result_backend is None
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.worker_hijack_root_logger is False
    options = conf.broker_transport_options
    assert options["visibility_timeout"] == 900
    assert options["max_connections"] > 40
    assert options["unacked_restore_throttle"] == 1
    assert options["unacked_restore_interval"] <= 5
    assert options["global_keyprefix"] == settings.key_prefix


def test_every_countdown_stays_far_below_the_visibility_timeout() -> None:
    for timeout in (10, 15, 60, 900, 3600):
        settings = make_settings(
            visibility_timeout=timeout,
            leadterra_timeout_read=2,
            leadterra_timeout_connect=1,
            leadterra_timeout_pool=1,
            retry_backoff_max=300,
        )
        assert settings.max_countdown <= timeout / 3
        assert settings.max_task_seconds < timeout / 3  # a countdown plus a run fit the lease
        assert settings.max_countdown + settings.max_task_seconds < timeout
        assert settings.max_call_seconds < timeout
        assert restore_interval(settings) < timeout


def test_tasks_are_routed_to_their_queues() -> None:
    routes = create_celery(make_settings()).conf.task_routes
    assert routes[TASK_ASSIGN]["queue"] == QUEUE_ASSIGN
    assert routes[TASK_ROUTE]["queue"] == QUEUE_FOLLOWUPS


def test_beat_entries_expire_and_poll_at_the_configured_interval() -> None:
    schedule = create_celery(make_settings(followup_poll_seconds=7)).conf.beat_schedule
    poll = next(e for e in schedule.values() if e["task"] == TASK_POLL)
    assert poll["schedule"] == 7
    assert all("expires" in entry["options"] for entry in schedule.values())
    assert {TASK_RELEASE, TASK_CANARY} <= {e["task"] for e in schedule.values()}


def test_every_task_is_registered_late_acked_with_no_celery_retry_cap(fake_redis) -> None:
    app = create_celery(make_settings())
    tasks = register(app, Runtime(make_settings(), client=fake_redis))
    assert set(tasks) == {
        TASK_ASSIGN,
        TASK_POLL,
        TASK_ROUTE,
        TASK_NOTIFY,
        TASK_RELEASE,
        TASK_CANARY,
        TASK_MAILBOXES,
        TASK_RECONCILE,
        TASK_WATCH,
        TASK_RECOVER,
        TASK_COMPLETE,
    }
    for task in tasks.values():
        assert task.acks_late is True
        assert task.max_retries is None


def test_each_task_carries_its_runtime_subject_and_queue_from_one_table(fake_redis) -> None:
    runtime = Runtime(make_settings(), client=fake_redis)
    app = create_celery(runtime.settings)
    tasks = register(app, runtime)
    assert all(task.runtime is runtime for task in tasks.values())
    assert {name: (task.subject, task.queue_name) for name, task in tasks.items()} == {
        TASK_ASSIGN: ("reply", QUEUE_ASSIGN),
        TASK_POLL: ("poll", QUEUE_FOLLOWUPS),
        TASK_ROUTE: ("followup", QUEUE_FOLLOWUPS),
        TASK_NOTIFY: ("notification", QUEUE_FOLLOWUPS),
        TASK_RELEASE: ("release", QUEUE_DEFAULT),
        TASK_CANARY: ("canary", QUEUE_DEFAULT),
        TASK_MAILBOXES: ("mailboxes", QUEUE_DEFAULT),
        TASK_RECONCILE: ("reconcile", QUEUE_DEFAULT),
        TASK_WATCH: ("sla", QUEUE_DEFAULT),
        TASK_RECOVER: ("orphans", QUEUE_DEFAULT),
        TASK_COMPLETE: ("followup", QUEUE_FOLLOWUPS),
    }


def test_beat_sweeps_replies_every_reconcile_seconds_and_not_at_zero() -> None:
    schedule = create_celery(make_settings(reconcile_seconds=15)).conf.beat_schedule
    sweep = next(e for e in schedule.values() if e["task"] == TASK_RECONCILE)
    assert sweep["schedule"] == 15
    assert sweep["options"] == {"expires": 15, "queue": QUEUE_DEFAULT}
    off = create_celery(make_settings(reconcile_seconds=0)).conf.beat_schedule
    assert TASK_RECONCILE not in {e["task"] for e in off.values()}


def test_beat_checks_handoffs_every_sla_check_seconds_only_with_an_sla() -> None:
    schedule = create_celery(make_settings(sla_minutes=30, sla_check_seconds=5)).conf.beat_schedule
    check = next(e for e in schedule.values() if e["task"] == TASK_WATCH)
    assert check["schedule"] == 5
    assert check["options"] == {"expires": 5, "queue": QUEUE_DEFAULT}
    off = create_celery(make_settings()).conf.beat_schedule
    assert TASK_WATCH not in {e["task"] for e in off.values()}


def test_celery_events_are_off_unless_celery_events_is_set() -> None:
    """Task events for Flower and celery-exporter (docs/celery.md, "Monitoring")."""
    off = create_celery(make_settings()).conf
    assert (off.worker_send_task_events, off.task_send_sent_event) == (False, False)
    on = create_celery(make_settings(celery_events=True)).conf
    assert (on.worker_send_task_events, on.task_send_sent_event) == (True, True)


def test_send_canary_queues_the_canary_as_beat_sends_it(redis_server, real_redis) -> None:
    """A worker sends one when its consumer is up (worker/cli/processes.py): /readyz turns
    green as soon as a worker consumes it, not a canary period after start."""
    settings = make_settings(redis_url=redis_server.url)
    app = create_celery(settings)
    send_canary(app)
    raw = real_redis.lrange(f"{settings.key_prefix}{QUEUE_DEFAULT}", 0, -1)
    assert len(raw) == 1
    headers = json.loads(raw[0])["headers"]
    assert headers["task"] == TASK_CANARY
    assert headers["expires"]  # as beat's entry: a stale canary is never consumed
    canary = next(e for e in beat_schedule(settings).values() if e["task"] == TASK_CANARY)
    assert canary["options"] == CANARY_OPTIONS
