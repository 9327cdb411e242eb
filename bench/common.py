"""Process management and the small helpers every scenario shares.

`Procs` starts each child in its own session (so a Ctrl-C at the terminal reaches only us) and
kills every process group it started when the block ends, on an exception, on Ctrl-C or on
SIGTERM. CPU and memory figures come from /proc (bench/procfs.py). `Outcome` is what a scenario
hands back: its table rows and its data for bench/results/latest.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"
_STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress on stderr, stamped with the seconds since the bench started."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def events(self) -> Iterator[dict[str, Any]]:
        """The JSON lines of its log (the service logs JSON with LOG_FORMAT=json)."""
        if self.log_path is None or not self.log_path.exists():
            return
        with self.log_path.open(errors="replace") as lines:
            for line in lines:
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        yield json.loads(line)


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Procs:
    """Children started in their own process groups; every group is killed on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self._cleanups: list[Callable[[], None]] = []
        self._previous: Any = None

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        log: bool = True,
        stdout: int | None = None,
    ) -> Proc:
        log_path = self.log_dir / f"{name}.log" if log else None
        handle = log_path.open("ab") if log_path else subprocess.DEVNULL
        try:
            popen = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdout=stdout if stdout is not None else handle,
                stderr=handle,
                start_new_session=True,
            )
        finally:
            if log_path is not None and not isinstance(handle, int):
                handle.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 10.0) -> None:
        """SIGTERM to its group, SIGKILL after `timeout`."""
        if proc.alive():
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        _killpg(proc.pid, signal.SIGKILL)  # anything left in its group
        if proc in self.procs:
            self.procs.remove(proc)

    def on_exit(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=5.0)
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        self._cleanups.clear()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def __enter__(self) -> Procs:
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
        signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)


def run_json_child(
    procs: Procs, name: str, module: str, spec: dict[str, Any], timeout: float, what: str
) -> dict[str, Any]:
    """Run `python -m module SPEC OUT` as a measured child: the spec in, its JSON report out."""
    spec_path = procs.log_dir / f"{name}.spec.json"
    out_path = procs.log_dir / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    proc = procs.start(name, [sys.executable, "-m", module, str(spec_path), str(out_path)])
    try:
        proc.popen.wait(timeout)
    finally:
        procs.stop(proc)
    if proc.popen.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"{what} failed ({proc.popen.returncode}):\n{proc.tail()}")
    report: dict[str, Any] = json.loads(out_path.read_text())
    return report


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.1,
    alive: Iterable[Proc] = (),
) -> Any:
    """Poll `predicate()` until truthy (its value is returned); fail early if a proc died."""
    deadline = time.monotonic() + timeout
    watched = list(alive)
    while True:
        value = predicate()
        if value:
            return value
        for proc in watched:
            proc.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(interval)


# -- numbers and the machine ------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[rank]


def latency_summary(seconds: Iterable[float]) -> dict[str, float | None]:
    """p50 / p99 / max in milliseconds."""
    values = sorted(seconds)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "p50_ms": ms(percentile(values, 0.50)),
        "p99_ms": ms(percentile(values, 0.99)),
        "max_ms": ms(values[-1] if values else None),
        "count": len(values),
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--short"))}


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def fresh_log_dir(name: str) -> Path:
    """bench/results/logs/<name>, emptied first (git-ignored; kept for inspection)."""
    folder = LOGS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def raise_file_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Outcome:
    """What a scenario hands back: table rows and its full data for the JSON file."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def row(
        self,
        metric: str,
        value: Any,
        unit: str = "",
        *,
        reference: str = "",
        ratio: float | None = None,
        target: str = "",
        met: bool | str | None = None,
    ) -> None:
        """One table row; `met` is True/False against `target`, or a word of its own."""
        status = (
            met if isinstance(met, str) else "" if met is None else ("met" if met else "MISSED")
        )
        self.rows.append(
            {
                "scenario": self.name,
                "metric": metric,
                "value": value,
                "unit": unit,
                "reference": reference,
                "ratio": None if ratio is None else round(ratio, 3),
                "target": target,
                "status": status,
            }
        )
