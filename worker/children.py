"""Child processes for the CLI's demo, the tests and the benchmarks: start, watch, stop them all.

    with Children(folder, {"REDIS_URL": url}) as kids:
        web = kids.start("web", [sys.executable, "-m", "worker", "web"])
        wait_http(f"{base}/healthz", alive=[web])        # worker/deadline.py
        web.events()                                     # its JSON log lines, as dicts

Each child runs in its own session and process group (so a Ctrl-C at the terminal reaches only
the parent, and a stop reaches whatever the child started), with its output in its own log file
in `folder` (`01-web.log`, numbered in start order, so a restarted process keeps both logs).
A stop sends SIGTERM to the group, SIGKILL after a timeout, and then SIGKILL to whatever is still
in the group. Leaving the block stops every child, newest first, then runs the `on_exit`
cleanups. With `interrupt_on_sigterm` a SIGTERM to the parent becomes a KeyboardInterrupt inside
the block, so being terminated cleans up the same way as Ctrl-C. `wait_for_interrupt()` keeps
them up until then (the demo's `--keep`).

Errors: `ChildExited` (a `RuntimeError`, with the child's log tail) from `check_alive()`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from worker.deadline import wait_until

#: where this interpreter's console scripts (`leadrouter`) are, first on the children's PATH
BIN = Path(sys.executable).parent


class ChildExited(RuntimeError):
    """Raised when a child that should be running has exited; the message ends with its log."""


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Child:
    """One process, leader of its own process group, writing to `log_path`."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return self.text()[-chars:]

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines of its log (the service logs JSON with LOG_FORMAT=json)."""
        found = []
        for line in self.text().splitlines():
            if line.lstrip().startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(line))
        return found

    def check_alive(self) -> None:
        if not self.alive():
            raise ChildExited(f"{self.name} exited with {self.returncode}:\n{self.tail()}")

    def signal(self, sig: int) -> None:
        """Send `sig` to its process group, if it is still running."""
        if self.alive():
            _killpg(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to its group, SIGKILL after `timeout`, then SIGKILL to whatever is left."""
        if self.stopped:
            return
        if self.alive():
            _killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(self.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(5)
        _killpg(self.pid, signal.SIGKILL)  # grandchildren that outlived it
        self.stopped = True


class Children:
    """Children sharing one environment and log folder; all stopped when the block ends."""

    def __init__(
        self,
        folder: Path,
        env: Mapping[str, str] | None = None,
        *,
        cwd: Path | None = None,
        interrupt_on_sigterm: bool = False,
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": "json",
            **(env or {}),
        }
        self.cwd = cwd
        self.interrupt_on_sigterm = interrupt_on_sigterm
        self._started: list[Child] = []
        self._cleanups: list[Callable[[], object]] = []
        self._previous: Any = None

    def start(
        self, name: str, command: Sequence[str] | str, env: Mapping[str, str] | None = None
    ) -> Child:
        """Start `command` (an argv, or a shell command line as in a Procfile) as `name`."""
        argv = ["sh", "-c", f"exec {command}"] if isinstance(command, str) else list(command)
        log_path = self.folder / f"{len(self._started) + 1:02d}-{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, popen, log_path)
        self._started.append(child)
        return child

    def __iter__(self) -> Iterator[Child]:
        """Every child started, oldest first (stopped ones too: their logs stay readable)."""
        return iter(list(self._started))

    def check_alive(self) -> None:
        """Raise `ChildExited` for the first child that exited without being stopped."""
        for child in self._started:
            if not child.stopped:
                child.check_alive()

    def wait_for_interrupt(self, interval: float = 0.5) -> None:
        """Block until Ctrl-C (or SIGTERM, with `interrupt_on_sigterm`), then return; a child
        that exits meanwhile raises `ChildExited`."""
        with contextlib.suppress(KeyboardInterrupt):
            wait_until(lambda: None, math.inf, interval, what="Ctrl-C", alive=[self])

    def on_exit(self, cleanup: Callable[[], object]) -> None:
        """Run `cleanup` when the block ends, after the children are stopped."""
        self._cleanups.append(cleanup)

    def stop_all(self, timeout: float = 10.0) -> None:
        for child in reversed(self._started):
            child.stop(timeout)
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        self._cleanups.clear()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def __enter__(self) -> Children:
        if self.interrupt_on_sigterm:
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop_all()
        finally:
            if self.interrupt_on_sigterm:
                signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)
