"""A real gpsd for tests: own port, own control socket, foreground, on a pty.

Never the system's gpsd on 2947. If gpsd is not installed the fixture fails
(not skips) with the command that installs it: the regression tests are the
proof that the driver agrees with gpsd, so silently skipping them hides a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from simulators.pty import PtyLink
from tests.support.mosquitto import free_port
from tests.support.wait import wait_until

GPSD_CANDIDATES = ("gpsd", "/usr/sbin/gpsd")


def gpsd_binary() -> str:
    for candidate in GPSD_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail("gpsd is not installed: run `apt-get install -y gpsd` (tests need a real gpsd)")


def nmea(body: str) -> bytes:
    checksum = 0
    for byte in body.encode("ascii"):
        checksum ^= byte
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


class Gpsd:
    """One gpsd process reading ``device``."""

    def __init__(self, *, device: str, workdir: Path) -> None:
        self.device = device
        self.port = free_port()
        self._socket = workdir / f"gpsd-{self.port}.sock"
        self._stderr_path = workdir / f"gpsd-{self.port}.log"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self._stderr_path.open("ab") as stderr:
            # -N foreground, -n read the device without waiting for a client,
            # -b read-only: no probe strings written to our pty.
            self._proc = await asyncio.create_subprocess_exec(
                gpsd_binary(), "-N", "-n", "-b", "-S", str(self.port), "-F", str(self._socket),
                self.device,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            )

        async def accepting() -> bool:
            assert self._proc is not None
            if self._proc.returncode is not None:
                raise AssertionError(f"gpsd exited early:\n{self.stderr()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return True
            return False

        async with asyncio.timeout(10):
            while not await accepting():  # noqa: ASYNC110 - polling a port, no event to wait on
                await asyncio.sleep(0.02)

    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")[-4000:]

    async def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self._proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._proc = None

    async def sync(self, link: PtyLink, *, within_s: float = 10.0) -> None:
        """Return once gpsd demonstrably parses what we write to ``link``.

        gpsd flushes the line while it sets the device up, so bytes written
        too early vanish. We send harmless $GPTXT sentences until gpsd reports
        the device identified as NMEA (a DEVICE message with a driver).
        """
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b'?WATCH={"enable":true,"json":true};\n')
        identified = asyncio.Event()

        async def watch() -> None:
            while line := await reader.readline():
                with contextlib.suppress(ValueError):
                    msg = json.loads(line)
                    devices = [msg] if msg.get("class") == "DEVICE" else msg.get("devices", [])
                    if any(d.get("driver") for d in devices if isinstance(d, dict)):
                        identified.set()
                        return

        watcher = asyncio.create_task(watch())
        try:
            async with asyncio.timeout(within_s):
                while not identified.is_set():
                    link.write(nmea("GPTXT,01,01,02,busd test sync"))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await identified.wait()
        except TimeoutError:
            raise AssertionError(f"gpsd never identified the device:\n{self.stderr()}") from None
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@pytest.fixture
async def gpsd_on(tmp_path: Path) -> AsyncIterator[Callable[[str], Gpsd]]:
    """``await gpsd_on(device).start()``-style factory; every gpsd is stopped afterwards."""
    started: list[Gpsd] = []

    def make(device: str) -> Gpsd:
        daemon = Gpsd(device=device, workdir=tmp_path)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        await daemon.stop()


__all__ = ["Gpsd", "gpsd_on", "nmea", "wait_until"]
