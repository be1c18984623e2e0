"""A GPS receiver on a pty: NMEA RMC/GGA/VTG once a second, for gpsd to read.

The true position comes from a :class:`PositionSource` (a route, or a
scenario's vehicle model); the receiver adds slowly wandering noise, goes
silent during outages (a forest, a tunnel) and reports "no fix" during
no-fix periods. Time is the injected clock's, so an accelerated day sends
its epochs accelerated too.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from pathlib import Path

import structlog

from busd.clock import Clock
from busd.config import GpsSimulatorConfig
from busd.supervisor import ComponentContext
from simulators.gps.nmea_out import ReceiverOutput, epoch_sentences
from simulators.gps.route import PositionNoise, PositionSource, Route, SimPosition, offset
from simulators.pty import PtyLink

log = structlog.get_logger("simulators.gps")

Window = tuple[float, float]  # (start_s, end_s) after the simulator started


def _inside(windows: Sequence[Window], t: float) -> bool:
    return any(start <= t < end for start, end in windows)


class GpsSimulator:
    """A supervisor component; also usable directly as ``async with`` in tests."""

    critical = False

    def __init__(
        self,
        *,
        clock: Clock,
        link: Path,
        positions: PositionSource,
        name: str = "sim-gps",
        noise_m: float = 2.5,
        satellites: int = 9,
        hdop: float = 0.9,
        outages: Sequence[Window] = (),
        no_fix: Sequence[Window] = (),
        rng: random.Random | None = None,
        epoch_s: float = 1.0,
    ) -> None:
        if epoch_s <= 0:
            raise ValueError("epoch_s must be positive")
        self.name = name
        self._epoch_s = epoch_s
        self._clock = clock
        self._link_path = link
        self._positions = positions
        self._noise = PositionNoise(sigma_m=noise_m, rng=rng or random.Random())
        self._satellites = satellites
        self._hdop = hdop
        self._outages = list(outages)
        self._no_fix = list(no_fix)
        # Scenario switches, on top of the configured windows.
        self.silent = False
        self.fixless = False
        self.link: PtyLink | None = None
        self.epochs = 0
        self.started = asyncio.Event()
        self.last_truth: SimPosition | None = None

    @classmethod
    def from_config(
        cls, config: GpsSimulatorConfig, *, clock: Clock,
        positions: PositionSource | None = None,
    ) -> GpsSimulator:
        if positions is None:
            points = [(config.start.lat, config.start.lon)]
            points += [(w.lat, w.lon) for w in config.route]
            positions = Route(waypoints=points, speed_kmh=config.speed_kmh, loop=config.loop)
        return cls(
            clock=clock, link=config.link, positions=positions, noise_m=config.noise_m,
            satellites=config.satellites, hdop=config.hdop,
            outages=[(w.start_s, w.end_s) for w in config.outages],
            no_fix=[(w.start_s, w.end_s) for w in config.no_fix],
            rng=random.Random(config.seed),
        )

    def inject(self, data: bytes) -> None:
        """Write raw bytes (garbage, a truncated sentence) between epochs."""
        if self.link is None:
            raise RuntimeError("simulator not running")
        self.link.write(data)

    async def run(self, ctx: ComponentContext | None = None) -> None:
        with PtyLink(link=self._link_path) as link:
            self.link = link
            link.start_reading()  # gpsd may send probes; read and discard them
            self.started.set()
            if ctx is not None:
                ctx.ready()
            try:
                await self._epochs(link, ctx)
            finally:
                self.started.clear()
                self.link = None

    async def _epochs(self, link: PtyLink, ctx: ComponentContext | None) -> None:
        start_mono = self._clock.monotonic()
        last_mono = start_mono
        while True:
            # Epochs on whole seconds of GPS time, as receivers do (an accelerated
            # scenario asks for one every epoch_s simulated seconds instead).
            now = self._clock.now()
            step = self._epoch_s
            await self._clock.sleep(math.floor(now / step) * step + step - now)
            link.discard_input()
            mono = self._clock.monotonic()
            elapsed = mono - start_mono
            north, east = self._noise.step(mono - last_mono)
            last_mono = mono
            if self.silent or _inside(self._outages, elapsed):
                continue
            truth = self._positions.position(elapsed)
            self.last_truth = truth
            lat, lon = offset(truth.lat, truth.lon, north, east)
            has_fix = not (self.fixless or _inside(self._no_fix, elapsed))
            out = ReceiverOutput(
                utc=round(self._clock.now()), fix=has_fix, lat=lat, lon=lon,
                speed_kmh=truth.speed_kmh, heading=truth.heading,
                satellites=self._satellites if has_fix else 0, hdop=self._hdop,
            )
            link.write(b"".join(epoch_sentences(out)))
            self.epochs += 1
            if ctx is not None:
                ctx.beat()
                ctx.counters["epochs"] = self.epochs
                ctx.counters["dropped_bytes"] = link.dropped_bytes
