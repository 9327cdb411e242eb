"""One end-to-end run: N webhooks in, N handoffs out, timed and costed.

The sandbox is reset and seeded with the N replies the generator will announce, Redis is
flushed, then the generator posts them (closed loop, or at a fixed rate) while the workers
already consume. Latency per reply is the sandbox's handoff time (recorded when assign answers)
minus the time the generator got its 202; the sandbox's own answer time is that handoff minus the
arrival of the assign call that made it. CPU is read from /proc for every process tree over the
whole run, so CPU per assignment covers the receiver and every worker.
"""

from __future__ import annotations

from typing import Any

from bench import httpfloor, loadgen
from bench.common import latency_summary, say
from bench.procfs import CpuMeter, peak_rss_mb
from bench.services import API_KEY, SECRET, Service
from worker.children import Child, Children

WEBHOOK_CONNECTIONS = 50


def connected_sdrs(service: Service) -> list[str]:
    assert service.sandbox is not None
    return [s["id"] for s in service.sandbox.control.state()["sdrs"] if s["gmailConnected"]]


def prepare(service: Service, prefix: str, count: int) -> None:
    assert service.sandbox is not None
    service.redis.flush()
    service.sandbox.control.reset()
    service.sandbox.control.seed_replies(count=count, prefix=prefix)


def run_replies(
    procs: Children,
    service: Service,
    *,
    name: str,
    count: int,
    web: Child,
    workers: list[Child],
    rate: float | None = None,
    watch: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Send `count` replies (as fast as accepted, or at `rate`/s) and wait for every handoff;
    `watch` names more processes whose CPU is measured (a Flower listening to events)."""
    sandbox = service.sandbox
    assert sandbox is not None
    prefix = f"rpl_{name}_"
    prepare(service, prefix, count)
    service.redis.reset_stats()
    pids = {"web": web.pid, **{w.name: w.pid for w in workers}}
    pids |= {"sandbox": sandbox.proc.pid, "redis": service.redis.proc.pid, **(watch or {})}
    meter = CpuMeter(pids).start()
    spec: dict[str, Any] = {
        "mode": "rate" if rate else "count",
        "url": service.webhook_url,
        "secret": SECRET,
        "prefix": prefix,
        "connections": WEBHOOK_CONNECTIONS,
        "count": count,
    }
    if rate:
        spec["rate"] = rate
    sent = loadgen.run(procs, f"loadgen-{name}", spec)
    sandbox.wait_handoffs(count, max(120.0, count / 20), [web, *workers])
    cpu = meter.stop()
    commands = service.redis.command_calls()
    handoffs = sandbox.handoff_times()
    summary = sandbox.control.summary()
    accepted: dict[str, float] = sent["accepted_at"]
    delays = [handoffs[r] - t for r, t in accepted.items() if r in handoffs]
    answers = sandbox.answer_times(handoffs)
    span = max(handoffs.values()) - min(accepted.values())
    worker_cpu = sum(cpu[w.name] for w in workers)
    result = {
        "replies": count,
        "rate_sent": rate,
        "webhook_accepted_per_s": sent["accepted_per_s"],
        "webhook_errors": sent["errors"],
        "assignments": len(handoffs),
        "duplicates": summary["state"]["repliesHandedOffMoreThanOnce"],
        "span_s": round(span, 3),
        "assignments_per_s": round(len(handoffs) / span, 1),
        "webhook_to_assigned": latency_summary(delays),
        "sandbox_answer": latency_summary(answers),
        "cpu_s": cpu,
        "cores": meter.cores(),
        "machine_cores": round(meter.machine / meter.elapsed, 2),
        "other_cores": meter.others_cores(),
        "cpu_ms_per_assignment": round((cpu["web"] + worker_cpu) / count * 1000, 3),
        "worker_cpu_ms_per_assignment": round(worker_cpu / count * 1000, 3),
        "web_cpu_ms_per_assignment": round(cpu["web"] / count * 1000, 3),
        "peak_rss_mb": {n: peak_rss_mb(p) for n, p in pids.items()},
        "leadterra_calls": summary["calls"]["byEndpoint"],
        "redis_commands_per_assignment": {
            k: round(v / count, 2) for k, v in commands.items() if k not in ("config", "info")
        },
    }
    lat = result["webhook_to_assigned"]
    say(
        f"{name}: {result['assignments_per_s']}/s, webhook->assigned p50 {lat['p50_ms']} "
        f"p99 {lat['p99_ms']} ms, CPU {result['cpu_ms_per_assignment']} ms/assignment "
        f"(workers {result['worker_cpu_ms_per_assignment']}), cores {result['cores']}, "
        f"other {result['other_cores']}"
    )
    return result


def httpx_floor(
    procs: Children, service: Service, *, name: str, count: int, concurrency: int, client: str
) -> dict[str, Any]:
    """The same assign calls from bare httpx (`async` or `threads`), against the same sandbox."""
    sandbox = service.sandbox
    assert sandbox is not None
    prefix = f"rpl_{name}_"
    prepare(service, prefix, count)
    spec = {
        "api": sandbox.api_url,
        "key": API_KEY,
        "prefix": prefix,
        "count": count,
        "concurrency": concurrency,
        "client": client,
        "sdrs": connected_sdrs(service),
        "watch": {"sandbox": sandbox.proc.pid},
    }
    report = httpfloor.run(procs, name, spec)
    say(
        f"{name}: {report['calls_per_s']}/s, {report['cpu_us_per_call']} us CPU/call, "
        f"p50 {report['latency']['p50_ms']} ms, statuses {report['statuses']}"
    )
    return report
