"""The assign floors, `python -m bench.httpfloor SPEC OUT`: the calls alone, nothing around them.

Both make the calls a worker makes, `POST /v1/replies/{id}/assign` with `{"sdrId", "category":
"A", "skipIcpCheck": true}` and the workspace key, over replies seeded beforehand, round-robin
over the connected SDRs, `concurrency` at a time:

    async    `concurrency` asyncio tasks sharing one `httpx.AsyncClient` (the bare asyncio loop)
    threads  `concurrency` threads sharing one sync `httpx.Client`, as the worker's threads do

Its CPU per call is what one assign costs with no queue, rotation, limiter or logging around it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.common import latency_summary, run_json_child
from bench.procfs import tree_cpu_seconds
from worker.children import Children


class Calls:
    """The calls to make, and what came back."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.count, self.concurrency = int(spec["count"]), int(spec["concurrency"])
        self.sdrs, self.prefix = spec["sdrs"], spec["prefix"]
        self.api, self.headers = spec["api"], {"Authorization": f"Bearer {spec['key']}"}
        self.limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        self.numbers: Iterator[int] = iter(range(self.count))
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []

    def call(self, n: int) -> tuple[str, dict[str, Any]]:
        body = {"sdrId": self.sdrs[n % len(self.sdrs)], "category": "A", "skipIcpCheck": True}
        return f"/v1/replies/{self.prefix}{n + 1:06d}/assign", body

    def record(self, status: int, sent: float) -> None:
        self.latencies.append(time.perf_counter() - sent)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def run_async(calls: Calls) -> None:
    async with httpx.AsyncClient(
        base_url=calls.api, limits=calls.limits, headers=calls.headers, timeout=30
    ) as client:

        async def loop() -> None:
            for n in calls.numbers:
                path, body = calls.call(n)
                sent = time.perf_counter()
                response = await client.post(path, json=body)
                calls.record(response.status_code, sent)

        await asyncio.gather(*(loop() for _ in range(calls.concurrency)))


def run_threads(calls: Calls) -> None:
    with httpx.Client(
        base_url=calls.api, limits=calls.limits, headers=calls.headers, timeout=30
    ) as client:

        def loop() -> None:
            for n in calls.numbers:  # next() on a range iterator is atomic under the GIL
                path, body = calls.call(n)
                sent = time.perf_counter()
                response = client.post(path, json=body)
                calls.record(response.status_code, sent)

        with ThreadPoolExecutor(calls.concurrency) as pool:
            for future in [pool.submit(loop) for _ in range(calls.concurrency)]:
                future.result()


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    calls = Calls(spec)
    watch = {name: int(pid) for name, pid in spec.get("watch", {}).items()}
    cpu0 = {name: tree_cpu_seconds(pid) for name, pid in watch.items()}
    own0, t0 = time.process_time(), time.perf_counter()
    if spec["client"] == "async":
        asyncio.run(run_async(calls))
    else:
        run_threads(calls)
    elapsed, own = time.perf_counter() - t0, time.process_time() - own0
    cpu = {name: round(tree_cpu_seconds(pid) - cpu0[name], 3) for name, pid in watch.items()}
    return {
        "client": spec["client"],
        "concurrency": calls.concurrency,
        "calls": calls.count,
        "elapsed_s": round(elapsed, 3),
        "calls_per_s": round(calls.count / elapsed, 1),
        "cpu_s": {"floor": round(own, 3), **cpu},
        "cpu_us_per_call": round(own / calls.count * 1e6, 1),
        "statuses": {str(k): v for k, v in sorted(calls.statuses.items())},
        "latency": latency_summary(calls.latencies),
    }


def run(procs: Children, name: str, spec: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run the floor as a child process with `spec`; its report."""
    return run_json_child(procs, name, "bench.httpfloor", spec, timeout, "httpx floor")


def main() -> None:
    with open(sys.argv[1]) as spec_file:
        spec = json.load(spec_file)
    result = measure(spec)
    with open(sys.argv[2], "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
