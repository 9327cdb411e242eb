"""No secret and no reply text reaches any log line of any process, even at DEBUG, in any form.

The secrets are allowed (printable ASCII) but change when escaped: each has `"`, `\\`, `%`, `'`,
`+` and `&`, so its repr, its JSON and its URL encodings all differ from it, and every log line of
every process (web, worker, beat, the sandbox) is searched for each of those forms. Calls fail
with the keys in play: a 401 and 500s on assign, a 429, and an SDR key Leadterra does not know
(every call made with it answers 401).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus

import httpx
import pytest

from leadterra_sandbox.sender_spec import SNIPPETS
from worker.deadline import wait_until
from worker.embedded_redis import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WORKSPACE_KEY = "sk_live_E2E\"ws\\k%41'+&Q7secret"
SDR_KEYS = {f"sdr_{i}": f"sk_live_E2E\\sdr{i}\"%2F'+&kP" for i in range(1, 4)}
UNKNOWN_SDR_KEY = "sk_live_E2E\"unknown\\%7E'+&R0"  # mapped to sdr_9; the sandbox answers 401
WEBHOOK_SECRET = "whsec_E2E\"sig\\n%0A'+&Z9"
FOLLOWUP_SECRET = "fhsec_E2E\"out\\t%09'+&M4"
SLACK_TOKEN = "T00SECRETSLACK/B00SECRET/XyZ\"sec\\ret%25'+&Token"
ASSIGN = "POST /v1/replies/{id}/assign"


def forms(secret: str) -> dict[str, str]:
    """Every form of `secret` that must not reach a log: plain, repr'd (between either quote),
    JSON-escaped, URL-quoted (as urllib and as httpx write a path) and quote_plus'd."""
    single = repr(secret)[1:-1]
    found = {
        "plain": secret,
        "repr": single,
        "repr between double quotes": single.replace("\\'", "'"),
        "json": json.dumps(secret)[1:-1],
        "url quote": quote(secret),
        "url quote, nothing safe": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "httpx path": httpx.URL(f"http://h/{secret}").raw_path.decode()[1:],
    }
    assert len(set(found.values())) >= 6, "the secret must change under escaping"
    return found


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
        processes=("web", "worker", "beat"),  # the Procfile's, and a standalone beat too
        sandbox_args=("--workspace-key", WORKSPACE_KEY),
        LEADTERRA_API_KEY=WORKSPACE_KEY,
        LEADTERRA_SDR_API_KEYS=json.dumps({**SDR_KEYS, "sdr_9": UNKNOWN_SDR_KEY}),
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
        # errors worth logging: a 401 (dead letter), a 429 and 500s (retries); and the unknown
        # SDR key's every call (mailbox checks, follow-up polls) answers 401
        control.fail_next(ASSIGN, count=1, status=401)
        control.fail_next(ASSIGN, count=1, status=429, retry_after=1)
        control.fail_next(ASSIGN, count=2, status=500)
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
        # replies whose ids carry the key in each escaped form: logged by the receiver, then
        # dead-lettered by the worker (Leadterra knows no such reply), so the scrubber must act
        for form in sorted(set(forms(WORKSPACE_KEY).values())):
            quoting = json.dumps(
                {
                    "event": "reply.received",
                    "data": {"reply": {"id": f"rpl_{form}", "classification": "interested"}},
                }
            ).encode()
            answer = httpx.post(
                service.webhook_url,
                content=quoting,
                headers={"X-Leadterra-Signature": signed(quoting)},
            )
            assert answer.status_code == 202, answer.text
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
        quoting_replies = len(set(forms(WORKSPACE_KEY).values()))
        wait_until(
            lambda: (
                len(
                    [
                        e
                        for e in service.events("reply.dead_lettered")
                        if e.get("reply_id") == "rpl_***"
                    ]
                )
                >= quoting_replies
                and any(
                    e.get("error_type") == "AuthError"
                    for e in service.events("reply.dead_lettered")
                )
            ),
            60,
            what="the 401's letter and every quoting reply's (not any 7 letters)",
        )

        def refused() -> set[str]:
            return {c["endpoint"] for c in control.calls() if c["status"] == 401}

        wait_until(lambda: refused() > {ASSIGN}, 30, what="the unknown SDR key's calls refused")
    finally:
        server.shutdown()
        server.server_close()

    logs = "\n".join(child.text() for child in service.children) + service.sandbox_log()
    assert len(logs.splitlines()) > 200  # the check below read real, chatty logs
    assert {c.name for c in service.children} == {"web", "worker", "beat"} and service.sandbox_log()
    secrets = [WORKSPACE_KEY, *SDR_KEYS.values(), UNKNOWN_SDR_KEY, WEBHOOK_SECRET, FOLLOWUP_SECRET]
    for secret in [*secrets, SLACK_TOKEN, f"http://127.0.0.1:{port}/services/{SLACK_TOKEN}"]:
        for form, text in forms(secret).items():
            assert text not in logs, f"a secret reached the logs ({form}): {secret[:8]}..."
    for secret in ("B00SECRET", bad_signature, signed(good)):
        assert secret not in logs, f"a secret reached the logs: {secret[:6]}..."
    assert not re.search(r"\b[0-9a-f]{64}\b", logs), "something like a signature was logged"
    for text in [*SNIPPETS.values(), "555-0100"]:
        assert text not in logs, f"reply text reached the logs: {text[:20]}"
    # and the logs did record the events, by id
    assert service.events("leadterra.auth_failed")
    assert service.events("reply.retry")
    assert any(
        e.get("sdr_id") == "sdr_9" and e.get("error_type") == "AuthError"
        for e in service.events("followups.poll_failed")
    )
    # the quoting replies were logged, their ids masked, by the receiver and by the worker
    for name in ("webhook.received", "reply.dead_lettered"):
        masked = [e for e in service.events(name) if e.get("reply_id") == "rpl_***"]
        assert len(masked) >= len(set(forms(WORKSPACE_KEY).values())), name
    assert service.events("leadterra.rate_limited")
    assert any(e.get("reply_id") == "rpl_known" for e in service.events("webhook.received"))
