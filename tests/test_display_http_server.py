"""The display's own small HTTP server (busd.display.http), spoken to with raw bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from busd.display.http import HttpError, HttpServer, Request, Response, Router, Stream


async def _hello(request: Request) -> Response:
    return Response.text(f"hello {request.query.get('who', '')} {len(request.body)}\n")


async def _broken(request: Request) -> Response:
    raise RuntimeError("a bug")


async def _named(request: Request) -> Response:
    return Response.json({"name": request.match["name"]})


def _admit(request: Request) -> None:
    if request.headers.get("host") != "ok":
        raise HttpError(421, "unknown host\n")


def _finish(request: Request, response: Response | Stream) -> None:
    response.headers.setdefault("X-Frame-Options", "DENY")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    router = Router()
    router.add("GET", "/hello", _hello)
    router.add("POST", "/hello", _hello)
    router.add("GET", "/broken", _broken)
    router.add("GET", "/static/{name}", _named)
    server = HttpServer(router, admit=_admit, finish=_finish, max_body=16, idle_timeout_s=5)
    yield await server.start("127.0.0.1", 0)
    await server.close()


async def _exchange(port: int, data: bytes, answers: int = 1) -> list[tuple[int, bytes, bytes]]:
    """Send ``data``; read ``answers`` responses (status, head, body) or up to the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        writer.write(data)
        async with asyncio.timeout(10):
            for _ in range(answers):
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                body = await (reader.read() if length is None else reader.readexactly(length))
                out.append((status, head, body))
    finally:
        writer.close()
    return out


async def test_keep_alive_serves_several_requests_on_one_connection(port: int) -> None:
    answers = await _exchange(port, b"GET /hello?who=bus HTTP/1.1\r\nHost: ok\r\n\r\n"
                                    b"POST /hello HTTP/1.1\r\nHost: ok\r\nContent-Length: 3\r\n"
                                    b"\r\nabcGET /static/app.js HTTP/1.1\r\nHost: ok\r\n"
                                    b"Connection: close\r\n\r\n", answers=3)
    assert [(status, body) for status, _, body in answers] == [
        (200, b"hello bus 0\n"), (200, b"hello  3\n"), (200, b'{"name": "app.js"}')]
    assert all(b"X-Frame-Options: DENY" in head for _, head, _ in answers)
    assert b"Connection: close" in answers[2][1]


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /nowhere HTTP/1.1\r\nHost: ok\r\n\r\n", 404),
    (b"DELETE /hello HTTP/1.1\r\nHost: ok\r\n\r\n", 405),
    (b"GET /hello HTTP/1.1\r\nHost: evil\r\n\r\n", 421),
    (b"GET /broken HTTP/1.1\r\nHost: ok\r\n\r\n", 500),
    (b"\x16\x03\x01 TLS hello\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nHost ok\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nHost: ok\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /hello HTTP/1.1\r\nHost: ok\r\nContent-Length: 17\r\n\r\n" + b"x" * 17, 413),
    (b"POST /hello HTTP/1.1\r\nHost: ok\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"GET /hello HTTP/1.1\r\nHost: ok\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /hello HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
])
async def test_bad_requests_get_a_clear_status(port: int, request_bytes: bytes,
                                               status: int) -> None:
    [(got, _, _)] = await _exchange(port, request_bytes)
    assert got == status


async def test_the_server_keeps_serving_after_a_bad_request(port: int) -> None:
    await _exchange(port, b"GET /broken HTTP/1.1\r\nHost: ok\r\n\r\n")
    await _exchange(port, b"garbage\r\n\r\n")
    [(status, _, body)] = await _exchange(port, b"GET /hello HTTP/1.0\r\nHost: ok\r\n\r\n")
    assert (status, body) == (200, b"hello  0\n")


async def test_a_stream_ends_its_chunks_when_the_server_closes() -> None:
    ended = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            await asyncio.Event().wait()  # as a quiet SSE stream waits for news
            yield b"never"
        finally:
            ended.set()

    async def events(request: Request) -> Stream:
        return Stream(chunks(), "text/event-stream")

    router = Router()
    router.add("GET", "/events", events)
    server = HttpServer(router, admit=lambda r: None, finish=lambda r, s: None)
    port = await server.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"Content-Type: text/event-stream" in head and b"Connection: close" in head
            assert await reader.readuntil(b"\n\n") == b"data: 1\n\n"
            await server.close()
            await ended.wait()  # the handler's clean-up ran
            assert await reader.read() == b""  # and the connection was closed
    finally:
        writer.close()
