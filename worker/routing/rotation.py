"""Which SDR gets a reply: one atomic Lua call per pick (worker/routing/lua/rotation.lua).

The call remembers the pick per reply id, so a retry, a redelivery or a concurrent twin gets the
same SDR and the rotation moves once per unique reply. Eligible SDRs are those with `gmailConnected`
in `GET /v1/sdrs`, cached briefly in Redis; the policy (weights, caps, paused, away, sticky
accounts, mailbox health) comes from worker/routing/policy.py and rides along as JSON, so the pick
stays one round trip whatever the policy.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from importlib.resources import files
from typing import Any

import redis

from worker.errors import NoEligibleSdr
from worker.keys import Keys, text
from worker.leadterra.models import Sdr
from worker.logs import get_logger

log = get_logger("leadrouter.rotation")
LAST_KNOWN_SECONDS = 86400
#: how long one process holds the right to refresh the SDR cache ahead of its expiry
REFRESH_HOLD_MS = 10_000
SCRIPT = files("worker.routing.lua").joinpath("rotation.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Policy:
    """What the roster says right now; the default is plain round-robin."""

    weights: dict[str, int] = field(default_factory=dict)
    off: dict[str, str] = field(default_factory=dict)
    #: SDR id -> (daily cap, that SDR's counter key for today in its own time zone)
    caps: dict[str, tuple[int, str]] = field(default_factory=dict)
    sticky_key: str | None = None
    sticky_ttl: int = 0
    account_hash: str = ""
    use_health: bool = False
    roster_hash: str = ""


@dataclass(frozen=True)
class Pick:
    """The outcome of a pick. `kind` is picked, prior (remembered) or done (already handled)."""

    kind: str
    sdr_id: str | None
    rule: str = ""
    candidates: list[Any] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    done: dict[str, Any] | None = None


def account_of(email: str | None, by: str, free_mail: frozenset[str]) -> str | None:
    """The sticky account of an address: its domain, or the address; never a free-mail domain."""
    if by == "none" or not email or "@" not in email:
        return None
    address = email.strip().lower()
    domain = address.rsplit("@", 1)[1]
    if by == "email":
        return address
    return None if domain in free_mail else domain


def account_hash(account: str) -> str:
    return hashlib.sha1(account.encode(), usedforsecurity=False).hexdigest()[:16]


class Rotation:
    def __init__(self, client: redis.Redis, keys: Keys, *, pick_ttl: int, cache_ttl: int) -> None:
        self._redis = client
        self._keys = keys
        self._pick_ttl = pick_ttl
        self._cache_ttl = cache_ttl
        self._script = client.register_script(SCRIPT)
        self._refresh_lock = threading.Lock()
        self._ahead_lock = threading.Lock()
        self._ahead_not_before = 0.0
        self.stream_max = 10000

    # -- the SDR cache ------------------------------------------------------------------------

    def store_roster(self, sdrs: list[Sdr]) -> None:
        """Cache `GET /v1/sdrs` as [[id, connected], ...] in a stable order (by id); keep a
        copy with its time past the cache's TTL, for the console (a day)."""
        entries = [[s.id, bool(s.gmail_connected)] for s in sorted(sdrs, key=lambda s: s.id)]
        last = {"at": time.time(), "sdrs": entries}
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.sdr_cache, json.dumps(entries), ex=self._cache_ttl)
            pipe.set(self._keys.sdr_last_known, json.dumps(last), ex=LAST_KNOWN_SECONDS)
            pipe.execute()

    def _refresh_ahead(self, ttl_ms: int, refresh: Callable[[], list[Sdr]]) -> None:
        """In the last third of the cache's life, one thread of one process reads the roster
        again in the background, so no pick waits for `GET /v1/sdrs` (a burst of replies used
        to, every SDR_CACHE_SECONDS: the p99 from webhook to assignment). If it fails, the
        cache expires and the next pick refreshes it in line, as without this."""
        if ttl_ms < 0 or ttl_ms > self._cache_ttl * 1000 // 3:
            return
        if time.monotonic() < self._ahead_not_before:
            return  # another process claimed it a moment ago
        if not self._ahead_lock.acquire(blocking=False):
            return  # this process refreshes already
        try:
            claimed = self._redis.set(self._keys.sdr_refreshing, "1", nx=True, px=REFRESH_HOLD_MS)
        except Exception:
            self._ahead_lock.release()
            raise
        if not claimed:  # ask again in a second, not at every pick
            self._ahead_not_before = time.monotonic() + 1.0
            self._ahead_lock.release()
            return
        threading.Thread(
            target=self._refresh_in_background, args=(refresh,), name="sdrs-refresh", daemon=True
        ).start()

    def _refresh_in_background(self, refresh: Callable[[], list[Sdr]]) -> None:
        started = time.perf_counter()
        try:
            sdrs = refresh()
            self.store_roster(sdrs)
        except Exception as exc:  # the cache expires and the next pick refreshes in line
            status = getattr(exc, "status", None)
            log.warning("sdrs.refresh_failed", ahead=True, error=type(exc).__name__, status=status)
        else:
            log.info(
                "sdrs.refreshed",
                ahead=True,
                sdrs=len(sdrs),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        finally:
            self._ahead_lock.release()

    def cached_roster(self) -> list[tuple[str, bool]] | None:
        raw = self._redis.get(self._keys.sdr_cache)
        return [(i, bool(c)) for i, c in json.loads(raw)] if raw else None

    def invalidate(self) -> None:
        self._redis.delete(self._keys.sdr_cache)

    def forget(self, reply_id: str) -> None:
        """Drop a remembered pick (its SDR turned out unable to take the reply)."""
        self._redis.delete(self._keys.pick(reply_id))

    # -- the pick -----------------------------------------------------------------------------

    def _call(self, reply_id: str, policy: Policy, attempt: int, never: list[str]) -> list[Any]:
        keys = [
            self._keys.sdr_cache,
            self._keys.rotation_credit,
            self._keys.rotation_count,
            self._keys.pick(reply_id, attempt),
            self._keys.done(reply_id),
            self._keys.mailbox_health,
            self._keys.decisions,
        ]
        doc: dict[str, Any] = {
            "w": policy.weights,
            "off": policy.off,
            "health": 1 if policy.use_health else 0,
            "roster": policy.roster_hash,
            "account": policy.account_hash,
            "stream_max": self.stream_max,
        }
        if attempt != 1:
            doc["attempt"] = attempt
            doc["never"] = never
        if policy.sticky_key:
            keys.append(policy.sticky_key)
            doc["sticky"] = len(keys)
            doc["sticky_ttl"] = policy.sticky_ttl
        caps = {}
        for sdr_id, (cap, key) in policy.caps.items():
            keys.append(key)
            caps[sdr_id] = [cap, len(keys)]
        doc["cap"] = caps
        result: list[Any] = self._script(
            keys=keys, args=[reply_id, self._pick_ttl, json.dumps(doc)]
        )
        return [text(r) for r in result]

    def pick(
        self,
        reply_id: str,
        policy: Policy,
        refresh: Callable[[], list[Sdr]],
        *,
        attempt: int = 1,
        never: Collection[str] = (),
    ) -> Pick:
        """The SDR for this reply; raises NoEligibleSdr when nobody can take it now.

        Attempt 1 is the handoff. A later attempt (an SLA re-route) is remembered on its own,
        ignores the reply's `done` record and picks nobody in `never` (who had the reply); it
        moves the rotation like any pick."""
        call = partial(self._call, reply_id, policy, attempt, sorted(never))
        result = call()
        if result[0] == "refresh":
            with self._refresh_lock:
                if self.cached_roster() is None:
                    self.store_roster(refresh())
            result = call()
            if result[0] == "refresh":  # the cache expired between the two calls
                self.store_roster(refresh())
                result = call()
        kind = result[0]
        if kind in ("picked", "none"):
            self._refresh_ahead(int(result[-1]), refresh)
        if kind == "done":
            return Pick("done", None, done=json.loads(result[1]))
        if kind == "prior":
            return Pick("prior", result[1], rule="remembered")
        if kind == "none":
            raise NoEligibleSdr(excluded=json.loads(result[1]) or {})
        return Pick(
            "picked",
            result[1],
            rule=result[2],
            candidates=json.loads(result[3]) or [],
            excluded=json.loads(result[4]) or {},
        )

    # -- views for the CLI ----------------------------------------------------------------------

    def mailbox_health(self) -> dict[str, str]:
        """The last known Gmail health state per SDR (worker/routing/mailbox_health.py keeps it)."""
        raw = self._redis.hgetall(self._keys.mailbox_health)
        return {text(k): text(v) for k, v in raw.items()}

    def state(self) -> dict[str, dict[str, float]]:
        """Each SDR's credit and pick count."""
        out: dict[str, dict[str, float]] = {}
        for field_name, key in (
            ("credit", self._keys.rotation_credit),
            ("count", self._keys.rotation_count),
        ):
            for raw_id, value in self._redis.hgetall(key).items():
                out.setdefault(text(raw_id), {})[field_name] = float(value)
        return out
