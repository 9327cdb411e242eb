"""The record of every /v1 call, cheap enough for 10^5 calls a run.

A call is appended as a tuple (no dict, no copy: the body is the parsed JSON the handler saw)
and only becomes a dict when read back. Per-endpoint status counters are kept as it goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple


class Call(NamedTuple):
    seq: int
    at: float
    method: str
    path: str
    query: str
    endpoint: str
    key: str | None
    status: int
    fault: str | None
    body: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "endpoint": self.endpoint,
            "key": self.key,
            "status": self.status,
            "fault": self.fault,
            "body": self.body,
        }


class CallLog:
    """Calls by sequence number (from 1). Beyond `capacity`, the oldest are forgotten."""

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        self.calls: list[Call] = []
        self.first_seq = 1
        self.seq = 0
        self.counters: dict[str, dict[int, int]] = {}

    def record(
        self,
        at: float,
        method: str,
        path: str,
        query: str,
        endpoint: str,
        key: str | None,
        status: int,
        fault: str | None,
        body: Any,
    ) -> None:
        self.seq += 1
        self.calls.append(
            Call(self.seq, at, method, path, query, endpoint, key, status, fault, body)
        )
        by_status = self.counters.get(endpoint)
        if by_status is None:
            by_status = self.counters[endpoint] = {}
        by_status[status] = by_status.get(status, 0) + 1
        if len(self.calls) > self.capacity + self.capacity // 10:
            drop = len(self.calls) - self.capacity
            del self.calls[:drop]
            self.first_seq += drop

    def since(self, seq: int = 0, endpoint: str | None = None) -> Iterator[Call]:
        """Calls with a sequence number above `seq`, optionally of one endpoint template."""
        start = max(0, seq + 1 - self.first_seq)
        for call in self.calls[start:]:
            if endpoint is None or call.endpoint == endpoint:
                yield call

    def summary(self) -> dict[str, Any]:
        return {
            "total": self.seq,
            "kept": len(self.calls),
            "byEndpoint": {
                endpoint: {str(status): n for status, n in sorted(by_status.items())}
                for endpoint, by_status in sorted(self.counters.items())
            },
        }
