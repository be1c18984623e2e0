"""A bus's link to the broker that can be cut: a TCP proxy, like a bus driving into a forest.

Cutting drops the open connections at once (no FIN to the broker, as a lost radio link) and
stops listening until :meth:`Link.restore` listens again on the same port, so a connection
attempt meanwhile is refused at once; the bus's uplink sees its connection fail and reconnects
with its own back-off, as it would in the field. (Accepting and then aborting a new connection
instead left aiomqtt waiting for its CONNACK until its timeout, 20 real seconds, whatever the
simulated outage's length.)
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from simulators.ports import listen_port


class Link:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._open = True
        self._conns: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0
        self.cuts = 0

    async def __aenter__(self) -> Link:
        # Below the ephemeral range: restore() listens on this port again after a cut, and
        # an outgoing connection meanwhile could take a port the kernel picked.
        for attempt in range(20):
            try:
                self._server = await asyncio.start_server(self._client, "127.0.0.1",
                                                          listen_port())
                break
            except OSError:  # taken between the pick and the bind
                if attempt == 19:
                    raise
        assert self._server is not None
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.cut()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def is_open(self) -> bool:
        return self._open

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        if self._open:
            self.cuts += 1
        self._open = False
        if self._server is not None:
            self._server.close()  # stops listening now; its connections are ours to drop
        for writer in list(self._conns):
            writer.transport.abort()
        self._conns.clear()

    async def restore(self) -> None:
        if self._open:
            return
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self._open = True

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._conns |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(262144):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        task = asyncio.current_task()
        if task is not None:
            self._pipes.add(task)
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._conns -= {writer, up_writer}
            if task is not None:
                self._pipes.discard(task)
