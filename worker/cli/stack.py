"""Child processes for `leadrouter run` and `demo`: start, watch, stop them all on exit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

#: the service's processes; the Procfile and docker-compose.yml run the same commands
SERVICE = {"web": "leadrouter web", "worker": "leadrouter worker", "beat": "leadrouter beat"}


def leadrouter_argv(command: str) -> list[str]:
    """`leadrouter web` as an argv that works from a venv without it on the PATH."""
    _, sub = command.split(" ", 1)
    return [sys.executable, "-m", "worker", *sub.split()]


class Children:
    """Processes writing to log files in `folder`; all stopped when the block ends."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "LOG_FORMAT": "json"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = self.log(name).read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def wait_http(self, url: str, timeout: float = 30.0, ok: tuple[int, ...] = ()) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(url, timeout=1.0)
                if not ok or response.status_code in ok:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
