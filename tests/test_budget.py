"""worker/budget.py: the deadline in force, and the waits that honour it."""

from __future__ import annotations

import contextvars
import threading

import pytest

from tests.conftest import make_settings
from worker import budget, errors
from worker.runtime import Runtime


def test_without_a_deadline_nothing_is_capped() -> None:
    assert budget.remaining() is None and budget.deadline() is None
    assert budget.cap(7.0) == 7.0 and budget.cap(None) is None
    budget.check("anything")


def test_a_nested_deadline_never_extends_the_outer_one() -> None:
    with budget.deadline_in(1.0) as outer:
        with budget.deadline_in(100.0) as inner:
            assert inner == outer
        with budget.deadline_in(0.5) as tighter:
            assert tighter < outer
            left = budget.remaining()
            assert left is not None and 0 < left <= 0.5
        assert budget.deadline() == outer
    assert budget.deadline() is None


def test_cap_shortens_a_timeout_to_what_is_left_and_never_below_zero() -> None:
    with budget.deadline_in(2.0):
        assert budget.cap(10.0) <= 2.0  # type: ignore[operator]
        assert budget.cap(0.5) == 0.5
        assert budget.cap(None) <= 2.0  # type: ignore[operator]
    with budget.deadline_in(-1.0):
        assert budget.cap(10.0) == 0.0


def test_check_raises_a_retryable_out_of_time_once_the_deadline_passed() -> None:
    with budget.deadline_in(-0.5), pytest.raises(errors.OutOfTime) as caught:
        budget.check("GET /v1/sdrs")
    assert caught.value.retryable
    assert str(caught.value).startswith("GET /v1/sdrs: the time budget ran out")


def test_a_thread_carries_the_deadline_only_in_a_copy_of_the_context() -> None:
    seen: dict[str, float | None] = {}
    with budget.deadline_in(5.0):
        plain = threading.Thread(target=lambda: seen.update(plain=budget.remaining()))
        context = contextvars.copy_context()
        copied = threading.Thread(
            target=lambda: context.run(lambda: seen.update(copied=budget.remaining()))
        )
        for thread in (plain, copied):
            thread.start()
            thread.join()
    assert seen["plain"] is None
    assert seen["copied"] is not None and 0 < seen["copied"] <= 5.0


def test_the_rate_limit_wait_never_passes_the_tasks_deadline(fake_redis) -> None:
    rt = Runtime(make_settings(), client=fake_redis)
    rt.gate.pause(10.0)  # a shared 429 pause: the gate's own bound (15 s) would wait it out
    with budget.deadline_in(0.5), pytest.raises(errors.RateLimited) as caught:
        rt.recorder.before_call("GET /v1/sdrs")
    assert caught.value.retry_after is not None and caught.value.retry_after > 9
