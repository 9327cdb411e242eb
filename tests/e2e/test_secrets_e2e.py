"""No secret and no reply text reaches any log line of any process, even at DEBUG."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from leadterra_sandbox.sender_spec import SNIPPETS
from worker.deadline import wait_until
from worker.embedded_redis import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WORKSPACE_KEY = "sk_live_E2Esecretworkspace7Q"
SDR_KEYS = {f"sdr_{i}": f"sk_live_E2Esecret_sdr{i}_kP" for i in range(1, 4)}
WEBHOOK_SECRET = "whsec_E2Esecret_signing_Z9"
FOLLOWUP_SECRET = "fhsec_E2Esecret_outbound_M4"
SLACK_TOKEN = "T00SECRETSLACK/B00SECRET/XyZsecretToken"
ASSIGN = "POST /v1/replies/{id}/assign"


class Listener(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Listener.seen.append(self.path)
        status = 500 if len(Listener.seen) == 1 else 200  # one failure, to log a retry
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_no_process_logs_a_key_a_secret_a_signature_or_reply_text(service_factory) -> None:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service = service_factory(
        sdrs=3,
        disconnected=0,
        sandbox_args=("--workspace-key", WORKSPACE_KEY),
        LEADTERRA_API_KEY=WORKSPACE_KEY,
        LEADTERRA_SDR_API_KEYS=json.dumps(SDR_KEYS),
        LEADTERRA_WEBHOOK_SECRET=WEBHOOK_SECRET,
        FOLLOWUP_WEBHOOK_URL=f"http://127.0.0.1:{port}/followups",
        FOLLOWUP_WEBHOOK_SECRET=FOLLOWUP_SECRET,
        SLACK_WEBHOOK_URL=f"http://127.0.0.1:{port}/services/{SLACK_TOKEN}",
        LOG_LEVEL="DEBUG",
        MAX_RETRIES="1",
        RETRY_BACKOFF_BASE="0.2",
        RETRY_BACKOFF_MAX="0.4",
    )
    control = service.control
    for sdr, key in SDR_KEYS.items():
        control.add_key(key, sdr)
    try:
        # errors worth logging: a 401 (dead letter), a 429 and 503s (retries)
        control.fail_next(ASSIGN, count=1, status=401)
        control.fail_next(ASSIGN, count=1, status=429, retry_after=1)
        job = control.send_webhooks(
            service.webhook_url,
            WEBHOOK_SECRET,
            60,
            concurrency=10,
            mix={"interested": 0.5, "not_interested": 0.2, "referral": 0.3},
            retry_scale=0.02,
        )
        report = control.wait_webhook_job(job["id"], timeout=60)
        forged = b'{"event":"reply.received","data":{"reply":{"id":"rpl_forged"}}}'
        bad_signature = signed(forged, "the-wrong-secret")
        httpx.post(
            service.webhook_url, content=forged, headers={"X-Leadterra-Signature": bad_signature}
        )
        good = (
            b'{"event":"reply.received","data":{"reply":{"id":"rpl_known",'
            b'"classification":"interested","threadSnippet":"my phone is 555-0100"}}}'
        )
        httpx.post(
            service.webhook_url, content=good, headers={"X-Leadterra-Signature": signed(good)}
        )
        control.seed_threads(
            [{"id": f"th_s{n}", "sdrId": f"sdr_{n % 3 + 1}", "status": "new"} for n in range(6)]
        )
        control.seed_followups(
            [
                {"id": f"fu_s{n}", "threadId": f"th_s{n}", "dueAt": "2020-01-01T00:00:00.000Z"}
                for n in range(6)
            ]
        )
        interested = {
            d["replyId"] for d in report["deliveries"] if d["classification"] == "interested"
        }
        wait_until(lambda: len(service.handoffs()) >= len(interested) - 1, 60, what="assignments")
        wait_until(lambda: len(Listener.seen) >= 12, 60, what="notifications")
        wait_until(lambda: service.events("reply.dead_lettered"), 30, what="the 401's letter")
    finally:
        server.shutdown()
        server.server_close()

    logs = "\n".join(child.text() for child in service.children) + service.sandbox_log()
    assert len(logs.splitlines()) > 200  # the check below read real, chatty logs
    for secret in (
        WORKSPACE_KEY,
        *SDR_KEYS.values(),
        WEBHOOK_SECRET,
        FOLLOWUP_SECRET,
        SLACK_TOKEN,
        "B00SECRET",
        bad_signature,
        signed(good),
    ):
        assert secret not in logs, f"a secret reached the logs: {secret[:6]}..."
    assert not re.search(r"\b[0-9a-f]{64}\b", logs), "something like a signature was logged"
    for text in [*SNIPPETS.values(), "555-0100"]:
        assert text not in logs, f"reply text reached the logs: {text[:20]}"
    # and the logs did record the events, by id
    assert service.events("leadterra.auth_failed")
    assert service.events("leadterra.rate_limited")
    assert any(e.get("reply_id") == "rpl_known" for e in service.events("webhook.received"))
