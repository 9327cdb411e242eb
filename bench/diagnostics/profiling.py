"""py-spy recordings of a running process, summarised into what dominates its CPU.

`record()` starts `py-spy record --nonblocking --format raw` on a pid (raw = one collapsed stack
per line with its sample count). `summarize()` reads it back: the functions with the most samples
of their own (self), the functions on the most stacks (inclusive), and an owner per sample: walking
from the innermost frame outwards, the first frame from a known library or from our code owns the
sample, so `socket.sendall` under redis-py counts for redis-py and `json.dumps` under structlog
counts for logging.
"""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from worker.children import Child, Children

PY_SPY = str(Path(sys.executable).parent / "py-spy")
OWNERS = {
    "celery": "celery/kombu",
    "kombu": "celery/kombu",
    "billiard": "celery/kombu",
    "vine": "celery/kombu",
    "redis": "redis-py",
    "httpx": "httpx/httpcore",
    "httpcore": "httpx/httpcore",
    "h11": "httpx/httpcore",
    "anyio": "httpx/httpcore",
    "structlog": "logging",
    "logging": "logging",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "prometheus_client": "metrics",
    "worker": "service code (worker/)",
    "config": "service code (worker/)",
    "uvicorn": "uvicorn/starlette",
    "starlette": "uvicorn/starlette",
    "httptools": "uvicorn/starlette",
    "uvloop": "uvicorn/starlette",
    "bench": "bench",
}


# Ordered rules naming what a sample was doing: (bucket, substrings, match the leaf frame only).
# The first rule with a substring in the stack (or in its innermost frame) takes the sample.
Rule = tuple[str, tuple[str, ...], bool]
POOL_LEAVES = ("connection_pool.py", "is_idle", "has_expired", "is_socket_readable", "_synchron")
BUCKETS: dict[str, list[Rule]] = {
    "worker": [
        ("rate gate: GCRA Lua call", ("RateGate.",), False),
        ("Leadterra client creation (SSL context)", ("LeadterraClient.__init__",), False),
        ("httpcore pool bookkeeping (scans, socket checks, lock)", POOL_LEAVES, True),
        ("HTTP exchange: httpx + h11 + socket", ("LeadterraClient._call",), False),
        ("kombu ack + unacked pipelines (new Redis client each)", ("QoS.", "_or_acquire"), False),
        ("kombu consume loop: BRPOP, epoll, decode", ("kombu/",), False),
        ("delivery count pipeline", ("count_delivery",), False),
        ("rotation pick: Lua call", ("Rotation.",), False),
        ("record outcome pipeline (_finish)", ("_finish (",), False),
        ("logging (structlog)", ("structlog/", "logging/"), False),
        ("Celery task tracing + thread pool", ("celery/", "concurrent/futures"), False),
        ("service code, the rest", ("worker/",), False),
        ("redis-py client setup (partial stacks)", ("Redis.__init__", "CaseInsensitive"), False),
    ],
    "receiver": [
        ("Redis EVALSHA (redis-py asyncio)", ("AsyncScript", "redis/"), False),
        ("task message: json + base64 + uuid4", ("assign_message",), False),
        ("HMAC verify", ("signature.py",), False),
        ("parse + decide (json)", ("worker/receiver/webhook.py",), False),
        ("answer: JSONResponse + log + metrics", ("Receiver.answer",), False),
        ("read body (asyncio.timeout)", ("read_body",), False),
        ("handler, the rest", ("Receiver.webhook",), False),
        ("uvicorn response write", ("RequestResponseCycle.send",), False),
        ("Starlette routing + middleware", ("starlette/",), False),
        ("request id middleware (uuid4, contextvars)", ("RequestContext",), False),
        ("uvicorn/httptools protocol", ("uvicorn/", "httptools"), False),
        ("logging (structlog)", ("structlog/", "logging/"), False),
        ("asyncio wait_for/timeout machinery", ("wait_for", "Timeout.", "_ensure_future"), False),
        ("event loop (uvloop, asyncio)", ("asyncio/", "Runner.run"), False),
    ],
}


def stacks(path: Path) -> Iterator[tuple[str, int]]:
    """(stack, samples) for each line of a py-spy collapsed-stack file."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack, int(count)


def buckets(path: Path, kind: str) -> list[list[Any]]:
    """Share of samples per bucket of BUCKETS[kind], largest first."""
    found: Counter[str] = Counter()
    total = 0
    for stack, n in stacks(path):
        total += n
        frames = stack.split(";")
        name = next(
            (
                bucket
                for bucket, needles, leaf in BUCKETS[kind]
                if any(x in (frames[-1] if leaf else stack) for x in needles)
            ),
            "unattributed (partial stacks)",
        )
        found[name] += n
    return [[k, round(v / max(total, 1), 3)] for k, v in found.most_common()]


def record(
    procs: Children,
    name: str,
    pid: int,
    seconds: float,
    *,
    gil: bool = False,
    rate: int = 100,
    delay: float = 0,
) -> tuple[Child, Path]:
    """Start py-spy on `pid` for `seconds` after `delay`; wait on the Child, then summarize."""
    out = procs.folder / f"{name}.pyspy.txt"
    argv = [PY_SPY, "record", "--nonblocking", "--format", "raw", "-r", str(rate)]
    argv += ["-d", str(max(1, round(seconds))), "-p", str(pid), "-o", str(out)]
    if gil:
        argv.append("--gil")
    if delay:
        argv = ["sh", "-c", f"sleep {delay} && exec {shlex.join(argv)}"]
    return procs.start(f"py-spy-{name}", argv), out


def _package(frame: str) -> str:
    """`func (httpcore/_sync/http11.py:123)` -> `httpcore`; `<module> (<string>:1)` -> ``."""
    where = frame.rsplit(" (", 1)[-1]
    return where.split("/", 1)[0] if "/" in where else ""


def _short(frame: str) -> str:
    """Drop the line number, so every line of one function adds up."""
    name, _, where = frame.rpartition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if name else frame


def summarize(path: Path, top: int = 15, kind: str | None = None) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    total = 0
    for stack, n in stacks(path):
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        owner = next(
            (OWNERS[p] for p in map(_package, reversed(frames)) if p in OWNERS), "stdlib/other"
        )
        owners[owner] += n

    def share(counter: Counter[str], limit: int, skip_above: float = 1.0) -> list[list[Any]]:
        rows = [(k, v / total) for k, v in counter.most_common() if v / total <= skip_above]
        return [[k, round(v, 3)] for k, v in rows[:limit]]

    return {
        "samples": total,
        "buckets": buckets(path, kind) if kind else [],
        "owners": share(owners, len(owners)),
        "self": share(own, top),
        # frames on nearly every stack (thread bootstrap, event loop) say nothing: skip them
        "inclusive": share(inclusive, top + 10, skip_above=0.9),
    }


def describe(summary: dict[str, Any], lines: int = 8) -> str:
    """A few readable lines for progress output and the docs."""
    owners = ", ".join(f"{k} {v:.0%}" for k, v in summary["owners"][:6])
    tops = "; ".join(f"{k} {v:.1%}" for k, v in summary["self"][:lines])
    return f"{summary['samples']} samples. By owner: {owners}. Top self: {tops}"
