import threading
from collections import Counter

import fakeredis
import pytest

from worker.deadline import wait_until
from worker.errors import NoEligibleSdr
from worker.keys import Keys
from worker.leadterra.models import Sdr
from worker.routing.rotation import Policy, Rotation, account_of

KEYS = Keys("test:")


def roster(n: int, disconnected: tuple[int, ...] = ()) -> list[Sdr]:
    return [Sdr(id=f"sdr_{i}", gmail_connected=i not in disconnected) for i in range(1, n + 1)]


@pytest.fixture
def rotation(fake_redis: fakeredis.FakeRedis) -> Rotation:
    return Rotation(fake_redis, KEYS, pick_ttl=3600, cache_ttl=30)


def picks(
    rotation: Rotation, sdrs: list[Sdr], count: int, start: int = 0, policy: Policy | None = None
) -> list[str]:
    return [
        str(rotation.pick(f"rpl_{i}", policy or Policy(), lambda: sdrs).sdr_id)
        for i in range(start, start + count)
    ]


def test_plain_rotation_goes_round_in_a_stable_order(rotation) -> None:
    assert picks(rotation, roster(3), 6) == ["sdr_1", "sdr_2", "sdr_3"] * 2


def test_disconnected_sdrs_are_never_picked_and_the_rest_stay_even(rotation) -> None:
    chosen = picks(rotation, roster(8, disconnected=(3, 7)), 600)
    counts = Counter(chosen)
    assert set(counts) == {"sdr_1", "sdr_2", "sdr_4", "sdr_5", "sdr_6", "sdr_8"}
    assert max(counts.values()) - min(counts.values()) <= 1


def test_the_pick_is_remembered_per_reply_and_moves_the_rotation_once(rotation, fake_redis):
    sdrs = roster(3)
    first = rotation.pick("rpl_x", Policy(), lambda: sdrs)
    again = rotation.pick("rpl_x", Policy(), lambda: sdrs)
    assert again.kind == "prior"
    assert again.sdr_id == first.sdr_id
    assert picks(rotation, sdrs, 2, start=100) == ["sdr_2", "sdr_3"]
    assert rotation.state()[str(first.sdr_id)]["count"] == 1


def test_a_done_reply_short_circuits(rotation, fake_redis) -> None:
    fake_redis.set(KEYS.done("rpl_d"), '{"outcome": "assigned", "sdr": "sdr_2"}')
    result = rotation.pick("rpl_d", Policy(), lambda: roster(3))
    assert result.kind == "done"
    assert result.done == {"outcome": "assigned", "sdr": "sdr_2"}


def test_the_sdr_list_is_fetched_once_and_cached(rotation) -> None:
    calls = []

    def fetch() -> list[Sdr]:
        calls.append(1)
        return roster(2)

    for i in range(10):
        rotation.pick(f"r{i}", Policy(), fetch)
    assert len(calls) == 1
    rotation.invalidate()
    rotation.pick("r-after", Policy(), fetch)
    assert len(calls) == 2


def test_adding_an_sdr_neither_resets_the_rotation_nor_floods_the_newcomer(rotation) -> None:
    picks(rotation, roster(3), 30)
    rotation.store_roster(roster(4))
    chosen = picks(rotation, roster(4), 40, start=30)
    counts = Counter(chosen)
    assert counts == {"sdr_1": 10, "sdr_2": 10, "sdr_3": 10, "sdr_4": 10}
    # the newcomer is served in turn, not all at once
    assert chosen[:4].count("sdr_4") <= 1


def test_removing_or_disconnecting_an_sdr_keeps_the_others_even(rotation) -> None:
    before = picks(rotation, roster(4), 5)
    assert before == ["sdr_1", "sdr_2", "sdr_3", "sdr_4", "sdr_1"]
    rotation.store_roster(roster(4, disconnected=(3,)))
    after = picks(rotation, roster(4, disconnected=(3,)), 31, start=5)
    assert "sdr_3" not in after
    for n in range(1, len(after) + 1):  # at every step, the remaining SDRs stay within one
        counts = Counter(before + after[:n])
        remaining = [counts[s] for s in ("sdr_1", "sdr_2", "sdr_4")]
        assert max(remaining) - min(remaining) <= 1, (n, counts)


def test_nobody_eligible_raises_with_each_reason(rotation) -> None:
    with pytest.raises(NoEligibleSdr) as caught:
        rotation.pick("r", Policy(), lambda: roster(2, disconnected=(1, 2)))
    assert caught.value.excluded == {"sdr_1": "not_connected", "sdr_2": "not_connected"}


def test_a_forgotten_pick_is_picked_again(rotation) -> None:
    sdrs = roster(2)
    first = rotation.pick("r", Policy(), lambda: sdrs)
    rotation.forget("r")
    second = rotation.pick("r", Policy(), lambda: sdrs)
    assert second.kind == "picked"
    assert second.sdr_id != first.sdr_id


def test_every_pick_is_recorded_in_the_capped_decision_stream(rotation, fake_redis) -> None:
    picks(rotation, roster(2, disconnected=(2,)), 3)
    entries = fake_redis.xrange(KEYS.decisions)
    assert len(entries) == 3
    fields = entries[0][1]
    assert fields[b"winner"] == b"sdr_1"
    assert fields[b"rule"] == b"rotation"
    assert b"not_connected" in fields[b"excluded"]


@pytest.mark.parametrize(
    ("email", "by", "expected"),
    [
        ("Jo@Acme.io", "domain", "acme.io"),
        ("jo@gmail.com", "domain", None),
        ("jo@acme.io", "email", "jo@acme.io"),
        ("jo@acme.io", "none", None),
        (None, "domain", None),
        ("not-an-address", "domain", None),
    ],
)
def test_account_of(email, by, expected) -> None:
    assert account_of(email, by, frozenset({"gmail.com"})) == expected


def test_a_reroute_attempt_skips_who_had_the_reply_ignores_done_and_counts(
    rotation, fake_redis
) -> None:
    sdrs = roster(3)
    first = rotation.pick("rpl_r", Policy(), lambda: sdrs)
    fake_redis.set(KEYS.done("rpl_r"), '{"outcome": "assigned", "sdr": "sdr_1"}')
    assert rotation.pick("rpl_r", Policy(), lambda: sdrs).kind == "done"  # attempt 1: as today
    second = rotation.pick("rpl_r", Policy(), lambda: sdrs, attempt=2, never={first.sdr_id})
    assert second.kind == "picked" and second.sdr_id != first.sdr_id
    assert second.excluded == {str(first.sdr_id): "had_reply"}
    again = rotation.pick("rpl_r", Policy(), lambda: sdrs, attempt=2, never={first.sdr_id})
    assert (again.kind, again.sdr_id) == ("prior", second.sdr_id)  # remembered per attempt
    assert sum(s.get("count", 0) for s in rotation.state().values()) == 2  # a pick like any other
    third = rotation.pick(
        "rpl_r", Policy(), lambda: sdrs, attempt=3, never={first.sdr_id, second.sdr_id}
    )
    assert third.sdr_id not in {first.sdr_id, second.sdr_id}
    with pytest.raises(NoEligibleSdr):
        rotation.pick("rpl_r", Policy(), lambda: sdrs, attempt=4, never={"sdr_1", "sdr_2", "sdr_3"})


def test_the_sdr_cache_is_refreshed_ahead_in_the_background_once(rotation, fake_redis) -> None:
    """In the last third of the cache's life a pick starts one background refresh (one for all
    the picks meanwhile, and one process through the Redis claim); no pick waits for it."""
    gate, calls = threading.Event(), []

    def slow_fetch() -> list[Sdr]:
        calls.append(1)
        gate.wait(10)  # Leadterra answering slowly: the picks below must not wait for it
        return roster(3)

    rotation.store_roster(roster(2))
    assert picks(rotation, roster(9), 4) == ["sdr_1", "sdr_2"] * 2  # fresh: no refresh
    fake_redis.pexpire(KEYS.sdr_cache, 9_000)  # under a third of the 30 s left
    picked = [str(rotation.pick(f"ahead_{i}", Policy(), slow_fetch).sdr_id) for i in range(20)]
    assert set(picked) == {"sdr_1", "sdr_2"}  # served from the cache while the refresh runs
    assert calls == [1]
    gate.set()
    wait_until(lambda: rotation.cached_roster() == [(f"sdr_{i}", True) for i in (1, 2, 3)], 5)
    assert 29_000 < fake_redis.pttl(KEYS.sdr_cache) <= 30_000
    wait_until(lambda: rotation._ahead_lock.acquire(blocking=False), 5)  # the thread ended


def test_another_process_refreshing_means_this_one_does_not(rotation, fake_redis) -> None:
    rotation.store_roster(roster(2))
    fake_redis.pexpire(KEYS.sdr_cache, 5_000)
    fake_redis.set(KEYS.sdr_refreshing, "1", px=10_000)  # claimed elsewhere
    calls = []
    rotation.pick("other_1", Policy(), lambda: calls.append(1) or roster(3))
    assert calls == []


def test_a_failed_refresh_ahead_leaves_the_cache_to_expire(rotation, fake_redis) -> None:
    rotation.store_roster(roster(2))
    fake_redis.pexpire(KEYS.sdr_cache, 5_000)

    def failing() -> list[Sdr]:
        raise RuntimeError("Leadterra is down")

    assert rotation.pick("fail_1", Policy(), failing).sdr_id == "sdr_1"
    wait_until(lambda: rotation._ahead_lock.acquire(blocking=False), 5)  # the thread ended
    assert rotation.cached_roster() == [("sdr_1", True), ("sdr_2", True)]
    assert 0 < fake_redis.pttl(KEYS.sdr_cache) <= 5_000  # not extended
