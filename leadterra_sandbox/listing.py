"""How `GET /v1/replies` answers: its envelope, its paging and its timestamps, switchable.

Leadterra's pages disagree on the envelope (a bare array, `{"data": [...]}`, or
`{"replies": [...], "pagination": {"total", "page", "perPage"}}`), name no paging parameters
and no page-size maximum, and format reply times with seconds while other pages use
milliseconds. The sandbox serves each variant on demand so the client can be tried on all of
them (`POST /_control/replies/listing`):

- `envelope`: `bare` (an array), `data` (the default) or `replies` (with `pagination`);
- `paging`: true (the default) honours `page` (from 1) and `perPage`; false ignores both, so
  every call answers the first page, as a server that names them differently would;
- `timestamps`: `seconds` (the default), `millis`, or `mixed` (every other reply in milliseconds);
- `defaultPerPage` (50) and `maxPerPage` (100, Leadterra's is undocumented): the page size
  without `perPage`, and the clamp on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from leadterra_sandbox.clock import iso_ms
from leadterra_sandbox.errors import invalid
from leadterra_sandbox.records import Reply

ENVELOPES = ("bare", "data", "replies")
TIMESTAMPS = ("seconds", "millis", "mixed")


@dataclass(frozen=True, slots=True)
class Whole:
    """A body the API app sends as it is, not under `data`."""

    body: Any


@dataclass(slots=True)
class Listing:
    envelope: str = "data"
    paging: bool = True
    timestamps: str = "seconds"
    default_per_page: int = 50
    max_per_page: int = 100

    def settings(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope,
            "paging": self.paging,
            "timestamps": self.timestamps,
            "defaultPerPage": self.default_per_page,
            "maxPerPage": self.max_per_page,
        }

    def update(self, body: dict[str, Any]) -> None:
        """Change the fields `body` names (camelCase); 400 for a bad value, changing nothing."""
        envelope = body.get("envelope", self.envelope)
        paging = body.get("paging", self.paging)
        timestamps = body.get("timestamps", self.timestamps)
        default = body.get("defaultPerPage", self.default_per_page)
        maximum = body.get("maxPerPage", self.max_per_page)
        if envelope not in ENVELOPES:
            raise invalid(f"envelope must be one of {', '.join(ENVELOPES)}")
        if not isinstance(paging, bool):
            raise invalid("paging must be true or false")
        if timestamps not in TIMESTAMPS:
            raise invalid(f"timestamps must be one of {', '.join(TIMESTAMPS)}")
        sizes = (default, maximum)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise invalid("defaultPerPage and maxPerPage must be positive integers")
        self.envelope, self.paging, self.timestamps = envelope, paging, timestamps
        self.default_per_page, self.max_per_page = default, maximum

    def answer(self, replies: Sequence[Reply], page: int, per_page: int | None) -> Whole:
        """The body for one call: `page` from 1, `per_page` None for the default."""
        if not self.paging:
            page, per_page = 1, None
        size = min(per_page or self.default_per_page, self.max_per_page)
        start = (page - 1) * size
        chosen = replies[start : start + size]
        items = [self._item(reply, start + n) for n, reply in enumerate(chosen)]
        if self.envelope == "bare":
            return Whole(items)
        if self.envelope == "data":
            return Whole({"data": items})
        pagination = {"total": len(replies), "page": page, "perPage": size}
        return Whole({"replies": items, "pagination": pagination})

    def _item(self, reply: Reply, position: int) -> dict[str, Any]:
        item = reply.api()
        if self.timestamps == "millis" or (self.timestamps == "mixed" and position % 2):
            item["receivedAt"] = iso_ms(reply.received_at)
        return item
