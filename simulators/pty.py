"""A pseudo-terminal that stands in for a serial cable.

The simulator owns the master side; the slave side is what a real program
(gpsd, the lift driver through pyserial) opens, reached through a symlink at
a configured path such as ``/tmp/busd-sim/gps``, exactly like ``/dev/ttyUSB0``.

We keep our own handle on the slave open for the link's whole life: on Linux
a pty master whose slave has no open handle reports EIO/HUP on every read,
which would spin the event loop whenever the reader (gpsd) reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from pathlib import Path

import structlog

log = structlog.get_logger("simulators.pty")


class PtyLink:
    """Master side of a pty, with the slave symlinked at ``link``.

    Writes never block: when the reader does not keep up, the kernel buffer
    fills and further writes are dropped and counted (a real UART would lose
    them the same way). Bytes the reader sends come back through :meth:`read`.
    """

    def __init__(self, *, link: Path | None = None, read_queue_size: int = 256) -> None:
        self._link = link
        self._master: int | None = None
        self._slave: int | None = None
        self.slave_name = ""
        self.dropped_bytes = 0
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue(maxsize=read_queue_size)
        self.dropped_reads = 0
        self._reading = False

    @property
    def path(self) -> str:
        """What a reader should open: the symlink if configured, else the slave itself."""
        return str(self._link) if self._link is not None else self.slave_name

    def open(self) -> PtyLink:
        master, slave = os.openpty()
        # Raw: no echo of what we write back to us, no CR/LF translation, 8 bits clean.
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        # gpsd started as root drops privileges to the device's group and
        # "nobody"; a pty slave is 0620 root:tty, which it then cannot reopen.
        os.chmod(self.slave_name, 0o666)
        if self._link is not None:
            self._link.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._link.with_name(self._link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_name)
            tmp.replace(self._link)  # atomic: a reader never sees a missing link
        log.debug("pty_opened", slave=self.slave_name, link=str(self._link))
        return self

    def close(self) -> None:
        loop_reader = self._reading
        if loop_reader and self._master is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._master)
            self._reading = False
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                if self._link.is_symlink() and os.readlink(self._link) == self.slave_name:
                    self._link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def __enter__(self) -> PtyLink:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> PtyLink:
        self.open()
        self.start_reading()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def write(self, data: bytes) -> int:
        """Write what fits without blocking; returns bytes written, counts the rest as dropped."""
        if self._master is None:
            raise RuntimeError("pty is not open")
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        self.dropped_bytes += len(data) - written
        return written

    def start_reading(self) -> None:
        """Collect what the reader writes to us (Modbus requests, gpsd's probes)."""
        if self._master is None or self._reading:
            return
        asyncio.get_running_loop().add_reader(self._master, self._on_readable)
        self._reading = True

    def _on_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if not data:
            return
        try:
            self._incoming.put_nowait(data)
        except asyncio.QueueFull:
            self.dropped_reads += 1

    async def read(self) -> bytes:
        """The next chunk of bytes the reader wrote (chunking is arbitrary)."""
        return await self._incoming.get()

    def discard_input(self) -> None:
        while not self._incoming.empty():
            self._incoming.get_nowait()
