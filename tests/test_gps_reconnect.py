"""Bug 6(d): after one good GPS session the reconnect back-off must still grow.

The GPS sources used to reset their back-off whenever the publisher had *ever*
had a fix (``last_fix_mono`` is never cleared), so after the first good session
a gpsd (or serial port) that accepts and drops at once was retried at the
initial delay for ever. A manual clock counts the attempts: no sleeps.
"""

from __future__ import annotations

import asyncio
import random

from busd.clock import ManualClock
from busd.state import VehicleState
from drivers.gps import GpsdSource, NmeaSerialSource
from tests.support.components import running
from tests.support.wait import wait_until

TPV = b'{"class":"TPV","mode":3,"time":"2026-01-01T00:00:00.000Z","lat":56.35,"lon":26.17}\n'
# One RMC + GGA pair with a 3D fix, as a receiver sends each second.
RMC = b"$GPRMC,000000.00,A,5621.000,N,02610.200,E,0.0,0.0,010126,,,A*"
GGA = b"$GPGGA,000000.00,5621.000,N,02610.200,E,1,08,0.9,95.0,M,20.0,M,,*"


def _nmea(body: bytes) -> bytes:
    checksum = 0
    for byte in body[1:-1]:
        checksum ^= byte
    return body + f"{checksum:02X}\r\n".encode()


async def _drive(clock: ManualClock, attempts: list[float], *, seconds: float,
                 step: float = 0.25) -> None:
    """Move the clock ``seconds`` in small steps, each once the source waits on it again."""
    for _ in range(int(seconds / step)):
        seen = len(attempts)
        await wait_until(lambda: clock.sleepers > 0, timeout=5, what="the source to wait")
        await clock.advance(step)
        if len(attempts) > seen:  # a new attempt started: let it fail and wait again
            await wait_until(lambda: clock.sleepers > 0, timeout=5, what="the attempt to end")


async def test_gpsd_back_off_grows_again_after_a_good_session() -> None:
    clock = ManualClock()
    state = VehicleState(clock)
    attempts: list[float] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(clock.monotonic())
        if len(attempts) == 1:  # the one good session: a fix, then gpsd goes away
            await reader.readline()
            writer.write(TPV)
            await writer.drain()
        writer.close()  # from then on: accept and drop at once (gpsd wedged, restarting)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        source = GpsdSource(state=state, clock=clock, port=port, time_offset_alarm_s=1e9,
                            backoff_initial_s=1.0, backoff_max_s=64.0, rng=random.Random(5))
        async with running(source, clock) as run:
            await _drive(clock, attempts, seconds=60)
            assert run.ctx.counters["lines"] >= 1  # the first session did deliver its fix
            # Growing waits (0.5-1, 1-2, 2-4, 4-8, 8-16, 16-32 s) allow at most 7 attempts
            # in a minute; a back-off stuck at its initial 0.5-1 s makes 60 or more.
            assert 4 <= len(attempts) <= 8, attempts
    finally:
        server.close()
        await server.wait_closed()


class _FlakyPort:
    """A serial port whose first opening delivers a fix, and every later one fails at once."""

    opened = 0

    def __init__(self, device: str, baudrate: int, timeout: float) -> None:
        type(self).opened += 1
        self.port = device
        self._data = _nmea(RMC) + _nmea(GGA) if type(self).opened == 1 else b""

    @property
    def in_waiting(self) -> int:
        return len(self._data)

    def read(self, size: int) -> bytes:
        if not self._data:
            raise OSError(5, "Input/output error")  # the USB receiver unplugged
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk

    def close(self) -> None:
        pass


async def test_nmea_back_off_grows_again_after_a_good_session() -> None:
    clock = ManualClock()
    state = VehicleState(clock)
    attempts: list[float] = []

    def open_port(device: str, baudrate: int, timeout: float) -> _FlakyPort:
        attempts.append(clock.monotonic())
        return _FlakyPort(device, baudrate, timeout)

    _FlakyPort.opened = 0
    source = NmeaSerialSource(state=state, clock=clock, device="/dev/ttyFAKE",
                              time_offset_alarm_s=1e9, backoff_initial_s=1.0,
                              backoff_max_s=64.0, serial_factory=open_port,
                              rng=random.Random(5))
    async with running(source, clock) as run:
        await _drive(clock, attempts, seconds=60)
        assert run.ctx.counters.get("lines", 0) >= 2  # the first opening did deliver a fix
        assert 4 <= len(attempts) <= 8, attempts
