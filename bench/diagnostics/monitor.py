"""Which Redis commands each process sends per assignment, from Redis's MONITOR stream.

MONITOR costs Redis a lot, so it runs only in the profile scenario, on a small batch. Each
command is attributed to a process by its client port (the sockets each process holds, read
from /proc), or to `lua` when a script issued it; pipelines show as several commands sent in
one round trip.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any

import redis

from bench.procfs import local_ports


class CommandLog:
    """Collects (client port or 'lua', command name) while running, in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._ready = threading.Event()

    def _listen(self) -> None:
        client = redis.Redis.from_url(self.url)
        watch = client.monitor()  # type: ignore[no-untyped-call]
        with contextlib.suppress(redis.RedisError, OSError), watch as monitor:
            self._ready.set()
            while not self._stop.is_set():
                found = monitor.next_command()
                words = found["command"].split(" ", 1)
                who = "lua" if found["client_type"] == "lua" else found["client_port"]
                self.seen[(who, words[0].upper())] += 1
        client.close()

    def __enter__(self) -> CommandLog:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        with redis.Redis.from_url(self.url) as poke:
            poke.ping()  # wakes the listener so it sees the stop flag
        self._thread.join(5)

    def per_process(self, pids: dict[str, int], per: int) -> dict[str, dict[str, float]]:
        """Commands per `per` units (assignments), by process name, `lua` and `other`."""
        owner = {str(port): name for name, pid in pids.items() for port in local_ports(pid)}
        totals: dict[str, Counter[str]] = {}
        for (who, command), n in self.seen.items():
            name = "lua" if who == "lua" else owner.get(who, "other")
            totals.setdefault(name, Counter())[command] += n
        return {
            name: {cmd: round(n / per, 2) for cmd, n in counts.most_common()}
            for name, counts in totals.items()
        }


def summary(per_process: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {name: round(sum(c.values()), 2) for name, c in per_process.items()}
