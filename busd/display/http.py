"""A small HTTP/1.1 server on asyncio streams, for the display's one page.

The display needs very little of HTTP: a handful of GETs, two small JSON
POSTs and one Server-Sent Events stream, to one or two screens on loopback.
aiohttp did this, but importing it (its client, connector, resolver and
parsers come with its server) was 10 MB of the daemon's 66 MB
(benchmarks/can_ingest.py, issue 12 point 9), so this module serves it with
the standard library.

What it accepts, and what it refuses:

- request line and each header line up to 8 KiB, at most 100 headers,
  else 431 (or 400 for a line that is not HTTP), and the connection closes;
- bodies by ``Content-Length`` only, up to ``max_body`` bytes (413 beyond);
  a chunked request body gets 411: our page never sends one;
- keep-alive as HTTP/1.1 has it (``Connection: close`` or HTTP/1.0 ends it),
  and an idle connection is closed after ``idle_timeout_s``;
- a route that exists for another method answers 405, an unknown path 404.

A handler returns a :class:`Response`, or a :class:`Stream` whose chunks are
written as they come (the SSE stream), with ``Connection: close`` as its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import structlog

log = structlog.get_logger("busd.display.http")

MAX_LINE = 8192
MAX_HEADERS = 100


class HttpError(Exception):
    """Raised by a handler: answered with ``status`` and a short text."""

    def __init__(self, status: int, text: str = "") -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text or f"{HTTPStatus(status).phrase}\n"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""
    scheme: str = "http"
    match: dict[str, str] = field(default_factory=dict)  # the route's {name} parts

    @property
    def content_type(self) -> str:
        """The media type, without parameters, lower-cased ("" when absent)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def cookies(self) -> dict[str, str]:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in cookie.items()}

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not (nor UTF-8)."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"))

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        # NaN and Infinity are not JSON: refused (ValueError), never sent.
        return cls(status, json.dumps(data, allow_nan=False).encode(),
                   "application/json; charset=utf-8")


@dataclass
class Stream:
    """A response written chunk by chunk; closing ``chunks`` ends it."""

    chunks: AsyncIterator[bytes]
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


Handler = Callable[[Request], Awaitable[Response | Stream]]
Admit = Callable[[Request], None]  # raises HttpError for a request not to be routed at all
Finish = Callable[[Request, Response | Stream], None]  # adds headers to every answer


class Router:
    """Exact paths, and ``/prefix/{name}`` for one last path segment."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        self._routes.setdefault(path, {})[method] = handler

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        match: dict[str, str] = {}
        methods = self._routes.get(path)
        if methods is None:
            head, _, last = path.rpartition("/")
            for pattern, candidate in self._routes.items():
                prefix, _, name = pattern.rpartition("/")
                if name.startswith("{") and name.endswith("}") and prefix == head and last:
                    methods, match = candidate, {name[1:-1]: last}
                    break
        if methods is None:
            raise HttpError(404)
        handler = methods.get(method)
        if handler is None:
            raise HttpError(405)
        return handler, match


class HttpServer:
    """Serves a :class:`Router` until :meth:`close`; one task per connection."""

    def __init__(self, router: Router, *, admit: Admit, finish: Finish, max_body: int = 4096,
                 idle_timeout_s: float = 75.0) -> None:
        self._router = router
        self._admit = admit
        self._finish = finish
        self._max_body = max_body
        self._idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with port 0). OSError when it cannot."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_LINE)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs us as a task
        self._connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the screen went away or stayed silent: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):  # a reset peer: the socket is closed anyway
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        """Read and answer one request; False when the connection is to close."""
        try:
            # Idle keep-alive and a request sent too slowly end alike.
            async with asyncio.timeout(self._idle_timeout_s):
                first = await _line(reader)
                if not first:
                    return False
                request, keep_alive = await self._read_request(first, reader)
        except HttpError as err:
            await self._write(writer, Response.text(err.text, err.status), keep_alive=False)
            return False
        try:
            self._admit(request)
            handler, request.match = self._router.resolve(request.method, request.path)
            answer = await handler(request)
        except HttpError as err:
            answer = Response.text(err.text, err.status)
        except Exception as err:  # a handler's bug is a 500 for this request, not a crash
            log.error("display_handler_failed", path=request.path, error=repr(err))
            answer = Response.text("internal error\n", 500)
        self._finish(request, answer)
        if isinstance(answer, Stream):
            await self._write_stream(writer, answer)
            return False
        await self._write(writer, answer, keep_alive=keep_alive)
        return keep_alive

    async def _read_request(self, first: bytes,
                            reader: asyncio.StreamReader) -> tuple[Request, bool]:
        try:
            method, target, version = first.decode("ascii").rstrip("\r\n").split(" ")
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "not an HTTP request\n") from None
        if version not in ("HTTP/1.1", "HTTP/1.0") or not target.startswith("/"):
            raise HttpError(400, "not an HTTP/1.x request\n")
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = await _line(reader)
            if not line:
                raise asyncio.IncompleteReadError(b"", None)  # the peer left mid-request
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise HttpError(400, "malformed header\n")
            headers[name.lower()] = value.strip()
        else:
            raise HttpError(431)
        if "transfer-encoding" in headers:
            raise HttpError(411)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length\n") from None
        if length < 0:
            raise HttpError(400, "bad Content-Length\n")
        if length > self._max_body:
            raise HttpError(413)
        body = await reader.readexactly(length) if length else b""
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        url = urlsplit(target)
        return Request(method, url.path, dict(parse_qsl(url.query)), headers, body), keep_alive

    @staticmethod
    def _head(status: int, content_type: str, headers: Mapping[str, str],
              extra: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                 f"Content-Type: {content_type}"]
        lines += [f"{name}: {value}" for name, value in {**headers, **extra}.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _write(self, writer: asyncio.StreamWriter, response: Response, *,
                     keep_alive: bool) -> None:
        extra = {"Content-Length": str(len(response.body)),
                 "Connection": "keep-alive" if keep_alive else "close"}
        writer.write(self._head(response.status, response.content_type, response.headers, extra)
                     + response.body)
        await writer.drain()

    async def _write_stream(self, writer: asyncio.StreamWriter, stream: Stream) -> None:
        chunks = stream.chunks
        try:
            writer.write(self._head(stream.status, stream.content_type, stream.headers,
                                    {"Connection": "close"}))
            await writer.drain()
            async for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()  # runs the handler's clean-up


async def _line(reader: asyncio.StreamReader) -> bytes:
    """One line with its end; b"" at a clean end of the stream; 431 when too long."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as err:
        if err.partial:
            raise
        return b""
    except asyncio.LimitOverrunError:
        raise HttpError(431) from None
