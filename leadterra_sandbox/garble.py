"""Garbled answers: what a broken server or a misconfigured proxy sends (`faults.GARBLES`).

Each is written for real over the connection, so a client meets it as it would in production:

    encoding   200, `Content-Encoding: gzip` over a plain JSON body   httpx: DecodingError
    not_json   200, an HTML error page                               not JSON
    deep       200, JSON arrays nested 100 000 deep                  parsers hit their stack
    shape      200, `{"data":[{"garbled":true}]}`                    JSON of the wrong shape
    chunks     200, chunked framing with a chunk size that is not hex  httpx: RemoteProtocolError
    truncated  200, a body 100 bytes short of its Content-Length, then a close   likewise
    drip       200, the right answer one byte every `dripMs`          a client without an overall
                                                                      deadline waits it out

`body` is what the handler answered (phase "after": the call took effect, only its answer is
garbled) or `STAND_IN` (phase "before": nothing happened). A client that reads a dripped
stand-in to its end and takes it for success is the bug the drip is there to show.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

STAND_IN = b'{"data":{"garbled":true}}'
DEPTH = 100_000
HTML = b"<html><body><h1>502 Bad Gateway</h1>upstream sent an invalid answer</body></html>"


def _head(*headers: str) -> bytes:
    return (
        "\r\n".join(["HTTP/1.1 200 OK", "Content-Type: application/json", *headers]) + "\r\n\r\n"
    ).encode()


def _raw(request: web.Request, data: bytes) -> web.StreamResponse:
    """Write `data` as the whole answer, bypassing aiohttp's framing, then close."""
    if request.transport is not None:
        request.transport.write(data)
    request.protocol.force_close()  # the buffered bytes are flushed before the close
    return web.Response(status=200)  # never sent: the connection is closed


async def _drip(request: web.Request, body: bytes, interval: float) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        for at in range(len(body)):
            await response.write(body[at : at + 1])
            await asyncio.sleep(interval)
        await response.write_eof()
    except OSError:  # the client gave up (aiohttp raises a ConnectionResetError): the point
        pass
    return response


async def answer(kind: str, request: web.Request, body: bytes, drip_s: float) -> web.StreamResponse:
    """The garbled answer of `kind` to `request`, built from `body`."""
    json_type = "application/json"
    if kind == "encoding":
        headers = {"Content-Type": json_type, "Content-Encoding": "gzip"}
        return web.Response(body=body, headers=headers)
    if kind == "not_json":
        return web.Response(body=HTML, content_type="text/html")
    if kind == "deep":
        return web.Response(body=b"[" * DEPTH + b"]" * DEPTH, content_type=json_type)
    if kind == "shape":
        return web.Response(body=b'{"data":[{"garbled":true}]}', content_type=json_type)
    if kind == "chunks":
        return _raw(
            request, _head("Transfer-Encoding: chunked") + b"zz\r\n" + body + b"\r\n0\r\n\r\n"
        )
    if kind == "truncated":
        return _raw(request, _head(f"Content-Length: {len(body) + 100}") + body)
    return await _drip(request, body, drip_s)
