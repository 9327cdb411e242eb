"""The ingest floors: bare ASGI apps on the receiver's own server, `python -m bench.floors KIND`.

    stack     read the body, answer 202: what uvicorn + httptools + uvloop cost per request
    durable   read the body, verify the HMAC, one async Redis LPUSH, answer 202: the least a
              durable receiver can do

Both run under `worker.receiver.server.serve` (same uvicorn flags, the same GuardedProtocol) with
HOST and PORT from the environment, and answer with a small JSON body, as the receiver does; the
admin listener (ADMIN_PORT) serves the stack app.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

ANSWER = b'{"status":"enqueued"}'
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(ANSWER)).encode()),
]


async def _lifespan(receive: Receive, send: Send, on_stop: Callable[[], Awaitable[None]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await on_stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


async def _nothing() -> None:
    return None


def stack_app() -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send, _nothing)
        await _body(receive)
        await _answer(send, 202)

    return app


def durable_app(redis_url: str, secret: str, queue: str) -> App:
    import redis.asyncio as aioredis

    # the receiver's pool: blocking, 64 connections (worker/receiver/web.py redis_for_web)
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=3)
    client = aioredis.Redis(connection_pool=pool)
    key = secret.encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send, client.aclose)
        body = await _body(receive)
        given = b""
        for name, value in scope["headers"]:
            if name == b"x-leadterra-signature":
                given = value
        expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, given):
            return await _answer(send, 401)
        await client.lpush(queue, body)
        await _answer(send, 202)

    return app


def main() -> None:
    from config.settings import load_settings
    from worker.receiver.server import serve

    kind = sys.argv[1]
    settings = load_settings()
    if kind == "stack":
        app = stack_app()
    elif kind == "durable":
        secret = settings.leadterra_webhook_secret
        assert secret is not None, "LEADTERRA_WEBHOOK_SECRET is required"
        app = durable_app(settings.redis_url, secret.get_secret_value(), "bench:floor")
    else:
        raise SystemExit(f"unknown floor {kind!r}: stack or durable")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(settings, app, stack_app())


if __name__ == "__main__":
    main()
