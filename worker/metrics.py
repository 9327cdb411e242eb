"""Prometheus metrics, exported through Redis so every process and host reaches /metrics.

Each process counts in its own registry. Workers and beat flush a snapshot of it into one Redis
hash every few seconds (`Metrics.flush`); the receiver's /metrics sums the snapshots of every
process with its own live counters, and adds the gauges computed at scrape time
(worker/gauges.py: queues, dead letters, held replies, readiness, SDRs at work...).

Names follow Prometheus's conventions: the unit in the name (`_seconds`, `_messages`), `_total`
on counters (prometheus_client adds it to the names below), `_timestamp_seconds` for unix times.
`tests/test_metrics_live.py` runs `promtool check metrics` on a live web's page.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections import defaultdict
from typing import Any

import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from worker.gauges import GAUGE_DOCS, Sample, Scrape, read_gauges
from worker.keys import Keys, text

STALE_AFTER_SECONDS = 24 * 3600
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1, 2, 5, 10, 30)
#: seconds: 1 min, 5, 15, 30 min, 1, 2, 4, 8 h, 1, 2, 7 days
ACTION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
#: seconds: from a hundredth of a second (an idle worker) to a visibility timeout (a lost run)
WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    """This process's counters and histograms."""

    def __init__(self, ident: str | None = None) -> None:
        self.ident = ident or f"{socket.gethostname()}:{os.getpid()}"
        #: what the scrape-time gauges need; the web's `create_app` gives its Settings
        self.scrape = Scrape()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks = Counter(
            "leadrouter_webhooks", "Webhook deliveries by outcome.", ["outcome"], registry=r
        )
        self.assignments = Counter(
            "leadrouter_assignments",
            "Assign attempts by outcome and by how the reply came (webhook, reconcile, backfill).",
            ["outcome", "source"],
            registry=r,
        )
        self.followups = Counter(
            "leadrouter_followups", "Follow-up decisions.", ["decision"], registry=r
        )
        self.notifications = Counter(
            "leadrouter_notifications",
            "Follow-up notifications by destination and outcome.",
            ["destination", "outcome"],
            registry=r,
        )
        self._sla(r)
        self.calls = Counter(
            "leadrouter_leadterra_calls",
            "Calls to Leadterra by endpoint and status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.call_seconds = Histogram(
            "leadrouter_leadterra_call_seconds",
            "Latency of calls to Leadterra.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.assign_latency = Histogram(
            "leadrouter_webhook_to_assigned_seconds",
            "From webhook accepted to assign answered.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rate_limit_wait = Counter(
            "leadrouter_rate_limit_wait_seconds",
            "Seconds spent waiting for the global rate limit.",
            registry=r,
        )
        self.queue_wait = Histogram(
            "leadrouter_queue_wait_seconds",
            "From when a task message could run (enqueued, or due) to its task starting.",
            ["queue"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )

    # -- per-call observer (LeadterraClient's CallObserver, minus the gate) -------------------

    def _sla(self, r: CollectorRegistry) -> None:
        """The SLA watch's (worker/sla/watch.py), and the drafts' (worker/drafts/)."""
        self.sla_breaches = Counter(
            "leadrouter_sla_breaches",
            "Handoffs whose SDR did not act within SLA_MINUTES, by SLA_ACTION.",
            ["action"],
            registry=r,
        )
        self.reroutes = Counter(
            "leadrouter_reroutes",
            "SLA re-routes by outcome (rerouted, or why the reply was escalated instead).",
            ["outcome"],
            registry=r,
        )
        self.drafts = Counter(
            "leadrouter_drafts",
            "Drafts on due follow-ups by event: generated, sent, blocked, stale, unknown_outcome, "
            "link_refused, and why none was made (failed, capped).",
            ["event"],
            registry=r,
        )
        self.time_to_action = Histogram(
            "leadrouter_time_to_action_seconds",
            "From a handoff to the SDR acting on its thread (wall-clock seconds).",
            buckets=ACTION_BUCKETS,
            registry=r,
        )

    def observe_call(self, endpoint: str, status: str, seconds: float) -> None:
        self.calls.labels(endpoint, status).inc()
        self.call_seconds.labels(endpoint).observe(seconds)

    # -- export -------------------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        families = []
        for family in self.registry.collect():
            samples = [
                [s.name, s.labels, s.value]
                for s in family.samples
                if not s.name.endswith("_created")
            ]
            families.append(
                {
                    "name": family.name,
                    "type": family.type,
                    "doc": family.documentation,
                    "samples": samples,
                }
            )
        return families

    def flush(self, client: redis.Redis, keys: Keys) -> None:
        """Write this process's snapshot into Redis for the receiver's /metrics."""
        blob = json.dumps({"at": time.time(), "families": self.snapshot()})
        client.hset(keys.metrics, self.ident, blob)

    async def render(self, client: aioredis.Redis, keys: Keys) -> tuple[bytes, str]:
        """The Prometheus text page: every process's counters summed, plus Redis gauges."""
        snapshots = {self.ident: self.snapshot()}
        try:
            async with asyncio.timeout(5):
                stored = await client.hgetall(keys.metrics)
                gauges = await read_gauges(client, keys, self.scrape)
        except (redis.RedisError, OSError, TimeoutError):
            stored, gauges = {}, self.scrape.down()
        now = time.time()
        stale = []
        for ident, blob in stored.items():
            name = text(ident)
            if name == self.ident:
                continue
            data = json.loads(blob)
            if now - data["at"] > STALE_AFTER_SECONDS:
                stale.append(name)
                continue
            snapshots[name] = data["families"]
        if stale:
            await client.hdel(keys.metrics, *stale)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged(snapshots, gauges))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Merged:
    """A collector that sums the snapshots' samples and adds the scrape-time gauges."""

    def __init__(self, snapshots: dict[str, list[dict[str, Any]]], gauges: list[Sample]):
        self.snapshots = snapshots
        self.gauges = gauges

    def collect(self) -> list[Metric]:
        meta: dict[str, tuple[str, str]] = {}
        sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        for families in self.snapshots.values():
            for family in families:
                meta[family["name"]] = (family["type"], family["doc"])
                for name, labels, value in family["samples"]:
                    sums[family["name"]][(name, tuple(sorted(labels.items())))] += value
        out = []
        for fname, (ftype, doc) in sorted(meta.items()):
            metric = Metric(fname, doc, ftype)
            for (name, labels), value in sums[fname].items():
                metric.add_sample(name, dict(labels), value)
            out.append(metric)
        grouped: dict[str, Metric] = {}
        for name, labels, value in self.gauges:
            metric = grouped.setdefault(name, Metric(name, GAUGE_DOCS.get(name, name), "gauge"))
            metric.add_sample(name, labels, value)
        return out + list(grouped.values())
