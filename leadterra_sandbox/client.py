"""`SandboxControl`: the control API as a small synchronous client for tests, demo and bench.

One `httpx.Client` on the control URL (not the API URL: the control port stays up during a
`refuse` outage). Methods take snake_case arguments and send the camelCase JSON documented in
docs/sandbox.md; they return the decoded answer and raise `ControlError` on a non-2xx.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from leadterra_sandbox.client_base import ControlError, drop_none
from leadterra_sandbox.client_webhooks import WebhookJobsControl
from worker.leadterra.models import iso_ms

__all__ = ["ControlError", "SandboxControl"]


class SandboxControl(WebhookJobsControl):
    """Drive a running sandbox through its control URL, e.g. `http://127.0.0.1:8091`."""

    # -- process ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/health"))

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
        return dict(self._call("GET", "/state"))

    def summary(self) -> dict[str, Any]:
        return dict(self._call("GET", "/summary"))

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
        body: dict[str, Any] = {"mode": mode}
        body.update(
            {"sdrs": sdrs}
            if sdrs is not None
            else {"count": count or 0, "disconnected": disconnected}
        )
        return list(self._call("POST", "/sdrs", body).get("sdrs", []))

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
        """Replies as given, or `count` replies `{prefix}000001...` sharing `fields`."""
        if replies is not None:
            return dict(self._call("POST", "/replies", {"replies": replies, "mode": mode}))
        body = {**fields, **drop_none(count=count or 0, prefix=prefix), "mode": mode}
        return dict(self._call("POST", "/replies", body))

    def add_campaigns(self, campaign_ids: list[str]) -> None:
        self._call("POST", "/campaigns", {"campaignIds": campaign_ids})

    def seed_threads(self, threads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self._call("POST", "/threads", {"threads": threads}).get("threads", []))

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
            return dict(self._call("POST", "/followups", {"followups": followups}))
        body = drop_none(
            perSdr=per_sdr or 0,
            sdrIds=sdr_ids,
            statuses=dict(statuses) if statuses else None,
            dueFromSeconds=due_from_seconds,
            dueToSeconds=due_to_seconds,
        )
        return dict(self._call("POST", "/followups", body))

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
        body = drop_none(
            endpoint=endpoint,
            latencyMs=latency_ms,
            jitterMs=jitter_ms,
            errorRate=error_rate,
            errorStatus=error_status,
            rateLimitRate=rate_limit_rate,
            retryAfter=retry_after,
            retryAfterFormat="date" if retry_after_date else "seconds",
            dropRate=drop_rate,
            phase=phase,
        )
        return dict(self._call("POST", "/faults", body))

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
    ) -> dict[str, Any]:
        """The next `count` calls to `endpoint` get `status` (or are dropped, `drop=True`)."""
        body = drop_none(
            endpoint=endpoint,
            count=count,
            status=status,
            retryAfter=retry_after,
            retryAfterFormat="date" if retry_after_date else "seconds",
            drop=drop,
            latencyMs=latency_ms,
            phase=phase,
        )
        return dict(self._call("POST", "/faults/next", body))

    def drop_next(self, endpoint: str = "*", count: int = 1, phase: str = "before") -> None:
        self.fail_next(endpoint, count, drop=True, phase=phase)

    def clear_faults(self, endpoint: str | None = None) -> None:
        self._call("DELETE", "/faults", params=drop_none(endpoint=endpoint))

    def faults(self) -> dict[str, Any]:
        return dict(self._call("GET", "/faults"))

    def refuse(self, seconds: float | None = None) -> dict[str, Any]:
        """Stop the API listener (connections refused) for `seconds`, or until `end_outage`."""
        return dict(self._call("POST", "/outage", drop_none(mode="refuse", seconds=seconds)))

    def error_outage(self, seconds: float | None = None, status: int = 503) -> dict[str, Any]:
        body = drop_none(mode="error", seconds=seconds, status=status)
        return dict(self._call("POST", "/outage", body))

    def end_outage(self) -> dict[str, Any]:
        return dict(self._call("DELETE", "/outage"))

    def clock(self) -> dict[str, Any]:
        return dict(self._call("GET", "/clock"))

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return dict(self._call("POST", "/clock", {"advanceSeconds": seconds}))

    def set_clock_offset(self, seconds: float) -> dict[str, Any]:
        return dict(self._call("POST", "/clock", {"offsetSeconds": seconds}))

    def set_now(self, moment: datetime | str) -> dict[str, Any]:
        now = moment if isinstance(moment, str) else iso_ms(moment)
        return dict(self._call("POST", "/clock", {"now": now}))

    def settings(
        self,
        *,
        followup_delay_seconds: float | None = None,
        allow_http_webhooks: bool | None = None,
    ) -> dict[str, Any]:
        body = drop_none(
            followupDelaySeconds=followup_delay_seconds, allowHttpWebhooks=allow_http_webhooks
        )
        return dict(self._call("POST", "/settings", body))

    # -- the call log -------------------------------------------------------------------------

    def calls(
        self, since: int = 0, endpoint: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every /v1 call after sequence number `since`, oldest first."""
        params = drop_none(since=since, endpoint=endpoint, limit=limit)
        return list(self._call("GET", "/calls", params=params)["calls"])

    def last_seq(self) -> int:
        """The sequence number of the latest call: pass it as `since` to see only newer ones."""
        return int(self._call("GET", "/calls", params={"limit": 1, "since": 1 << 62})["totalSeq"])
