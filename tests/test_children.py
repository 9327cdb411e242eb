"""worker/children.py and worker/deadline.py with real short-lived processes."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from worker.children import ChildExited, Children
from worker.deadline import DeadlineExceeded, wait_http, wait_until
from worker.embedded_redis import free_port

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)
# The leader prints the pid of a grandchild that ignores SIGTERM, then exits on SIGTERM itself.
LEAVES_A_GRANDCHILD = "(trap '' TERM; exec sleep 60) & echo $!; exec sleep 60"


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def gone(pid: int) -> bool:
    """No such process, or only its zombie is left."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    with Children(tmp_path) as kids:
        child = kids.start("stubborn", [sys.executable, "-c", IGNORES_SIGTERM])
        wait_until(lambda: "ready" in child.text(), 10, 0.02, what="the handler installed")
        started = time.monotonic()
        child.stop(timeout=0.5)
        assert time.monotonic() - started >= 0.5
        assert child.returncode == -signal.SIGKILL
        assert child.stopped


def test_a_grandchild_left_in_the_group_is_killed_at_stop(tmp_path: Path) -> None:
    with Children(tmp_path) as kids:
        child = kids.start("parent", ["sh", "-c", LEAVES_A_GRANDCHILD])
        line = wait_until(lambda: child.text().strip(), 10, 0.02, what="the grandchild's pid")
        grandchild = int(line)
        # once it runs `sleep`, its trap is set: only SIGKILL can end it
        wait_until(lambda: command(grandchild) == "sleep", 10, 0.02, what="the grandchild's trap")
    assert child.returncode == -signal.SIGTERM  # the leader went at SIGTERM, no timeout needed
    wait_until(lambda: gone(grandchild), 5, 0.02, what="the grandchild killed")


def test_children_stop_newest_first_and_then_run_the_cleanups(tmp_path: Path) -> None:
    order: list[str] = []
    with Children(tmp_path) as kids:
        first = kids.start("first", ["sleep", "60"])
        second = kids.start("second", ["sleep", "60"])
        kids.on_exit(lambda: order.append(f"cleanup, first alive: {first.alive()}"))
    assert [c.name for c in kids] == ["first", "second"]
    assert not first.alive() and not second.alive()
    assert order == ["cleanup, first alive: False"]
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["01-first.log", "02-second.log"]


def test_a_child_logs_its_output_and_json_lines_read_as_events(tmp_path: Path) -> None:
    script = "print('starting'); print('{\"event\": \"ready\", \"n\": 1}'); print('{broken')"
    with Children(tmp_path, {"GREETING": "hi"}) as kids:
        child = kids.start("talker", [sys.executable, "-c", script])
        wait_until(lambda: child.returncode is not None, 10, 0.02, what="the child to finish")
        env = kids.start("env", "echo $GREETING $LOG_FORMAT", {"GREETING": "hello"})
        wait_until(lambda: env.text(), 10, 0.02, what="the echo")
    assert child.events() == [{"event": "ready", "n": 1}]
    assert child.tail(7) == "broken\n"
    assert env.text() == "hello json\n"


def test_check_alive_names_the_child_that_died_with_its_log(tmp_path: Path) -> None:
    with Children(tmp_path) as kids:
        kids.start("steady", ["sleep", "60"]).stop()  # stopped on purpose: not a failure
        kids.start("crasher", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
        with pytest.raises(ChildExited, match=r"crasher exited with 3:\nboom"):
            wait_until(lambda: False, 10, 0.02, alive=[kids])


def test_wait_until_returns_the_probes_first_truthy_value() -> None:
    answers = iter([None, 0, "", "found", "later"])
    assert wait_until(lambda: next(answers), 5, 0.01) == "found"


def test_wait_until_raises_at_the_deadline_naming_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"after 0.2 s waiting for the moon: \[\]"):
        wait_until(list, 0.2, 0.05, what="the moon")
    assert time.monotonic() - started >= 0.2
    assert issubclass(DeadlineExceeded, TimeoutError)


def test_wait_until_fails_early_when_a_watched_child_died(tmp_path: Path) -> None:
    with Children(tmp_path) as kids:
        child = kids.start("quitter", [sys.executable, "-c", "print('bye'); raise SystemExit(2)"])
        started = time.monotonic()
        with pytest.raises(ChildExited, match=r"quitter exited with 2:\nbye"):
            wait_until(lambda: False, 60, 0.02, what="never", alive=[child])
    assert time.monotonic() - started < 30


def test_wait_http_says_what_the_last_attempt_got() -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"
    with pytest.raises(DeadlineExceeded, match=rf"{url} to answer with 200.*ConnectError"):
        wait_http(url, 0.3, ok=(200,))


def test_sigterm_becomes_keyboard_interrupt_and_still_stops_the_children(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), Children(tmp_path, interrupt_on_sigterm=True) as kids:
        child = kids.start("sleeper", ["sleep", "60"])
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: False, 10, 0.02, what="the signal")
    assert not child.alive()
    assert signal.getsignal(signal.SIGTERM) == before


def _waiting(thread_id: int) -> bool:
    """Whether that thread is inside `wait_for_interrupt`'s wait (so its handler is on)."""
    frame = sys._current_frames().get(thread_id)
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return {"wait_for_interrupt", "wait_until"} <= names


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_wait_for_interrupt_keeps_the_children_up_until_ctrl_c_or_sigterm(
    tmp_path: Path, sig: int
) -> None:
    main = threading.get_ident()

    def interrupt() -> None:
        wait_until(lambda: _waiting(main), 10, 0.01, what="the demo's --keep wait")
        os.kill(os.getpid(), sig)

    # a shell that started pytest in the background ignores SIGINT: Ctrl-C's handler, as a
    # terminal's foreground process has it
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Children(tmp_path, interrupt_on_sigterm=True) as kids:
            child = kids.start("sleeper", ["sleep", "60"])
            threading.Thread(target=interrupt, daemon=True).start()
            kids.wait_for_interrupt(interval=0.02)
            assert child.alive()  # the wait only returns; leaving the block stops them
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not child.alive()


def test_wait_for_interrupt_raises_when_a_child_exits(tmp_path: Path) -> None:
    with Children(tmp_path) as kids:
        kids.start("sleeper", ["sleep", "60"])
        kids.start("quitter", ["sh", "-c", "echo bye; exit 3"])
        with pytest.raises(ChildExited, match="quitter exited with 3"):
            kids.wait_for_interrupt(interval=0.02)
