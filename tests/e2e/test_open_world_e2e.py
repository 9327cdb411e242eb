"""The open-world failure policy through real processes: whatever a Leadterra call raises inside a
real worker, or however it garbles or drips its answer, each reply ends assigned or dead-lettered,
never missing, and no task run outlives its deadline.

One deployment for the module (tests/reliability/scenarios.py: `raising_service`): the receiver,
beat, the sandbox, and a real worker process (`tests/support/raising_worker.py`: the Procfile's
worker, whose httpx transport raises what a test scripts in Redis). Where each thing runs:
exceptions are built and raised in the worker process, inside the client's call; garbled and
dripped answers are written by the sandbox over real HTTP; Hypothesis draws the cases here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability import scenarios
from tests.support.raising_worker import build, script
from tests.support.service import Service
from worker.deadline import wait_until
from worker.jobs.orphans import reply_in
from worker.jobs.queueing import assign_message
from worker.jobs.reliable import type_name
from worker.keys import QUEUE_ASSIGN, text
from worker.leadterra.answers import FAILURES, UNSENDABLE, failure

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ASSIGN = "POST /v1/replies/{id}/assign"
MAX_RETRIES = int(scenarios.OPEN_WORLD_ENV["MAX_RETRIES"])
KEY = "sk_test_workspace"
BASES = [
    *(f"builtins.{name}" for name in (
        "Exception", "KeyError", "ValueError", "TypeError", "ZeroDivisionError", "RecursionError",
        "RuntimeError", "StopIteration", "AttributeError", "AssertionError", "LookupError",
        "NotImplementedError", "UnicodeEncodeError", "UnicodeDecodeError", "OSError",
        "ConnectionResetError", "TimeoutError", "EOFError", "BufferError", "ImportError",
    )),
    *(f"httpx.{name}" for name in (
        "DecodingError", "RemoteProtocolError", "LocalProtocolError", "TooManyRedirects",
        "InvalidURL", "UnsupportedProtocol", "ReadTimeout", "ConnectError", "ProxyError",
        "HTTPStatusError", "CookieConflict", "HTTPError",
    )),
    "local.Unprintable",
    "local.Huge",
]  # fmt: skip
MESSAGES = st.one_of(
    st.text(max_size=40),
    st.sampled_from([KEY, f"key={KEY!r}", json.dumps({"auth": f"Bearer {KEY}"}), "\n\t\x00"]),
    st.builds(lambda a, b: f"{a}{KEY}{b}", st.text(max_size=5), st.text(max_size=5)),
)
SPECS = st.fixed_dictionaries(
    {
        "base": st.sampled_from(BASES),
        "name": st.none() | st.text(min_size=1, max_size=24),
        "message": MESSAGES,
        "times": st.integers(min_value=0, max_value=MAX_RETRIES + 2),
    }
)
NUMBERS = itertools.count(1)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = scenarios.raising_service(Path(tmp_path_factory.mktemp("open-world")))
    yield service
    service.close()
    for child in service.children:  # pytest shows this only when a test failed
        print(f"--- {child.name} (exit {child.returncode}) ---")
        print(child.tail(3000))


def expected(spec: dict[str, Any]) -> tuple[str, str | None]:
    """Where a reply whose assign raises `spec` ends: ("assigned", None) or ("dead_lettered",
    the dead letter's error_type), from the client's mapping and the task policy."""
    raised = build(spec)
    if spec["times"] == 0:
        return "assigned", None
    if isinstance(raised, UNSENDABLE):
        return "dead_lettered", "UnsendableRequest"  # permanent: at once
    if spec["times"] <= MAX_RETRIES:
        return "assigned", None
    if isinstance(raised, FAILURES):
        return "dead_lettered", type(failure(raised, ASSIGN)).__name__
    return "dead_lettered", type_name(raised)


def enqueue(service: Service, specs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One reply per spec, scripted and put on the assign queue as the receiver would."""
    client, prefix = service.redis(), service.keys.prefix
    replies = {f"rpl_ow_{next(NUMBERS):05d}": spec for spec in specs}
    service.control.seed_replies([{"id": r} for r in replies])
    for reply_id, spec in replies.items():
        script(client, prefix, reply_id, spec)
        client.lpush(service.keys.queue("assign"), assign_message({"id": reply_id}))
    return replies


def outcome(service: Service, replies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    handed = [h["replyId"] for h in service.handoffs()]
    dead = {
        e["id"].removeprefix("reply:"): e for e in scenarios.dead_lettered(service, set(replies))
    }
    return {r: ("assigned" if r in handed else None, dead.get(r), handed.count(r)) for r in replies}


@settings(
    max_examples=40,
    derandomize=True,  # the same cases on every run, whatever pytest-randomly's seed
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure reports its case as is
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(specs=st.lists(SPECS, min_size=1, max_size=4))
def test_any_exception_raised_in_a_real_worker_ends_assigned_or_dead_lettered(
    deployment: Service, specs: list[dict[str, Any]]
) -> None:
    replies = enqueue(deployment, specs)
    wait_until(
        lambda: scenarios.settled(deployment, set(replies)),
        60,
        0.1,
        what=f"{len(replies)} replies assigned or dead-lettered (never missing)",
        alive=deployment.procs("worker"),
    )
    for reply_id, (assigned, dead, handoffs) in outcome(deployment, replies).items():
        where, error_type = expected(replies[reply_id])
        if where == "assigned" and dead and dead["error"].endswith(": timed out"):
            continue  # a loaded machine's own timeout took a retry the case counted on
        assert (assigned, handoffs) == (("assigned", 1) if where == "assigned" else (None, 0))
        if where == "dead_lettered":
            assert dead is not None and dead["error_type"] == error_type, (replies[reply_id], dead)
            assert KEY not in json.dumps(dead)
        else:
            assert dead is None


def test_the_garbled_answers_row(deployment: Service) -> None:
    row = scenarios.garbled_answers_on(deployment)
    print(row)
    assert (row.lost, row.duplicates, row.assigned) == (0, 0, row.events_in)
    assert row.dead_lettered == 3  # the wrong-shaped answers, replayed
    assert row.checks["dead_letter_types"] == ["UnexpectedAnswer"]
    assert row.checks["retries"] >= row.checks["garbled"] - row.dead_lettered
    assert row.checks["already_assigned"] >= 4  # garbled after the assign took effect
    assert row.checks["replay_exit"] == 0


def test_the_arbitrary_exception_row(deployment: Service) -> None:
    row = scenarios.arbitrary_exception_on(deployment)
    print(row)
    assert (row.lost, row.duplicates, row.assigned) == (0, 0, row.events_in)
    assert row.dead_lettered == row.checks["expected_dead"]
    assert row.checks["dead_letter_types"] == sorted(
        [
            "PoisonMessage",  # the BaseException that never stops: poison after 2 deliveries
            "tests.support.raising_worker.LibraryBug",
            "tests.support.raising_worker.Huge",
            "tests.support.raising_worker.Odd Name \u2603",
            "UnsendableRequest",
            "UnsendableRequest",
        ]
    )
    assert row.checks["requeued"] >= 6  # SystemExit, KeyboardInterrupt, CancelledError...
    assert row.checks["worker_alive"]
    assert not row.checks["key_in_dead_letters"]
    assert row.checks["replay_exit"] == 0


def test_a_dripped_answer_is_cut_at_the_calls_deadline_and_retried(deployment: Service) -> None:
    [reply_id] = enqueue_plain(deployment, garble="drip")
    [retry] = wait_until(
        lambda: [e for e in deployment.events("reply.retry") if e.get("reply_id") == reply_id],
        60,
        what="the dripped call given up",
    )
    assert retry["error"] == f"{ASSIGN}: no whole answer within its deadline (4 s)"
    deployment.wait_assigned({reply_id}, timeout=30)  # the retry found a clean answer
    assert scenarios.dead_lettered(deployment, {reply_id}) == []


def test_a_run_is_cut_at_the_tasks_deadline_in_a_real_worker(deployment: Service) -> None:
    """A 3 s wait for the global rate limit (another worker's 429 pause), then a dripped assign:
    the call's own deadline (4 s) is later than what the run has left (6 s - 3 s), so the
    task's deadline ends it, and the run is retried."""
    client = deployment.redis()
    seconds, micros = client.time()  # the pause is on Redis's clock, as the gate reads it
    client.set(deployment.keys.rate_pause, str(seconds + micros / 1e6 + 3.0), px=5000)
    [reply_id] = enqueue_plain(deployment, garble="drip")
    [retry] = wait_until(
        lambda: [e for e in deployment.events("reply.retry") if e.get("reply_id") == reply_id],
        60,
        what="the run cut at its deadline",
    )
    assert retry["error_type"] == "OutOfTime"
    assert retry["error"].startswith(f"{ASSIGN}: the time budget ran out")
    deployment.wait_assigned({reply_id}, timeout=30)


def assign_work_left(service: Service) -> int:
    """Assign messages still queued, held by the worker (countdown retries too) or delayed:
    the module's deployment is shared, and an earlier test's retries may still be running."""
    client, keys = service.redis(), service.keys
    held = [raw for raw in client.hvals(keys.unacked) if reply_in(raw)]
    members = cast(list[bytes], client.zrange(keys.delayed, 0, -1))
    delayed = [m for m in members if text(m).startswith(QUEUE_ASSIGN + "\n")]
    return int(client.llen(keys.queue(QUEUE_ASSIGN))) + len(held) + len(delayed)


def enqueue_plain(service: Service, garble: str) -> list[str]:
    """One reply whose first assign answer the sandbox garbles (a slow drip: over 20 s). The
    garble goes to the next assign call whoever makes it: so first, no other assign work."""
    wait_until(lambda: assign_work_left(service) == 0, 60, what="no other assign work")
    reply_id = f"rpl_drip_{next(NUMBERS):05d}"
    service.control.seed_replies([{"id": reply_id}])
    service.control.garble_next(ASSIGN, 1, garble, drip_ms=1000)
    service.redis().lpush(service.keys.queue("assign"), assign_message({"id": reply_id}))
    return [reply_id]


def test_the_raising_worker_is_the_procfiles_worker_when_nothing_is_scripted(
    deployment: Service,
) -> None:
    """The harness changes nothing else: a webhook through the receiver is simply assigned."""
    [reply_id] = enqueue(deployment, [{"base": "builtins.KeyError", "times": 0, "message": ""}])
    deployment.wait_assigned({reply_id}, timeout=30)
    answer = httpx.get(f"{deployment.base_url}/healthz", timeout=5)
    assert answer.status_code == 200
