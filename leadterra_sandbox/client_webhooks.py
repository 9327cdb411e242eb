"""The webhook-sender part of `SandboxControl`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from leadterra_sandbox.client_base import ControlBase, drop_none


class WebhookJobsControl(ControlBase):
    """Start, watch and cancel webhook-sender jobs."""

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
    ) -> dict[str, Any]:
        """Start a job posting `count` signed `reply.received` events to `url`; its summary."""
        body = drop_none(
            url=url,
            secret=secret,
            count=count,
            rate=rate,
            concurrency=concurrency,
            mix=dict(mix) if mix else None,
            duplicateShare=duplicate_share,
            redeliverShare=redeliver_share,
            replyIds=reply_ids,
            emails=emails,
            replyIdPrefix=reply_id_prefix,
            emailDomains=email_domains,
            campaignIds=campaign_ids,
            timeout=timeout,
            retryScale=retry_scale,
        )
        return dict(self._call("POST", "/webhooks/send", body))

    def webhook_job(self, job_id: str, deliveries: bool = True) -> dict[str, Any]:
        params = None if deliveries else {"deliveries": "false"}
        return dict(self._call("GET", f"/webhooks/jobs/{job_id}", params=params))

    def webhook_jobs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/webhooks/jobs")["jobs"])

    def cancel_webhook_job(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/webhooks/jobs/{job_id}"))

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
