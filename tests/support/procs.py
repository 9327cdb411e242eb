"""Real processes for integration and end-to-end tests: started, watched, logged, cleaned up.

`Stack` starts the Procfile's commands (or any argv) with a shared environment, writes each
process's output to its own log file, and kills every process group on teardown. Log lines are
parsed as JSON so tests can assert on the events the service writes.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's process types and their commands."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(10)


class Stack:
    """A set of processes sharing one environment."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": "json",
            **env,
        }
        self.procs: list[Proc] = []
        self._count = 0

    def start(self, name: str, argv: list[str] | str, **env: str) -> Proc:
        self._count += 1
        log_path = self.log_dir / f"{self._count:02d}-{name}.log"
        command = argv if isinstance(argv, list) else ["sh", "-c", f"exec {argv}"]
        full_env = {**self.env, **env}
        handle = log_path.open("wb")
        popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(name, popen, log_path, env)
        self.procs.append(proc)
        return proc

    def start_procfile(self, name: str, **env: str) -> Proc:
        return self.start(name, procfile()[name], **env)

    def all_events(self) -> list[dict[str, Any]]:
        return [event for proc in self.procs for event in proc.events()]

    def all_text(self) -> str:
        return "\n".join(proc.text() for proc in self.procs)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def wait_http(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    """Poll `url` until it answers (any status), failing early if `proc` died."""

    def probe() -> bool:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited early:\n{proc.text()[-3000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return True
        except httpx.HTTPError:
            return False

    wait_until(probe, timeout, 0.1, what=url)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def shell_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
