"""`leadrouter worker`, whose Leadterra calls raise the exceptions a test scripts in Redis.

    python -m tests.support.raising_worker        # same settings, env and Celery as the Procfile's

Test-only: the service has no hook for this. Before the worker starts, this module wraps
`httpx.HTTPTransport.handle_request`, the last step inside the Leadterra client before the
socket, so an assign call for reply `r` raises what `script(client, prefix, r, spec)` put in
Redis, its first `times` times, and then reaches the sandbox as usual. The exception is built in
this process from a spec: a base (a built-in, an httpx class, or one defined here), a class name
(a subclass is made on the fly, however odd its name) and a message. Everything after it (the
client's mapping, the task policy, Celery's thread pool, Redis) is the real worker's.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import redis

MODULE = "tests.support.raising_worker"  # its name here and in tests, even run as __main__
SPEC_KEY = "raise:{}"  # under KEY_PREFIX: the spec for one reply
COUNT_KEY = "raised:{}"  # how many times it was raised so far
ASSIGN = "/v1/replies/"
REQUEST = httpx.Request("POST", "http://leadterra.test/v1/replies/x/assign")


class Unprintable(Exception):
    """Its message cannot be rendered: `str()` raises."""

    __module__ = MODULE

    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


class Huge(Exception):
    """A message of a megabyte."""

    __module__ = MODULE

    def __str__(self) -> str:
        return "huge " * 200_000


class Halt(BaseException):
    """A BaseException a library might define."""

    __module__ = MODULE


LOCAL = {"Unprintable": Unprintable, "Huge": Huge, "Halt": Halt}


def _base(name: str) -> type[BaseException]:
    module, _, attr = name.rpartition(".")
    source: Any = {"builtins": builtins, "httpx": httpx, "local": None, "asyncio": asyncio}[module]
    kind = LOCAL[attr] if source is None else getattr(source, attr)
    assert isinstance(kind, type) and issubclass(kind, BaseException), name
    return kind


def _make(kind: type[BaseException], message: str) -> BaseException:
    """An instance of `kind`, whatever its constructor wants."""
    if issubclass(kind, UnicodeEncodeError):
        return kind("ascii", message or "x", 0, 1, "ordinal not in range(128)")
    if issubclass(kind, UnicodeDecodeError):
        return kind("utf-8", (message or "x").encode(), 0, 1, "invalid start byte")
    if issubclass(kind, httpx.HTTPStatusError):
        return kind(message, request=REQUEST, response=httpx.Response(502, request=REQUEST))
    if issubclass(kind, OSError):
        return kind(104, message)
    try:
        return kind(message)
    except TypeError:  # a class that takes no message (httpx.StreamConsumed)
        return kind()


def build(spec: dict[str, Any]) -> BaseException:
    base = _base(spec["base"])
    name = spec.get("name")
    kind = type(name, (base,), {"__module__": MODULE}) if name else base
    return _make(kind, spec.get("message", ""))


def script(client: redis.Redis, prefix: str, reply_id: str, spec: dict[str, Any]) -> None:
    """Make the worker's next `spec["times"]` assign calls for `reply_id` raise `spec`."""
    client.set(prefix + SPEC_KEY.format(reply_id), json.dumps(spec))


def _hook(client: redis.Redis, prefix: str) -> Callable[[httpx.Request], None]:
    def maybe_raise(request: httpx.Request) -> None:
        path = request.url.path
        if not (path.startswith(ASSIGN) and path.endswith("/assign")):
            return
        reply_id = unquote(path[len(ASSIGN) : -len("/assign")])
        raw = client.get(prefix + SPEC_KEY.format(reply_id))
        if raw is None:
            return
        spec = json.loads(raw)
        if int(client.incr(prefix + COUNT_KEY.format(reply_id))) <= int(spec["times"]):
            raise build(spec)

    return maybe_raise


def install() -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    maybe_raise = _hook(client, os.environ.get("KEY_PREFIX", "leadrouter:"))
    original = httpx.HTTPTransport.handle_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        maybe_raise(request)
        return original(self, request)

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    from worker.cli.main import main

    main()
