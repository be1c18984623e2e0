"""Simulators on the injected clock: 1 Hz NMEA epochs, outages, no-fix, lift cycles at stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol, TypeVar

from busd.clock import ManualClock
from busd.config import GpsSimulatorConfig
from drivers.gps.nmea import Gga, Rmc, parse_sentence
from simulators.gps import GpsSimulator
from simulators.lift import LiftModel, LiftSimulator


def drain(fd: int) -> list[str]:
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    return [line for line in data.decode().split("\r\n") if line]


class Simulator(Protocol):
    started: asyncio.Event

    async def run(self) -> None: ...


S = TypeVar("S", bound=Simulator)


@contextlib.asynccontextmanager
async def started(component: S) -> AsyncIterator[S]:
    task = asyncio.create_task(component.run())
    try:
        await asyncio.wait_for(component.started.wait(), 5)
        yield component
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_gps_epochs_follow_the_injected_clock(tmp_path: Path) -> None:
    clock = ManualClock(start=1_767_261_600.0)  # 2026-01-01 10:00:00Z
    config = GpsSimulatorConfig(
        link=tmp_path / "gps", route=[{"lat": 56.3974, "lon": 26.3952}], speed_kmh=60,
        outages=[{"start_s": 3, "end_s": 5}], no_fix=[{"start_s": 6, "end_s": 7}], seed=3,
    )
    sim = GpsSimulator.from_config(config, clock=clock)
    async with started(sim):
        fd = os.open(tmp_path / "gps", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            per_second = []
            for _ in range(8):
                await clock.advance(1.0)
                per_second.append([parse_sentence(s) for s in drain(fd)])
        finally:
            os.close(fd)
    # Seconds 1-2 and 5-8 talk; 3-4 are the outage (silence).
    assert [len(epoch) > 0 for epoch in per_second] == [True, True, False, False, True, True,
                                                         True, True]
    rmcs = [next(s for s in epoch if isinstance(s, Rmc)) for epoch in per_second if epoch]
    assert [r.time for r in rmcs] == [1_767_261_600 + s for s in (1, 2, 5, 6, 7, 8)]
    assert [r.valid for r in rmcs] == [True, True, True, False, True, True]  # no-fix at 6 s
    ggas = [next(s for s in epoch if isinstance(s, Gga)) for epoch in per_second if epoch]
    assert [g.quality for g in ggas] == [1, 1, 1, 0, 1, 1]
    # Moving north-east at 60 km/h: ~16.7 m/s, so the track progresses.
    first, last = rmcs[0], rmcs[-1]
    assert first.lat is not None and first.lon is not None
    assert last.lat is not None and last.lon is not None
    assert last.lat > first.lat and last.lon > first.lon


async def test_lift_cycles_once_per_stop(tmp_path: Path) -> None:
    clock = ManualClock()
    stopped = False
    sim = LiftSimulator(clock=clock, link=tmp_path / "lift",
                        model=LiftModel(deploy_s=5, stow_s=5), dwell_s=30,
                        stopped=lambda: stopped, settle_s=5)
    async with started(sim):
        await clock.advance(20)
        assert sim.model.cycles == 0 and sim.model.state == "stowed"
        stopped = True
        await clock.advance(6)
        assert sim.model.state == "deploying"
        await clock.advance(50)
        assert sim.model.cycles == 1 and sim.model.state == "stowed"
        await clock.advance(100)  # still at the same stop: no second boarding
        assert sim.model.cycles == 1
        stopped = False
        await clock.advance(10)
        stopped = True
        await clock.advance(60)
        assert sim.model.cycles == 2

