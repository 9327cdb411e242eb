"""Console: how fast the admin listener's page and /api/ answer with a full Redis behind them.

Redis is seeded the way a busy week leaves it: 50 SDRs (3 disconnected, a roster with weights,
caps and one pause), 10,000 decisions in the stream (real picks through the Lua call), a week of
per-day counts (10,000 assignments, follow-up decisions), 500 dead letters, 40 held replies,
1,000 handoffs (200 still watched, the rest acted on, some breached and re-routed), an hour of
per-minute webhook counts and four processes' metrics snapshots. Then `web` runs as deployed
(SLA_MINUTES=30) and one client asks, one request at a time over a kept-alive connection, for
GET / and each /api/ endpoint `--console-requests` times (after 10 unmeasured warm-up requests);
each figure is the request's wall time at the client. The target: GET / under 100 ms at p99.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.common import Outcome, children, latency_summary, say
from bench.services import PREFIX, Service, start_redis
from worker.console import counters
from worker.console.panels import PANELS
from worker.embedded_redis import free_port
from worker.jobs.deadletter import DeadLetter, DeadLetters
from worker.keys import Keys
from worker.leadterra.models import Sdr
from worker.metrics import Metrics
from worker.routing.rotation import Policy, Rotation
from worker.sla.ledger import Ledger

NAME = "console"
SDRS, DECISIONS, DEAD_LETTERS, HANDOFFS, HELD = 50, 10_000, 500, 1_000, 40
TARGET_MS = 100.0
KEYS = Keys(PREFIX)
DAY = 86400


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("console")
    group.add_argument("--console-requests", type=int, help="requests per path (200; quick 50)")


def _roster(folder: Path) -> Path:
    lines = []
    for n in range(1, SDRS + 1):
        lines.append(f"[sdr.sdr_{n}]\nweight = {1 + n % 3}")
        if n % 10 == 0:
            lines.append("daily_cap = 40")
        if n == 7:
            lines.append("paused = true")
    path = folder / "roster.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _seed_rotation(client: redis.Redis) -> None:
    team = [Sdr(id=f"sdr_{n}", gmail_connected=n % 17 != 0) for n in range(1, SDRS + 1)]
    rotation = Rotation(client, KEYS, pick_ttl=3600, cache_ttl=3600)
    weights = {f"sdr_{n}": 1 + n % 3 for n in range(1, SDRS + 1)}
    for n in range(DECISIONS):
        rotation.pick(f"rpl_{n:05d}", Policy(weights=weights), lambda: team)
    now = time.time()
    with client.pipeline(transaction=False) as pipe:
        for n in range(DECISIONS):
            sdr = f"sdr_{1 + n % SDRS}"
            source = "reconcile" if n % 25 == 0 else "webhook"
            counters.count_assignment(pipe, KEYS, sdr, source, now - (n % 7) * DAY)
        pipe.execute()
    for n in range(500):
        decision = ("routed", "skipped", "rescheduled")[n % 3]
        counters.count_followup(client, KEYS, f"sdr_{1 + n % SDRS}", decision)


def _seed_stuck(client: redis.Redis) -> None:
    now = time.time()
    entries = [
        DeadLetter(
            id=f"reply:rpl_dead_{n:03d}",
            task="leadrouter.assign_reply",
            queue="assign",
            args=[{"id": f"rpl_dead_{n:03d}", "email": f"lead{n}@example.com"}],
            error="Leadterra answered 503 on POST /v1/replies/{id}/assign",
            error_type="ServerError",
            attempts=13,
            at=now - n * 60,
        )
        for n in range(DEAD_LETTERS)
    ]
    DeadLetters(client, KEYS).add_many(entries)
    for n in range(HELD):
        held = {"since": now - n * 30, "reason": "no_eligible_sdr", "checked": now}
        client.hset(KEYS.held, f"rpl_held_{n:03d}", json.dumps(held))


def _seed_handoffs(client: redis.Redis) -> None:
    ledger = Ledger(client, KEYS, 7 * DAY)
    now = time.time()
    for n in range(HANDOFFS):
        reply_id, sdr = f"rpl_{n:05d}", f"sdr_{1 + n % SDRS}"
        ledger.record(reply_id, None, sdr, f"thr_{n}", watch=True)
        if n < 200:  # still watched
            continue
        handoff = ledger.get(reply_id)
        assert handoff is not None
        handoff.current.at = now - 3 * 3600
        handoff.current.acted_at = handoff.current.at + random.uniform(60, 7200)
        if n % 10 == 0:
            handoff.current.breached_at = handoff.current.at + 1800
        handoff.state = "acted"
        ledger.save(handoff)


def _seed_health(client: redis.Redis) -> None:
    now = time.time()
    for back in range(60):
        key = KEYS.stats_minute(counters.minute_of(now) - back)
        client.hset(key, mapping={"webhooks": random.randint(0, 40), "leadterra:429": back % 7})
        client.expire(key, counters.MINUTE_TTL)
    for n in range(4):
        Metrics(f"bench-worker-{n}").flush(client, KEYS)
    client.set(KEYS.last_webhook, repr(now))
    client.set(KEYS.heartbeat, f"{now}|bench-worker-0")


def seed(client: redis.Redis) -> None:
    random.seed(7)
    started = time.monotonic()
    _seed_rotation(client)
    _seed_stuck(client)
    _seed_handoffs(client)
    _seed_health(client)
    say(
        f"seeded {SDRS} SDRs, {client.xlen(KEYS.decisions)} decisions, {DEAD_LETTERS} dead "
        f"letters, {HANDOFFS} handoffs in {time.monotonic() - started:.1f} s"
    )


def measure(http: httpx.Client, path: str, count: int) -> dict[str, Any]:
    for _ in range(10):
        http.get(path).raise_for_status()
    times, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        answer = http.get(path)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
        size = len(answer.content)
    return {"path": path, "bytes": size, **latency_summary(times)}


def run(opts: argparse.Namespace) -> Outcome:
    count = opts.console_requests or (50 if opts.quick else 200)
    paths = ["/", "/?sdr=sdr_7", *(f"/api/{name}" for name in PANELS)]
    out = Outcome(NAME, data={"settings": {"requests": count, "sdrs": SDRS}})
    with children(NAME) as procs:
        server = start_redis(procs)
        with server.client() as client:
            seed(client)
        service = Service(server)
        admin = free_port()
        env = {
            "ADMIN_PORT": str(admin),
            "SLA_MINUTES": "30",
            "ROSTER_FILE": str(_roster(procs.folder)),
        }
        service.start_web(procs, **env)
        with httpx.Client(base_url=f"http://127.0.0.1:{admin}", timeout=10) as http:
            results = [measure(http, path, count) for path in paths]
    out.data["paths"] = results
    for result in results:
        say(f"{result['path']}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
        page = result["path"].startswith("/?") or result["path"] == "/"
        out.row(
            f"GET {result['path']}: p99 ({result['bytes'] // 1024} KiB)",
            result["p99_ms"],
            "ms",
            reference=f"p50 {result['p50_ms']} ms, max {result['max_ms']} ms",
            target=f"< {TARGET_MS:g} ms" if page else "",
            met=(result["p99_ms"] or 0) < TARGET_MS if page else None,
        )
    return out
