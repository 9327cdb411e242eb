"""The webhook sender, posting to a small receiver in this test process."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadterra_sandbox.process import SandboxProcess

pytestmark = pytest.mark.integration

SECRET = "whsec_test_secret"


@dataclass
class Delivery:
    at: float
    body: bytes
    headers: dict[str, str]

    @property
    def reply_id(self) -> str:
        return str(json.loads(self.body)["data"]["reply"]["id"])


@dataclass
class Receiver:
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    answer: Callable[[Delivery, int], int] = lambda delivery, seen: 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, reply_id: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.reply_id == reply_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            delivery = Delivery(time.monotonic(), body, dict(self.headers.items()))
            with found.lock:
                seen = sum(d.reply_id == delivery.reply_id for d in found.deliveries)
                found.deliveries.append(delivery)
            self.send_response(found.answer(delivery, seen))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the default 5 drops SYNs under concurrent deliveries
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/leadterra"
    yield found
    server.shutdown()
    server.server_close()
    thread.join()


def test_events_are_signed_enveloped_and_create_their_replies(
    sandbox: SandboxProcess, receiver: Receiver
) -> None:
    job = sandbox.control.send_webhooks(
        receiver.url, SECRET, count=5, email_domains=["acme.com"], reply_id_prefix="rpl_sig_"
    )
    report = sandbox.control.wait_webhook_job(job["id"], timeout=10)
    assert report["status"] == "done" and report["outcomes"] == {"delivered": 5}
    assert len(receiver.deliveries) == 5
    for delivery in receiver.deliveries:
        expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Leadterra-Signature"] == expected
        assert delivery.headers["Content-Type"] == "application/json"
        envelope = json.loads(delivery.body)
        assert delivery.body == json.dumps(envelope, separators=(",", ":")).encode()
        assert envelope["event"] == "reply.received" and envelope["timestamp"].endswith("Z")
        reply = envelope["data"]["reply"]
        assert set(reply) == {
            "id",
            "email",
            "campaignId",
            "classification",
            "receivedAt",
            "threadSnippet",
        }
        assert reply["email"].endswith("@acme.com") and reply["id"].startswith("rpl_sig_")
    seeded = {r["id"] for r in sandbox.control.state()["replies"]}
    assert {d.reply_id for d in receiver.deliveries} <= seeded


def test_the_classification_mix_and_duplicate_share_are_exact(
    sandbox: SandboxProcess, receiver: Receiver
) -> None:
    mix = {
        "interested": 4,
        "not_interested": 1,
        "out_of_office": 1,
        "bounce": 1,
        "unsubscribe": 1,
        "referral": 1,
        "brand_new_label": 1,
    }
    job = sandbox.control.send_webhooks(
        receiver.url, SECRET, count=50, mix=mix, duplicate_share=0.2, concurrency=8
    )
    report = sandbox.control.wait_webhook_job(job["id"], timeout=15)
    assert report["classifications"] == {
        "interested": 20,
        "not_interested": 5,
        "out_of_office": 5,
        "bounce": 5,
        "unsubscribe": 5,
        "referral": 5,
        "brand_new_label": 5,
    }
    assert report["kinds"] == {"original": 50, "duplicate": 10}
    assert report["deliveryCount"] == 60 and report["events"] == 50
    bodies: dict[str, set[bytes]] = {}
    for delivery in receiver.deliveries:
        bodies.setdefault(delivery.reply_id, set()).add(delivery.body)
    assert len(receiver.deliveries) == 60 and len(bodies) == 50
    assert all(len(same) == 1 for same in bodies.values())  # duplicates are byte-identical


def test_failed_deliveries_retry_on_the_compressed_schedule_then_succeed(
    sandbox: SandboxProcess, receiver: Receiver
) -> None:
    receiver.answer = lambda delivery, seen: 500 if seen < 2 else 204
    job = sandbox.control.send_webhooks(
        receiver.url, SECRET, count=1, retry_scale=0.002, reply_ids=["rpl_retry"]
    )
    report = sandbox.control.wait_webhook_job(job["id"], timeout=10)
    [delivery] = report["deliveries"]
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 204]
    assert delivery["outcome"] == "delivered"
    times = [d.at for d in receiver.of("rpl_retry")]
    assert 0.12 <= times[1] - times[0] < 0.6  # 1 min x 0.002
    assert 0.6 <= times[2] - times[1] < 1.2  # 5 min x 0.002


def test_a_delivery_that_never_succeeds_stops_after_six_attempts(
    sandbox: SandboxProcess, receiver: Receiver
) -> None:
    receiver.answer = lambda delivery, seen: 503
    job = sandbox.control.send_webhooks(receiver.url, SECRET, count=1, retry_scale=0.00002)
    report = sandbox.control.wait_webhook_job(job["id"], timeout=15)
    assert report["outcomes"] == {"failed": 1} and report["attempts"] == 6
    assert len(receiver.deliveries) == 6


def test_redelivery_sends_again_after_a_2xx_as_if_the_ack_was_lost(
    sandbox: SandboxProcess, receiver: Receiver
) -> None:
    job = sandbox.control.send_webhooks(
        receiver.url, SECRET, count=10, redeliver_share=0.3, retry_scale=0.001
    )
    report = sandbox.control.wait_webhook_job(job["id"], timeout=10)
    assert report["kinds"] == {"original": 10, "redelivery": 3}
    assert report["outcomes"] == {"delivered": 13} and len(receiver.deliveries) == 13


def test_an_unreachable_url_is_recorded_as_errors_per_attempt(sandbox: SandboxProcess) -> None:
    job = sandbox.control.send_webhooks(
        "http://127.0.0.1:9/nowhere", SECRET, count=1, retry_scale=0.00002, timeout=1
    )
    report = sandbox.control.wait_webhook_job(job["id"], timeout=15)
    attempts = report["deliveries"][0]["attempts"]
    assert len(attempts) == 6 and all(a["status"] is None and a["error"] for a in attempts)


def test_jobs_are_listed_and_a_running_job_can_be_cancelled(
    sandbox: SandboxProcess, receiver: Receiver
) -> None:
    job = sandbox.control.send_webhooks(receiver.url, SECRET, count=1000, rate=20)
    assert [j["id"] for j in sandbox.control.webhook_jobs()] == [job["id"]]
    cancelled = sandbox.control.cancel_webhook_job(job["id"])
    assert cancelled["status"] == "cancelled" and cancelled["events"] < 1000
    assert "secret" not in json.dumps(cancelled)
