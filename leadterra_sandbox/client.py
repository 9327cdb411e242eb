"""`SandboxControl`: the control API as a small synchronous client for tests, demo and bench.

One `httpx.Client` on the control URL (not the API URL: the control port stays up during a
`refuse` outage). Methods take snake_case arguments and send the camelCase JSON documented in
docs/sandbox.md; they return the decoded answer and raise `ControlError` on a non-2xx.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Self, cast

import httpx

from leadterra_sandbox.client_drafts import DraftControls
from leadterra_sandbox.clock import iso_ms

__all__ = ["ControlError", "SandboxControl", "replies_answered"]


class ControlError(Exception):
    """Raised when the control API answers non-2xx; carries `status` and `body`."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


def camel(arguments: Mapping[str, Any], /, **changed: Any) -> dict[str, Any]:
    """A JSON body from a method's snake_case arguments (its `locals()`, plus `changed`):
    names in camelCase, `self` and None values left out, `retry_after_date` sent as
    `retryAfterFormat` ("date" or "seconds")."""
    fields = {**arguments, **changed}
    if "retry_after_date" in fields:
        fields["retry_after_format"] = "date" if fields.pop("retry_after_date") else "seconds"
    body = {}
    for name, value in fields.items():
        if name != "self" and value is not None:
            head, *rest = name.split("_")
            body[head + "".join(part.title() for part in rest)] = value
    return body


def replies_answered(report: Mapping[str, Any], *statuses: int) -> set[str]:
    """The replies of a webhook job's report (`webhook_job(id)`, with deliveries) that had at
    least one delivery attempt answered with one of `statuses`."""
    return {
        d["replyId"]
        for d in report["deliveries"]
        if any(a["status"] in statuses for a in d["attempts"])
    }


class SandboxControl(DraftControls):
    """Drive a running sandbox through its control URL, e.g. `http://127.0.0.1:8091`."""

    def __init__(
        self,
        control_url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.control_url = control_url.rstrip("/")
        self._http = httpx.Client(base_url=self.control_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> dict[str, Any]:
        response = self._http.request(method, f"/_control{path}", json=body, params=params)
        data = response.json() if response.content else None
        if response.status_code >= 300:
            raise ControlError(response.status_code, data)
        return cast(dict[str, Any], data)  # every control answer is a JSON object

    # -- process ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def wait_ready(self, timeout: float = 15.0) -> dict[str, Any]:
        """Poll /health until it answers; the last error is raised after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.health()
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def api_url(self) -> str:
        return str(self.health()["apiUrl"])

    def reset(self) -> None:
        """Back to the start-up world (CLI SDRs, no replies, faults, calls, jobs; clock 0)."""
        self._call("POST", "/reset")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/state")

    def summary(self) -> dict[str, Any]:
        return self._call("GET", "/summary")

    def handoffs(self, reply_id: str | None = None) -> list[dict[str, Any]]:
        found = self.state()["handoffs"]
        return [h for h in found if reply_id is None or h["replyId"] == reply_id]

    # -- seeding ------------------------------------------------------------------------------

    def seed_sdrs(
        self,
        sdrs: list[dict[str, Any]] | None = None,
        *,
        count: int | None = None,
        disconnected: int = 0,
        mode: str = "replace",
    ) -> list[dict[str, Any]]:
        """SDRs as given (`id, name, email, gmailConnected, gmailEmail, healthState, apiKey,
        lastSyncedAt, lastSyncError`), or `count` default SDRs with the last `disconnected`
        lacking Gmail."""
        body = (
            {"sdrs": sdrs}
            if sdrs is not None
            else {"count": count or 0, "disconnected": disconnected}
        )
        return list(self._call("POST", "/sdrs", {**body, "mode": mode}).get("sdrs", []))

    def patch_sdr(self, sdr_id: str, **fields: Any) -> dict[str, Any]:
        """Change one SDR, camelCase fields: `patch_sdr("sdr_1", healthState="needs_reauth")`."""
        return dict(self._call("PATCH", f"/sdrs/{sdr_id}", fields)["sdr"])

    def add_key(self, key: str, sdr_id: str | None = None) -> None:
        self._call("POST", "/keys", {"key": key, "sdrId": sdr_id})

    def revoke_key(self, key: str) -> bool:
        return bool(self._call("POST", "/keys", {"key": key, "revoke": True})["revoked"])

    def seed_replies(
        self,
        replies: list[dict[str, Any]] | None = None,
        *,
        count: int | None = None,
        prefix: str | None = None,
        mode: str = "upsert",
        **fields: Any,
    ) -> dict[str, Any]:
        """Replies as given, or `count` replies `{prefix}000001...` sharing (camelCase) `fields`."""
        if replies is not None:
            return self._call("POST", "/replies", {"replies": replies, "mode": mode})
        bulk = camel({"count": count or 0, "prefix": prefix, "mode": mode})
        return self._call("POST", "/replies", {**fields, **bulk})

    def add_campaigns(self, campaign_ids: list[str]) -> None:
        self._call("POST", "/campaigns", {"campaignIds": campaign_ids})

    def seed_threads(self, threads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self._call("POST", "/threads", {"threads": threads}).get("threads", []))

    def threads(
        self,
        *,
        sdr_id: str | None = None,
        reply_id: str | None = None,
        status: str | list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Threads (with `sdrId`, `replyId`, `status`) in the order they were opened, filtered
        by SDR, reply and status (one or a list)."""
        return list(self._call("GET", "/threads", params=camel(locals()))["threads"])

    def set_thread_status(self, thread_id: str, status: str) -> dict[str, Any]:
        """Change a thread's status as the SDR would in Leadterra's app; the thread after it."""
        answer = self._call("POST", f"/threads/{thread_id}/status", {"status": status})
        return dict(answer["thread"])

    def prospect_replies(
        self, thread_id: str, *, status: str = "replied", at: datetime | str | None = None
    ) -> dict[str, Any]:
        """A new inbound message on the thread: `lastMessageAt` moves on (to `at`, default
        sandbox now) and the status becomes `status`; the thread after it."""
        moment = iso_ms(at.timestamp()) if isinstance(at, datetime) else at
        body = {"status": status, **({} if moment is None else {"at": moment})}
        return dict(self._call("POST", f"/threads/{thread_id}/reply", body)["thread"])

    def seed_followups(
        self,
        followups: list[dict[str, Any]] | None = None,
        *,
        per_sdr: int | None = None,
        sdr_ids: list[str] | None = None,
        statuses: Mapping[str, float] | None = None,
        due_from_seconds: float | None = None,
        due_to_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Follow-ups as given, or `per_sdr` per SDR spread over [now+from, now+to]."""
        if followups is not None:
            return self._call("POST", "/followups", {"followups": followups})
        statuses = dict(statuses) if statuses else None
        return self._call("POST", "/followups", camel(locals(), per_sdr=per_sdr or 0))

    # -- faults, outages, clock ---------------------------------------------------------------

    def set_fault(
        self,
        endpoint: str = "*",
        *,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        error_rate: float = 0.0,
        error_status: int = 503,
        rate_limit_rate: float = 0.0,
        retry_after: float | None = None,
        retry_after_date: bool = False,
        drop_rate: float = 0.0,
        phase: str = "before",
    ) -> dict[str, Any]:
        """Replace the fault rule of `endpoint` (a template like `GET /v1/sdrs`, or `*`)."""
        return self._call("POST", "/faults", camel(locals()))

    def fail_next(
        self,
        endpoint: str = "*",
        count: int = 1,
        status: int = 503,
        *,
        retry_after: float | None = None,
        retry_after_date: bool = False,
        drop: bool = False,
        latency_ms: float = 0.0,
        phase: str = "before",
        garble: str | None = None,
        drip_ms: float | None = None,
    ) -> dict[str, Any]:
        """The next `count` calls to `endpoint` get `status`, are dropped (`drop=True`), or get
        a garbled answer (`garble`: one of `faults.GARBLES`; `drip_ms` paces a drip)."""
        return self._call("POST", "/faults/next", camel(locals()))

    def garble_next(
        self,
        endpoint: str = "*",
        count: int = 1,
        garble: str = "encoding",
        *,
        phase: str = "before",
        drip_ms: float | None = None,
    ) -> dict[str, Any]:
        """The next `count` answers of `endpoint` garbled the way `garble` names."""
        return self.fail_next(endpoint, count, garble=garble, phase=phase, drip_ms=drip_ms)

    def drop_next(self, endpoint: str = "*", count: int = 1, phase: str = "before") -> None:
        self.fail_next(endpoint, count, drop=True, phase=phase)

    def clear_faults(self, endpoint: str | None = None) -> None:
        self._call("DELETE", "/faults", params=camel(locals()))

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def refuse(self, seconds: float | None = None) -> dict[str, Any]:
        """Stop the API listener (connections refused) for `seconds`, or until `end_outage`."""
        return self._call("POST", "/outage", camel(locals(), mode="refuse"))

    def error_outage(self, seconds: float | None = None, status: int = 503) -> dict[str, Any]:
        return self._call("POST", "/outage", camel(locals(), mode="error"))

    def end_outage(self) -> dict[str, Any]:
        return self._call("DELETE", "/outage")

    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "/clock", {"advanceSeconds": seconds})

    def set_clock_offset(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "/clock", {"offsetSeconds": seconds})

    def set_now(self, moment: datetime | str) -> dict[str, Any]:
        """Set sandbox time to `moment` (a datetime without a zone is UTC, as in ISO strings)."""
        if isinstance(moment, datetime):
            moment = iso_ms((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
        return self._call("POST", "/clock", {"now": moment})

    def settings(
        self,
        *,
        followup_delay_seconds: float | None = None,
        allow_http_webhooks: bool | None = None,
    ) -> dict[str, Any]:
        return self._call("POST", "/settings", camel(locals()))

    # -- the call log -------------------------------------------------------------------------

    def calls(
        self, since: int = 0, endpoint: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every /v1 call after sequence number `since`, oldest first."""
        return list(self._call("GET", "/calls", params=camel(locals()))["calls"])

    def last_seq(self) -> int:
        """The sequence number of the latest call: pass it as `since` to see only newer ones."""
        return int(self._call("GET", "/calls", params={"limit": 1, "since": 1 << 62})["totalSeq"])

    # -- webhook sender -----------------------------------------------------------------------

    def send_webhooks(
        self,
        url: str,
        secret: str,
        count: int = 1,
        *,
        rate: float = 0.0,
        concurrency: int = 10,
        mix: Mapping[str, float] | None = None,
        duplicate_share: float = 0.0,
        redeliver_share: float = 0.0,
        reply_ids: list[str] | None = None,
        emails: list[str] | None = None,
        reply_id_prefix: str | None = None,
        email_domains: list[str] | None = None,
        campaign_ids: list[str] | None = None,
        timeout: float = 10.0,
        retry_scale: float = 1.0,
        drop_share: float | None = None,
    ) -> dict[str, Any]:
        """Start a job posting `count` signed `reply.received` events to `url`; its summary.
        `drop_share` (0 to 1) of the events are dropped, never sent (None: `drop_webhooks`)."""
        body = camel(locals(), mix=dict(mix) if mix else None)
        return self._call("POST", "/webhooks/send", body)

    def drop_webhooks(self, share: float) -> dict[str, Any]:
        """Drop `share` (0 to 1; 1 = all) of each later job's events: `{share, dropped}`."""
        return self._call("POST", "/webhooks/drop", {"share": share})

    def dropped_webhooks(self) -> list[str]:
        """The reply ids whose webhooks were dropped, in the order they were."""
        return list(self._call("GET", "/webhooks/dropped")["replyIds"])

    def replies_listing(
        self,
        *,
        envelope: str | None = None,
        paging: bool | None = None,
        timestamps: str | None = None,
        default_per_page: int | None = None,
        max_per_page: int | None = None,
    ) -> dict[str, Any]:
        """How `GET /v1/replies` answers (`envelope` bare|data|replies, `paging` False to ignore
        page/perPage, `timestamps` seconds|millis|mixed); changes what is given, returns all."""
        body = camel(locals())
        if not body:
            return self._call("GET", "/replies/listing")
        return self._call("POST", "/replies/listing", body)

    def webhook_job(self, job_id: str, deliveries: bool = True) -> dict[str, Any]:
        params = None if deliveries else {"deliveries": "false"}
        return self._call("GET", f"/webhooks/jobs/{job_id}", params=params)

    def webhook_jobs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/webhooks/jobs")["jobs"])

    def cancel_webhook_job(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/webhooks/jobs/{job_id}")

    def wait_webhook_job(
        self, job_id: str, timeout: float = 60.0, deliveries: bool = True
    ) -> dict[str, Any]:
        """Poll until the job is no longer running; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.webhook_job(job_id, deliveries=False)
            if report["status"] != "running":
                return self.webhook_job(job_id, deliveries=deliveries) if deliveries else report
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhook job {job_id} still running after {timeout} s")
            time.sleep(0.05)
