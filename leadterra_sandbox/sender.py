"""The webhook sender: jobs that post `reply.received` events the way Leadterra does.

Each event becomes one delivery (two when it is picked as a duplicate, sent side by side with
identical bytes). A delivery is retried on any non-2xx answer or error on Leadterra's schedule
(1 min, 5 min, 30 min, 2 h, 8 h between attempts, at most 6 attempts) times `retryScale`. A
"redelivery" is sent once more after a 2xx, one first-retry delay later, as if the ack was lost.
Every event also creates (or updates) its reply in the state, so assign finds it.

A share of the events can be dropped on purpose (`dropShare` on the job, or the sandbox-wide
`POST /_control/webhooks/drop`): the reply exists, as it does at Leadterra, but no delivery of it
is ever attempted (no duplicate, no retry, no redelivery). Its delivery reads `dropped`, and the
sender keeps its reply id for `GET /_control/webhooks/dropped`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from leadterra_sandbox.clock import iso_s
from leadterra_sandbox.seeding import allocate, new_reply
from leadterra_sandbox.sender_spec import MAX_ATTEMPTS, SNIPPETS, SendSpec
from leadterra_sandbox.state import State

log = structlog.get_logger(__name__)
USER_AGENT = "Leadterra-Webhooks/1.0 (sandbox)"


@dataclass
class Delivery:
    id: int
    reply_id: str
    classification: str
    kind: str  # original | duplicate | redelivery
    body: bytes
    signature: str
    outcome: str = "pending"  # pending | delivered | failed | not_needed | dropped
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "deliveryId": self.id,
            "replyId": self.reply_id,
            "classification": self.classification,
            "kind": self.kind,
            "outcome": self.outcome,
            "attempts": self.attempts,
        }


class Job:
    """One send job: produces events at `rate`, posts them with `concurrency` workers."""

    def __init__(
        self,
        job_id: str,
        number: int,
        spec: SendSpec,
        state: State,
        seed: int,
        dropped: dict[str, str] | None = None,
        drop_share: float = 0.0,
    ) -> None:
        self.id, self.number, self.spec, self.state = job_id, number, spec, state
        self.drop_share = spec.drop_share if spec.drop_share is not None else drop_share
        self.dropped = dropped if dropped is not None else {}  # reply id -> job id, shared
        self.rng = random.Random(seed)
        self.status = "running"
        self.deliveries: list[Delivery] = []
        self.events = 0
        self.open = 0  # deliveries without a final outcome, including redeliveries to come
        self.started = time.time()
        self.finished: float | None = None
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self.timers: list[asyncio.TimerHandle] = []
        self.finished_event = asyncio.Event()
        self.redeliveries: dict[int, Delivery] = {}
        self.task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)

    # -- events -------------------------------------------------------------------------------

    def _event(self, index: int, classification: str) -> tuple[str, bytes, str]:
        spec, state = self.spec, self.state
        reply_id = (
            spec.reply_ids[index]
            if spec.reply_ids and index < len(spec.reply_ids)
            else f"{spec.reply_id_prefix}{self.number}_{index + 1:06d}"
        )
        if spec.emails:
            email = spec.emails[index % len(spec.emails)]
        else:
            domain = spec.email_domains[index % len(spec.email_domains)]
            email = f"lead{index + 1}.j{self.number}@{domain}"
        now = state.clock.now()
        reply = new_reply(
            state,
            reply_id,
            {
                "email": email,
                "campaign_id": spec.campaign_ids[index % len(spec.campaign_ids)],
                "classification": classification,
                "received_at": now,
                "thread_snippet": SNIPPETS.get(classification, "Thanks for reaching out."),
            },
        )
        envelope = {
            "event": "reply.received",
            "timestamp": iso_s(now),
            "data": {"reply": reply.api()},
        }
        body = json.dumps(envelope, separators=(",", ":")).encode()
        signature = hmac.new(spec.secret.encode(), body, hashlib.sha256).hexdigest()
        return reply_id, body, signature

    def _delivery(
        self, reply_id: str, classification: str, kind: str, body: bytes, signature: str
    ) -> Delivery:
        delivery = Delivery(next(self._ids), reply_id, classification, kind, body, signature)
        self.deliveries.append(delivery)
        self.open += 1
        return delivery

    async def _produce(self) -> None:
        spec = self.spec
        labels = allocate(spec.mix, spec.count, self.rng)
        duplicates = set(
            self.rng.sample(range(spec.count), round(spec.count * spec.duplicate_share))
        )
        redeliver = set(
            self.rng.sample(range(spec.count), round(spec.count * spec.redeliver_share))
        )
        drop = set(self.rng.sample(range(spec.count), round(spec.count * self.drop_share)))
        start = time.monotonic()
        for index, classification in enumerate(labels):
            if spec.rate > 0:
                wait = start + index / spec.rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            elif index % 50 == 0:
                await asyncio.sleep(0)  # let the workers (and the API) run between batches
            reply_id, body, signature = self._event(index, classification)
            self.events += 1
            if index in drop:
                lost = Delivery(next(self._ids), reply_id, classification, "original", body, "")
                lost.outcome = "dropped"
                self.deliveries.append(lost)
                self.dropped[reply_id] = self.id
                continue
            original = self._delivery(reply_id, classification, "original", body, signature)
            self.queue.put_nowait(original)
            if index in duplicates:
                self.queue.put_nowait(
                    self._delivery(reply_id, classification, "duplicate", body, signature)
                )
            if index in redeliver:
                self.redeliveries[original.id] = self._delivery(
                    reply_id, classification, "redelivery", body, signature
                )
        self._maybe_done()

    # -- delivery -----------------------------------------------------------------------------

    def _settle(self, delivery: Delivery, outcome: str) -> None:
        delivery.outcome = outcome
        self.open -= 1
        follow = self.redeliveries.pop(delivery.id, None)
        if follow is not None:
            if outcome == "delivered":
                self._later(self.spec.retry_delay(1), follow)
            else:
                self._settle(follow, "not_needed")
        self._maybe_done()

    def _later(self, delay: float, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        self.timers.append(loop.call_later(delay, self.queue.put_nowait, delivery))

    def _maybe_done(self) -> None:
        if self.open == 0 and self.events == self.spec.count:
            self.finished_event.set()

    async def _attempt(self, session: aiohttp.ClientSession, delivery: Delivery) -> None:
        headers = {
            "X-Leadterra-Signature": delivery.signature,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        at, started = time.time(), time.perf_counter()
        status: int | None = None
        fault: str | None = None
        try:
            async with session.post(self.spec.url, data=delivery.body, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            fault = "timeout"
        except aiohttp.ClientError as exc:
            fault = type(exc).__name__
        latency = round((time.perf_counter() - started) * 1000, 2)
        delivery.attempts.append({"at": at, "status": status, "error": fault, "latencyMs": latency})
        if status is not None and 200 <= status < 300:
            self._settle(delivery, "delivered")
        elif len(delivery.attempts) >= MAX_ATTEMPTS:
            self._settle(delivery, "failed")
        else:
            self._later(self.spec.retry_delay(len(delivery.attempts)), delivery)

    async def _work(self, session: aiohttp.ClientSession) -> None:
        while True:
            delivery = await self.queue.get()
            await self._attempt(session, delivery)

    async def run(self) -> None:
        spec = self.spec
        connector = aiohttp.TCPConnector(limit=spec.concurrency)
        timeout = aiohttp.ClientTimeout(total=spec.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            workers = [asyncio.create_task(self._work(session)) for _ in range(spec.concurrency)]
            try:
                await self._produce()
                await self.finished_event.wait()
                self.status = "done"
            finally:
                for timer in self.timers:
                    timer.cancel()
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                self.finished = time.time()
                if self.status == "running":
                    self.status = "cancelled"
                log.info("webhooks.job_finished", job=self.id, status=self.status, **self.counts())

    # -- reporting ----------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        statuses: dict[str, int] = {}
        kinds: dict[str, int] = {}
        attempts = 0
        for d in self.deliveries:
            outcomes[d.outcome] = outcomes.get(d.outcome, 0) + 1
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
            attempts += len(d.attempts)
            for a in d.attempts:
                label = str(a["status"] or a["error"])
                statuses[label] = statuses.get(label, 0) + 1
        return {
            "events": self.events,
            "deliveryCount": len(self.deliveries),
            "attempts": attempts,
            "outcomes": outcomes,
            "kinds": kinds,
            "attemptResults": statuses,
        }

    def report(self, detail: bool = True) -> dict[str, Any]:
        classes: dict[str, int] = {}
        for d in self.deliveries:
            if d.kind == "original":
                classes[d.classification] = classes.get(d.classification, 0) + 1
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "spec": self.spec.public(),
            "startedAt": self.started,
            "finishedAt": self.finished,
            "classifications": classes,
            **self.counts(),
        }
        if detail:
            body["deliveries"] = [d.report() for d in self.deliveries]
        return body


class Sender:
    """The jobs of one sandbox process."""

    def __init__(self, state: State, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self.jobs: dict[str, Job] = {}
        self.drop_share = 0.0  # the share of each job's events dropped unless its spec says
        self.dropped: dict[str, str] = {}  # reply id -> job id, in the order they were dropped
        self._numbers = itertools.count(1)

    def start(self, spec: SendSpec) -> Job:
        number = next(self._numbers)
        seed = self.rng.randrange(1 << 30)
        job = Job(f"job_{number}", number, spec, self.state, seed, self.dropped, self.drop_share)
        job.task = asyncio.create_task(job.run(), name=job.id)
        self.jobs[job.id] = job
        log.info("webhooks.job_started", job=job.id, url=spec.url, count=spec.count)
        return job

    async def cancel(self, job: Job) -> None:
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)

    async def cancel_all(self) -> None:
        for job in list(self.jobs.values()):
            await self.cancel(job)

    async def clear(self) -> None:
        await self.cancel_all()
        self.jobs.clear()
        self.dropped.clear()
        self.drop_share = 0.0
