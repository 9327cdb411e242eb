"""worker/jobs/retry.py: the backoff's bounds, its cap, its jitter, and Retry-After."""

from __future__ import annotations

import random

import pytest

from worker.jobs.retry import backoff


class Lowest(random.Random):
    """An rng whose every draw is the bottom of its range."""

    def uniform(self, a: float, b: float) -> float:
        return a


class Highest(random.Random):
    """An rng whose every draw is the top of its range."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(
    ("retries", "low", "high"),
    [(0, 0.1, 0.2), (1, 0.2, 0.4), (2, 0.4, 0.8), (3, 0.8, 1.6), (5, 3.2, 6.4), (6, 5.0, 10.0)],
)
def test_the_wait_lies_between_half_and_all_of_the_exponential_ceiling(
    retries: int, low: float, high: float
) -> None:
    assert backoff(retries, base=0.2, cap=10.0, rng=Lowest()) == pytest.approx(low)
    assert backoff(retries, base=0.2, cap=10.0, rng=Highest()) == pytest.approx(high)
    rng = random.Random(retries)
    waits = [backoff(retries, base=0.2, cap=10.0, rng=rng) for _ in range(500)]
    assert all(low <= wait <= high for wait in waits)


def test_the_wait_doubles_with_each_retry_until_the_cap() -> None:
    waits = [backoff(n, base=1.0, cap=20.0, rng=Lowest()) for n in range(8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("retries", [10, 30, 31, 1000, 10**9])
def test_the_cap_holds_however_many_retries_came_before(retries: int) -> None:
    rng = random.Random(retries)
    waits = [backoff(retries, base=0.2, cap=30.0, rng=rng) for _ in range(200)]
    assert all(15.0 <= wait <= 30.0 for wait in waits)


def test_a_cap_below_the_base_is_still_the_ceiling() -> None:
    assert backoff(0, base=5.0, cap=1.0, rng=Highest()) == 1.0
    assert backoff(0, base=5.0, cap=1.0, rng=Lowest()) == 0.5


def test_the_jitter_spreads_retries_over_the_whole_upper_half() -> None:
    """Equal jitter: a herd of tasks failing together must not come back together."""
    rng = random.Random(20250611)
    waits = [backoff(4, base=1.0, cap=60.0, rng=rng) for _ in range(2000)]
    assert min(waits) >= 8.0 and max(waits) <= 16.0
    assert min(waits) < 8.2 and max(waits) > 15.8
    assert len({round(wait, 3) for wait in waits}) > 1500
    assert sum(waits) / len(waits) == pytest.approx(12.0, abs=0.2)


@pytest.mark.parametrize(
    ("retry_after", "most"), [(0.0, 0.05), (2.0, 0.25), (7.0, 0.75), (30.0, 1.0), (3600.0, 1.0)]
)
def test_retry_after_wins_and_gets_at_most_a_second_of_jitter(
    retry_after: float, most: float
) -> None:
    for retries in (0, 3, 12):
        low = backoff(retries, base=0.2, cap=1.0, retry_after=retry_after, rng=Lowest())
        high = backoff(retries, base=0.2, cap=1.0, retry_after=retry_after, rng=Highest())
        assert low == retry_after
        assert high == pytest.approx(retry_after + most)


def test_retry_after_is_honoured_even_above_the_cap() -> None:
    rng = random.Random(7)
    waits = [backoff(0, base=0.2, cap=1.0, retry_after=120.0, rng=rng) for _ in range(200)]
    assert all(120.0 <= wait <= 121.0 for wait in waits)


def test_the_same_seed_gives_the_same_waits() -> None:
    first = [backoff(n, base=0.2, cap=10.0, rng=random.Random(42)) for n in range(6)]
    second = [backoff(n, base=0.2, cap=10.0, rng=random.Random(42)) for n in range(6)]
    other = [backoff(n, base=0.2, cap=10.0, rng=random.Random(43)) for n in range(6)]
    assert first == second
    assert first != other


def test_without_an_rng_the_jitter_comes_from_the_random_module() -> None:
    """So a test run seeded by pytest-randomly (`-p randomly --randomly-seed=N`) replays."""
    random.seed(99)
    first = [backoff(n, base=0.2, cap=10.0) for n in range(6)]
    random.seed(99)
    second = [backoff(n, base=0.2, cap=10.0) for n in range(6)]
    assert first == second
