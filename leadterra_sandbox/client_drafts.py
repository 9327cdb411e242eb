"""`SandboxControl`'s methods for AI drafts: list drafts and performed sends (count sends per
draft to prove exactly-once), and block sends with the guardrails (a 422 on send)."""

from __future__ import annotations

from typing import Any


def _query(**fields: Any) -> dict[str, Any]:
    """Query parameters in camelCase, None values left out."""
    out = {}
    for name, value in fields.items():
        if value is not None:
            head, *rest = name.split("_")
            out[head + "".join(part.title() for part in rest)] = value
    return out


class DraftControls:
    """Mixed into `SandboxControl`, which provides `_call`."""

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def drafts(
        self, *, sdr_id: str | None = None, thread_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Drafts in the order generated, with `threadId, sdrId, createdAt, confidence,
        instructions, sentAt, messageId, blockedCount` beside the API fields."""
        params = _query(sdr_id=sdr_id, thread_id=thread_id)
        return list(self._call("GET", "/drafts", params=params)["drafts"])

    def draft_sends(
        self,
        draft_id: str | None = None,
        *,
        thread_id: str | None = None,
        sdr_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Performed sends `{id, draftId, threadId, sdrId, at, messageId, bodyText, bodyHtml,
        additionalCc}` in order; blocked or refused sends are not among them."""
        params = _query(draft_id=draft_id, thread_id=thread_id, sdr_id=sdr_id)
        return list(self._call("GET", "/drafts/sends", params=params)["sends"])

    def block_sends(
        self,
        count: int | None = 1,
        *,
        draft_ids: list[str] | None = None,
        issues: list[Any] | None = None,
        scores: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The next `count` sends (None: leave the count as it is), and every send of
        `draft_ids`, answer 422 `guardrail_blocked` with `issues` and `scores`."""
        body = _query(next=count, draft_ids=draft_ids, issues=issues, scores=scores)
        return self._call("POST", "/drafts/guardrails", body)

    def guardrails(self) -> dict[str, Any]:
        return self._call("GET", "/drafts/guardrails")

    def clear_guardrails(self) -> dict[str, Any]:
        return self._call("DELETE", "/drafts/guardrails")
