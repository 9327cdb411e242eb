"""How many requests per second the sandbox answers, at N concurrent keep-alive connections.

    python -m bench.loadcheck                  # starts its own sandbox
    python -m bench.loadcheck --connections 500 --seconds 10 --endpoint sdrs assign
    python -m bench.loadcheck --api http://127.0.0.1:8090 --control http://127.0.0.1:8091

The load generator is a bare asyncio protocol (one pre-built HTTP/1.1 request per send, the
answer read by Content-Length), so that it costs far less CPU per call than the server it
measures. When it started the sandbox itself it also reports the sandbox's CPU use over the
window: near 100% of one core means the figure is the sandbox's ceiling, not the generator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from leadterra_sandbox.client import SandboxControl
from leadterra_sandbox.process import SandboxProcess

REPLIES = 50_000
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)\r\n")


def take_response(buffer: bytes) -> tuple[int, bytes] | None:
    """The status of the first complete HTTP/1.1 response in `buffer`, and the bytes after it;
    None while it is incomplete. Shared with bench/loadgen.py."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    found = CONTENT_LENGTH.search(buffer, 0, end + 2)
    length = int(found.group(1)) if found else 0
    if len(buffer) < end + 4 + length:
        return None
    return int(buffer[9:12]), buffer[end + 4 + length :]


@dataclass
class Stats:
    measuring: bool = False
    running: bool = True
    done: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


class Connection(asyncio.Protocol):
    """One keep-alive connection sending request after request."""

    def __init__(self, make: Callable[[], bytes], stats: Stats) -> None:
        self.make, self.stats = make, stats
        self.buffer = b""
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.make())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        taken = take_response(self.buffer)
        if taken is None:
            return
        status, self.buffer = taken
        stats = self.stats
        if stats.measuring:
            stats.done += 1
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            stats.latencies.append(time.perf_counter() - self.sent)
        if stats.running:
            self._send()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stats.running:
            self.stats.errors += 1
        if not self.closed.done():
            self.closed.set_result(None)


def request_maker(endpoint: str, host: str, key: str, sdr_ids: list[str]) -> Callable[[], bytes]:
    auth = f"Authorization: Bearer {key}\r\nHost: {host}\r\n"
    if endpoint == "sdrs":
        raw = f"GET /v1/sdrs HTTP/1.1\r\n{auth}\r\n".encode()
        return lambda: raw
    if endpoint == "due":
        raw = (
            f"GET /v1/sdr/followups/due?limit=50 HTTP/1.1\r\nAuthorization: Bearer "
            f"{key}_{sdr_ids[0]}\r\nHost: {host}\r\n\r\n"
        ).encode()
        return lambda: raw
    counter = iter(range(1 << 62))

    def assign() -> bytes:
        n = next(counter)
        body = json.dumps(
            {
                "sdrId": sdr_ids[n % len(sdr_ids)],
                "category": "A",
                "skipIcpCheck": True,
                "forceForward": True,
            }
        ).encode()
        return (
            f"POST /v1/replies/rpl_load_{n % REPLIES + 1:06d}/assign HTTP/1.1\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    return assign


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(
    api_url: str,
    make: Callable[[], bytes],
    connections: int,
    seconds: float,
    warmup: float,
    pid: int | None,
) -> dict[str, object]:
    parts = urlsplit(api_url)
    loop = asyncio.get_running_loop()
    stats = Stats()
    conns = await asyncio.gather(
        *(
            loop.create_connection(
                lambda: Connection(make, stats), parts.hostname or "127.0.0.1", parts.port or 80
            )
            for _ in range(connections)
        )
    )
    await asyncio.sleep(warmup)
    cpu0, started = _cpu_seconds(pid), time.perf_counter()
    stats.measuring = True
    await asyncio.sleep(seconds)
    stats.measuring = False
    elapsed, cpu1 = time.perf_counter() - started, _cpu_seconds(pid)
    stats.running = False
    await asyncio.wait([c.closed for _, c in conns], timeout=10)
    lat = sorted(stats.latencies)
    pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)) if lat else None
    return {
        "connections": connections,
        "requestsPerSecond": round(stats.done / elapsed),
        "requests": stats.done,
        "statuses": stats.statuses,
        "connectionErrors": stats.errors,
        "latencyMs": {"p50": pick(0.5), "p99": pick(0.99)} if pick else {},
        "sandboxCpu": None if cpu0 is None or cpu1 is None else round((cpu1 - cpu0) / elapsed, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.loadcheck",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--api", help="a running sandbox's API URL (default: start one)")
    p.add_argument("--control", help="its control URL")
    p.add_argument("--key", default="sk_test_workspace")
    p.add_argument("--connections", type=int, default=500)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument(
        "--endpoint", nargs="+", choices=("sdrs", "assign", "due"), default=["sdrs", "assign"]
    )
    args = p.parse_args()
    from leadterra_sandbox.__main__ import loop_factory, raise_file_limit

    raise_file_limit()
    own = None if args.api else SandboxProcess.start(["--sdrs", "6", "--max-calls", "2000000"])
    api_url = own.api_url if own else args.api
    control = SandboxControl(own.control_url if own else args.control)
    try:
        sdr_ids = [s["id"] for s in control.state()["sdrs"] if s["gmailConnected"]]
        control.seed_replies(count=REPLIES, prefix="rpl_load_")
        control.seed_followups(per_sdr=2000, due_from_seconds=-86400, due_to_seconds=86400)
        host = urlsplit(api_url).netloc
        for endpoint in args.endpoint:
            make = request_maker(endpoint, host, args.key, sdr_ids)
            pid = own.proc.pid if own else None
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                result = runner.run(
                    run_load(api_url, make, args.connections, args.seconds, args.warmup, pid)
                )
            print(json.dumps({"endpoint": endpoint, **result}), flush=True)
    finally:
        control.close()
        if own is not None:
            own.stop()


if __name__ == "__main__":
    main()
