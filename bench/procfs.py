"""Measurements from /proc: CPU-seconds of process trees, memory, sockets, machine load.

CPU is user + system time of every thread of a process and of its descendants, read before and
after a window; the machine's busy time (all processes, /proc/stat) over the same window tells
how much of the two cores other work took.
"""

from __future__ import annotations

import contextlib
import os
import time

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (a scan of /proc: cheap at a few hundred processes)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads); 0 once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in (pid, *children(pid)))


def local_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets `pid` (and its descendants) hold open."""
    inodes: set[str] = set()
    for p in (pid, *children(pid)):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{p}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{p}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _status_mb(pid: int, field: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), in MiB."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float | None:
    """The process's resident set now (VmRSS: its own pages and the shared ones it maps), MiB."""
    return _status_mb(pid, "VmRSS")


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine spent busy (all cores, every process) since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICK


class CpuMeter:
    """CPU-seconds of several named process trees between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._before: dict[str, float] = {}
        self._t0 = 0.0
        self.used: dict[str, float] = {}
        self.elapsed = 0.0
        self._machine = 0.0
        self.machine = 0.0

    def start(self) -> CpuMeter:
        self._before = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_busy_seconds()
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        self.elapsed = time.perf_counter() - self._t0
        self.used = {
            name: round(tree_cpu_seconds(pid) - self._before[name], 3)
            for name, pid in self.pids.items()
        }
        self.machine = round(machine_busy_seconds() - self._machine, 3)
        return self.used

    def others_cores(self) -> float:
        """Cores busy with processes outside the measured trees (other work on the machine)."""
        return round((self.machine - sum(self.used.values())) / max(self.elapsed, 1e-9), 2)

    def cores(self) -> dict[str, float]:
        """Average cores each tree used over the window (1.0 = one core busy throughout)."""
        return {name: round(cpu / max(self.elapsed, 1e-9), 2) for name, cpu in self.used.items()}
