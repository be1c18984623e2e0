"""GPS simulator → pty → real gpsd → GpsdSource → vehicle state, and the NMEA serial path."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from busd import signals as sig
from busd.clock import SystemClock
from busd.state import VehicleState
from busd.supervisor import Phase
from drivers.gps import GpsdSource, GpsFix, NmeaSerialSource
from simulators.gps import GpsSimulator, Route
from simulators.gps.route import distance_m
from simulators.pty import PtyLink
from tests.support.components import running
from tests.support.gpsd import Gpsd, gpsd_on, nmea  # noqa: F401 - fixture
from tests.support.pty import pty_link  # noqa: F401 - fixture
from tests.support.wait import wait_until


def number(state: VehicleState, name: str) -> float:
    """A numeric signal's value (the state holds text and flags too)."""
    value = state.value(name)
    assert isinstance(value, int | float), (name, value)
    return value


LIVANI = (56.3543, 26.1758)
ROZUPE = (56.3974, 26.3952)
GPS_FRESH = {name: 1.5 for name in (sig.GPS_FIX, sig.GPS_LAT, sig.GPS_LON, sig.GPS_SPEED,
                                    sig.GPS_HEADING, sig.GPS_TIME, sig.GPS_HDOP)}


@contextlib.asynccontextmanager
async def simulator(sim: GpsSimulator) -> AsyncIterator[GpsSimulator]:
    task = asyncio.create_task(sim.run(), name="sim-gps")
    try:
        await asyncio.wait_for(sim.started.wait(), 5)
        yield sim
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.slow
async def test_simulator_through_gpsd_into_state(
    tmp_path: Path, gpsd_on: Callable[[str], Gpsd],  # noqa: F811
) -> None:
    clock = SystemClock()
    state = VehicleState(clock, freshness_overrides=GPS_FRESH)
    sim = GpsSimulator(
        clock=clock, link=tmp_path / "gps", noise_m=2.5, rng=random.Random(7),
        positions=Route(waypoints=[LIVANI, ROZUPE], speed_kmh=60),
    )
    fixes: list[GpsFix] = []
    async with simulator(sim):
        gpsd = gpsd_on(str(tmp_path / "gps"))
        await gpsd.start()
        source = GpsdSource(state=state, clock=clock, port=gpsd.port, stale_after_s=1.5,
                            time_offset_alarm_s=5, on_fix=fixes.append)
        async with running(source, clock) as run:
            await wait_until(lambda: state.value(sig.GPS_FIX) == "3d", timeout=8, what="3D fix")
            await wait_until(lambda: state.value(sig.GPS_SATELLITES) is not None, timeout=4,
                             what="SKY with satellites")
            truth = sim.last_truth
            assert truth is not None
            lat, lon = number(state, sig.GPS_LAT), number(state, sig.GPS_LON)
            # Noise is ~2.5 m sigma, the bus moves ~17 m between epochs.
            assert distance_m((lat, lon), (truth.lat, truth.lon)) < 40
            assert state.value(sig.GPS_SPEED) == pytest.approx(60, abs=0.5)
            assert state.value(sig.GPS_SATELLITES) == 9
            assert state.value(sig.GPS_HDOP) == pytest.approx(0.9, abs=0.01)
            assert abs(number(state, sig.GPS_TIME) - clock.now()) < 3
            assert run.health.phase is Phase.RUNNING, run.health.reason
            assert run.ctx.counters.get("time_offset_alarms", 0) == 0

            # No-fix period: gps.fix says so and the position goes stale, not repeated.
            sim.fixless = True
            await wait_until(lambda: state.value(sig.GPS_FIX) == "none", timeout=4,
                             what="no fix")
            await wait_until(lambda: state.view(sig.GPS_LAT).stale, timeout=4,
                             what="stale position")
            assert run.health.reason == "receiver reports no fix"
            sim.fixless = False
            await wait_until(lambda: state.value(sig.GPS_FIX) == "3d", timeout=4, what="fix back")

            # Outage (silence): everything goes stale and health says why.
            sim.silent = True
            await wait_until(lambda: state.view(sig.GPS_FIX).stale, timeout=5, what="silence")
            await wait_until(lambda: run.health.phase is Phase.DEGRADED, timeout=5,
                             what="degraded")
            assert "no position report" in run.health.reason
            sim.silent = False
            await wait_until(lambda: run.health.phase is Phase.RUNNING, timeout=5,
                             what="recovered")
    assert any(f.mode == 3 for f in fixes)


async def test_gpsd_restart_reconnects(
    tmp_path: Path, gpsd_on: Callable[[str], Gpsd],  # noqa: F811
) -> None:
    """gpsd goes away and comes back on the same port: the driver reconnects by itself."""
    clock = SystemClock()
    state = VehicleState(clock, freshness_overrides=GPS_FRESH)
    link = PtyLink(link=tmp_path / "gps")
    async with link:
        gpsd = gpsd_on(link.path)
        await gpsd.start()
        source = GpsdSource(state=state, clock=clock, port=gpsd.port, stale_after_s=1.0,
                            backoff_initial_s=0.05, backoff_max_s=0.2)
        async with running(source, clock) as run:
            await asyncio.wait_for(source.connected.wait(), 5)
            await gpsd.stop()
            await wait_until(lambda: run.ctx.counters.get("disconnects", 0) >= 1, timeout=5,
                             what="disconnect noticed")
            await wait_until(lambda: run.ctx.counters.get("connect_failures", 0) >= 1,
                             timeout=5, what="refused while gpsd is down")
            assert run.health.phase is Phase.DEGRADED
            await gpsd.start()
            await wait_until(lambda: source.connected.is_set(), timeout=5, what="reconnect")


async def test_hostile_gpsd_lines_are_counted_not_fatal() -> None:
    """A fake gpsd sends garbage, hostile JSON and an over-long line between good reports."""
    clock = SystemClock()
    state = VehicleState(clock)
    good = b'{"class":"TPV","mode":3,"time":"2026-01-01T00:00:00.000Z","lat":56.35,"lon":26.17}\n'
    lines = [
        b'{"class":"VERSION","release":"3.22"}\n',
        b"\xff\xfe not json\n",
        b'{"class":"TPV","mode":3,"lat":"north","lon":26}\n',
        b'{"class":"TPV","mode":3,"lat":91.5,"lon":26}\n',
        b'{"class":"TPV","mode":3,"lat":NaN,"lon":26}\n',
        b"[1,2,3]\n",
        b'{"no":"class"}\n',
        b'{"class":"SKY","satellites":' + b"[" * 5000 + b"\n",
        b"x" * 200_000 + b"\n",
        b'{"class":"SKY","hdop":1.1,"satellites":[{"PRN":1,"used":true},{"PRN":2,"used":false}]}\n',
        good,
    ]

    handlers: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await reader.readline()  # the WATCH
        for line in lines:
            writer.write(line)
        await writer.drain()
        await asyncio.sleep(30)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        source = GpsdSource(state=state, clock=clock, port=port, time_offset_alarm_s=1e9)
        async with running(source, clock) as run:
            await wait_until(lambda: state.value(sig.GPS_LAT) == 56.35, timeout=5,
                             what="the good report after the garbage")
            # The 200 kB line overruns the reader's limit in several pieces; each counts.
            assert run.ctx.counters["malformed"] >= 8
            assert state.value(sig.GPS_SATELLITES) == 1
            assert state.value(sig.GPS_HDOP) == pytest.approx(1.1)
            assert not run.task.done()
    finally:
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        server.close()
        await server.wait_closed()


async def test_nmea_serial_garbage_and_eof_mid_line(tmp_path: Path) -> None:
    clock = SystemClock()
    state = VehicleState(clock, freshness_overrides=GPS_FRESH)
    link = PtyLink(link=tmp_path / "nmea")
    link.open()
    sent = 0
    try:
        source = NmeaSerialSource(state=state, clock=clock, device=link.path, stale_after_s=1.0,
                                  backoff_initial_s=0.05, backoff_max_s=0.2,
                                  time_offset_alarm_s=1e9)
        async with running(source, clock) as run:
            await wait_until(lambda: run.health.reason.startswith("no position"), timeout=5,
                             what="port open")
            sent += link.write(b"\x00\xff garbage \r\n")
            pos = "5621.258000,N,02610.548000,E"
            sent += link.write(f"$GPRMC,120000.00,A,{pos},10.0,90.0,010126,,,A*00\r\n".encode())
            sent += link.write(f"$GPGGA,120000.00,{pos},1,08,0.9,95.0,M,23.1,M,,\r\n".encode())
            sent += link.write(b"A" * 1000 + b"\r\n")
            sent += link.write(nmea(f"GPGGA,120000.00,{pos},1,08,0.90,95.0,M,23.1,M,,"))
            sent += link.write(nmea(f"GPRMC,120000.00,A,{pos},10.000,90.00,010126,,,A"))
            sent += link.write(nmea("GPVTG,90.00,T,,M,10.000,N,18.520,K,A"))
            await wait_until(lambda: state.value(sig.GPS_FIX) == "3d", timeout=5, what="a fix")
            assert state.value(sig.GPS_LAT) == pytest.approx(56.3543, abs=1e-6)
            assert state.value(sig.GPS_LON) == pytest.approx(26.1758, abs=1e-6)
            assert state.value(sig.GPS_SPEED) == pytest.approx(18.52, abs=0.01)
            assert state.value(sig.GPS_SATELLITES) == 8
            assert run.ctx.counters["garbage"] >= 4
            # EOF mid-line: the cable is pulled in the middle of a sentence.
            sent += link.write(b"$GPRMC,120001.00,A,5621.2")
            # Wait until the reader has the half sentence (a pty delivers asynchronously).
            await wait_until(lambda: run.ctx.counters.get("bytes", 0) == sent, timeout=2,
                             what="the reader to take the half sentence")
            link.close()
            await wait_until(lambda: run.ctx.counters.get("truncated", 0) == 1, timeout=5,
                             what="EOF mid-line noticed")
            await wait_until(lambda: run.ctx.counters.get("disconnects", 0) >= 1, timeout=5,
                             what="the port failure reported")
            assert run.health.phase is Phase.DEGRADED
            assert state.value(sig.GPS_LAT) == pytest.approx(56.3543, abs=1e-6)  # no half line
            # The port comes back: the source reopens it by itself.
            link = PtyLink(link=tmp_path / "nmea")
            link.open()
            link.write(nmea("GPGGA,120002.00,5621.300000,N,02610.548000,E,1,08,0.9,95,M,23,M,,"))
            await wait_until(lambda: state.value(sig.GPS_LAT) != pytest.approx(56.3543, abs=1e-6),
                             timeout=5, what="reopened port")
    finally:
        link.close()


async def test_simulator_straight_into_the_nmea_source(tmp_path: Path) -> None:
    """The second source (no gpsd): simulator → pty → NmeaSerialSource → state."""
    clock = SystemClock()
    state = VehicleState(clock, freshness_overrides=GPS_FRESH)
    sim = GpsSimulator(clock=clock, link=tmp_path / "gps", noise_m=0.0,
                       positions=Route(waypoints=[LIVANI], speed_kmh=30))
    async with simulator(sim):
        source = NmeaSerialSource(state=state, clock=clock, device=str(tmp_path / "gps"),
                                  stale_after_s=1.5)
        async with running(source, clock) as run:
            await wait_until(lambda: run.health.phase is Phase.RUNNING, timeout=5,
                             what="a fix from the simulator")
            assert state.value(sig.GPS_FIX) == "3d"
            here = (number(state, sig.GPS_LAT), number(state, sig.GPS_LON))
            assert distance_m(here, LIVANI) < 0.1
            assert state.value(sig.GPS_SATELLITES) == 9
            assert abs(number(state, sig.GPS_TIME) - clock.now()) < 3
            assert run.ctx.counters.get("garbage", 0) == 0


def test_gps_source_factory() -> None:
    from busd.config import GpsConfig
    from drivers.gps import gps_source

    state = VehicleState(SystemClock())
    gpsd = gps_source(GpsConfig(port=2950), state=state, clock=SystemClock())
    nmea_source = gps_source(GpsConfig(source="nmea", device=Path("/dev/ttyS9")), state=state,
                             clock=SystemClock())
    assert isinstance(gpsd, GpsdSource) and isinstance(nmea_source, NmeaSerialSource)
