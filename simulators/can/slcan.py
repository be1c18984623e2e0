"""An slcan (Lawicel) CAN adapter on a pseudo-terminal, for a daemon in another process.

The simulator opens a pty, makes its slave side raw, and links a stable path
to it (like socat's ``link=``). The daemon opens that path with python-can's
own ``slcan`` interface exactly as it would open a USB CANable, sends its
set-up commands (``C``, ``S6``, ``O`` …) and reads received-frame lines
``tIIILDD…\\r`` / ``TIIIIIIIILDD…\\r``. As a real adapter, frames flow only
while the channel is open.

The simulator keeps its own copy of the slave fd open for the pty's whole
life: otherwise, whenever no process has the slave open, reads on the master
fail with EIO and the link looks dead to the next daemon that opens it.

Writes never block the event loop: lines go into a bounded buffer that is
flushed with non-blocking writes; when nobody reads and the pty's buffer is
full, new frames are dropped and counted (``dropped_full``), never queued
without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tty
from collections import deque
from pathlib import Path

import can
import structlog

from busd.errors import DeviceError

log = structlog.get_logger("simulators.can.slcan")

MAX_COMMAND_LEN = 64  # longest legal slcan command is a 29-bit frame: 27 chars
HW_VERSION = "V1013"  # answered to "V": hardware 10, software 13
SERIAL_NUMBER = "NSIM1"
_OK = b"\r"
_BELL = b"\a"
# Matched with fullmatch: "$" would also accept a line that ends in "\n".
_FRAME_RE = re.compile(rb"(?:t[0-7][0-9A-Fa-f]{2}|T[0-1][0-9A-Fa-f]{7})([0-8])([0-9A-Fa-f]*)")
_REMOTE_RE = re.compile(rb"(?:r[0-7][0-9A-Fa-f]{2}|R[0-1][0-9A-Fa-f]{7})[0-8]")


def frame_line(frame: can.Message) -> bytes:
    """The slcan line an adapter sends for a received classic CAN frame."""
    if frame.is_remote_frame:
        if frame.is_extended_id:
            return f"R{frame.arbitration_id:08X}{frame.dlc:d}\r".encode()
        return f"r{frame.arbitration_id:03X}{frame.dlc:d}\r".encode()
    data = bytes(frame.data)
    if frame.is_extended_id:
        return f"T{frame.arbitration_id:08X}{len(data):d}{data.hex().upper()}\r".encode()
    return f"t{frame.arbitration_id:03X}{len(data):d}{data.hex().upper()}\r".encode()


class SlcanPty:
    """A pty that behaves like an slcan USB adapter with the simulated bus behind it.

    Use :meth:`open` inside a running event loop (it registers a reader for
    the host's commands) and :meth:`close` when done. :meth:`send` queues one
    frame for the host; :meth:`flush` pushes queued bytes without blocking.
    """

    def __init__(self, link: str | Path, *, buffer_bytes: int = 64 * 1024) -> None:
        if buffer_bytes < 256:
            raise ValueError("buffer_bytes must be at least 256")
        self.link = Path(link)
        self.buffer_bytes = buffer_bytes
        self.slave_name = ""
        self.channel_open = False
        self.bitrate_cmd = ""
        self.host_frames: deque[bytes] = deque(maxlen=100)  # frames the host transmitted
        self.counters: dict[str, int] = {
            "frames_sent": 0,
            "dropped_full": 0,
            "dropped_closed": 0,
            "bytes_written": 0,
            "commands": 0,
            "bad_commands": 0,
        }
        self._master = -1
        self._slave = -1
        self._out = bytearray()
        self._in = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle ------------------------------------------------------------

    def open(self) -> None:
        """Create the pty, make it raw, link it, and start answering commands."""
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            os.set_blocking(master, False)
            self.slave_name = os.ttyname(slave)
            self._link()
        except Exception:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(master, self._on_readable)
        log.info("slcan_pty_open", link=str(self.link), pty=self.slave_name)

    def _link(self) -> None:
        if self.link.exists() and not self.link.is_symlink():
            raise DeviceError(f"{self.link} exists and is not a symlink; refusing to replace it")
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self.slave_name, tmp)
        os.replace(tmp, self.link)  # atomic: a reader never sees the link missing

    def close(self) -> None:
        if self._master < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._master)
        with contextlib.suppress(OSError):
            if os.readlink(self.link) == self.slave_name:
                self.link.unlink()
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        self.channel_open = False
        log.info("slcan_pty_closed", link=str(self.link), **self.counters)

    # -- frames to the host ------------------------------------------------------

    def send(self, frame: can.Message) -> bool:
        """Queue ``frame`` for the host; False when it was dropped."""
        if not self.channel_open:
            self.counters["dropped_closed"] += 1
            return False
        line = frame_line(frame)
        if len(self._out) + len(line) > self.buffer_bytes:
            self.flush()
            if len(self._out) + len(line) > self.buffer_bytes:
                self.counters["dropped_full"] += 1
                return False
        self._out += line
        self.counters["frames_sent"] += 1
        return True

    def flush(self) -> None:
        """Write what the pty takes now; keep the rest (partial lines included) for later."""
        if not self._out or self._master < 0:
            return
        try:
            written = os.write(self._master, self._out)
        except BlockingIOError:
            return
        del self._out[:written]
        self.counters["bytes_written"] += written

    @property
    def pending_bytes(self) -> int:
        return len(self._out)

    # -- commands from the host ---------------------------------------------------

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:  # cannot happen while we hold the slave, but never kill the loop
            log.warning("slcan_pty_read_failed", error=str(err))
            return
        self._in += chunk
        while True:
            end = self._in.find(b"\r")
            if end < 0:
                break
            cmd = bytes(self._in[:end])
            del self._in[: end + 1]
            self._reply(self.handle_command(cmd))
        if len(self._in) > MAX_COMMAND_LEN:  # garbage without a terminator
            self._in.clear()
            self.counters["bad_commands"] += 1
            self._reply(_BELL)

    def _reply(self, data: bytes) -> None:
        if not data:
            return
        if len(self._out) + len(data) <= self.buffer_bytes:
            self._out += data
        self.flush()

    def handle_command(self, cmd: bytes) -> bytes:
        """Answer one slcan command (without its ``\\r``), as a CANable would."""
        cmd = cmd.lstrip(b"\n")  # some hosts send \r\n
        if not cmd:
            return b""
        self.counters["commands"] += 1
        op = cmd[:1]
        if op in (b"O", b"L"):
            if not self.channel_open:
                log.info("slcan_channel_opened", listen_only=op == b"L")
                self._discard_stale()
            self.channel_open = True
            return _OK
        if op == b"C":
            if self.channel_open:
                log.info("slcan_channel_closed")
            self.channel_open = False
            self._discard_stale()
            return _OK
        if op in (b"S", b"s", b"Y"):
            if self.channel_open:  # a real adapter refuses to change bit rate while open
                return self._bad()
            if op == b"S" and cmd[1:] not in {b"%d" % i for i in range(10)}:
                return self._bad()
            self.bitrate_cmd = cmd.decode("ascii", "replace")
            return _OK
        if cmd == b"V":
            return HW_VERSION.encode() + _OK
        if cmd == b"N":
            return SERIAL_NUMBER.encode() + _OK
        if cmd == b"F":
            return b"F00" + _OK
        if op in (b"M", b"m") or cmd == b"Z0":
            return _OK
        if op in (b"t", b"T", b"r", b"R"):
            return self._host_frame(cmd)
        return self._bad()

    def _discard_stale(self) -> None:
        """Forget frames queued but not yet written, so a new session starts fresh.

        Bytes already in the pty are left alone: flushing them with tcflush races
        with a host that select()ed the port as readable, and pyserial then
        reports the port as disconnected.
        """
        self._out.clear()

    def _host_frame(self, cmd: bytes) -> bytes:
        """A frame the host transmits: acknowledged (``z``/``Z``) when open and well-formed."""
        if not self.channel_open:
            return self._bad()
        match = _FRAME_RE.fullmatch(cmd)
        if match is not None:
            if len(match.group(2)) != 2 * int(match.group(1)):
                return self._bad()
        elif _REMOTE_RE.fullmatch(cmd) is None:
            return self._bad()
        self.host_frames.append(cmd)
        return (b"Z" if cmd[:1] in (b"T", b"R") else b"z") + _OK

    def _bad(self) -> bytes:
        self.counters["bad_commands"] += 1
        return _BELL
