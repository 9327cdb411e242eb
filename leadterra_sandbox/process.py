"""Start the sandbox as a child process (for tests, the demo and the benchmarks).

    with SandboxProcess.start(["--sdrs", "6"]) as sandbox:
        sandbox.api_url, sandbox.control.seed_replies(...)

It binds free ports (`--port 0`), reads the start-up line for the URLs, waits for the control
API's /health, and terminates the process (then kills it) on exit.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

from leadterra_sandbox.client import SandboxControl

STARTED = re.compile(r"on (http://\S+) \(control (http://\S+)\)")


def _first_line(stream: IO[str], timeout: float) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else ""


class SandboxProcess:
    def __init__(self, proc: subprocess.Popen[str], api_url: str, control_url: str) -> None:
        self.proc = proc
        self.api_url = api_url
        self.control_url = control_url
        self.control = SandboxControl(control_url)

    @classmethod
    def start(
        cls,
        args: Sequence[str] = (),
        timeout: float = 20.0,
        log_path: str | None = None,
        python: str = sys.executable,
    ) -> SandboxProcess:
        """`python -m leadterra_sandbox --port 0 [args]`, ready to use; its log to `log_path`."""
        command = [python, "-m", "leadterra_sandbox", "--port", "0", *args]
        log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log or subprocess.DEVNULL,
                text=True,
            )
        finally:
            if log is not None:
                log.close()
        assert proc.stdout is not None
        match = STARTED.search(_first_line(proc.stdout, timeout))
        if match is None:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the sandbox did not start (exit code {proc.poll()})")
        sandbox = cls(proc, match.group(1), match.group(2))
        try:
            sandbox.control.wait_ready(timeout)
        except Exception:
            sandbox.stop()
            raise
        return sandbox

    def stop(self, timeout: float = 5.0) -> None:
        self.control.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
