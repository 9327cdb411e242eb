"""The small helpers every scenario shares.

Processes are `Children` (worker/children.py, as for the CLI and the tests): each in its own
session and process group, every group killed when the scenario ends, fails, or is interrupted
by Ctrl-C or SIGTERM; `wait_until` (worker/deadline.py) waits on them. `children(name)` gives a
scenario its group and log folder. CPU and memory figures come from /proc (bench/procfs.py).
`Outcome` is what a scenario hands back: its table rows and its data for latest.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.children import Children

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"
_STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress on stderr, stamped with the seconds since the bench started."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- processes --------------------------------------------------------------------------------


def children(name: str) -> Children:
    """A scenario's processes, logging to bench/results/logs/<name> (emptied first; git-ignored,
    kept for inspection), run from the repository root; SIGTERM stops them as Ctrl-C does."""
    folder = LOGS / name
    shutil.rmtree(folder, ignore_errors=True)
    return Children(folder, cwd=ROOT, interrupt_on_sigterm=True)


def run_json_child(
    procs: Children, name: str, module: str, spec: dict[str, Any], timeout: float, what: str
) -> dict[str, Any]:
    """Run `python -m module SPEC OUT` as a measured child: the spec in, its JSON report out."""
    spec_path = procs.folder / f"{name}.spec.json"
    out_path = procs.folder / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    proc = procs.start(name, [sys.executable, "-m", module, str(spec_path), str(out_path)])
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{what} still running after {timeout:g} s") from None
    finally:
        proc.stop()
    if proc.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.tail()}")
    report: dict[str, Any] = json.loads(out_path.read_text())
    return report


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
