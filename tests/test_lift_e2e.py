"""Lift simulator → pty → pymodbus driver → vehicle state, over a real (pseudo) serial line."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from busd import signals as sig
from busd.clock import SystemClock
from busd.config import LiftRegisterMap
from busd.state import VehicleState
from busd.supervisor import Phase
from drivers.lift import LiftModbusSource
from simulators.lift import LiftModel, LiftSimulator
from tests.support.components import Running, running
from tests.support.wait import wait_until

FRESHNESS = {sig.LIFT_STATE: 0.6, sig.LIFT_INTERLOCK: 0.6, sig.LIFT_DOOR_OPEN: 0.6,
             sig.LIFT_CYCLES: 0.6}


@contextlib.asynccontextmanager
async def lift_rig(tmp_path: Path, registers: LiftRegisterMap | None = None
                   ) -> AsyncIterator[tuple[LiftSimulator, VehicleState, Running]]:
    clock = SystemClock()
    state = VehicleState(clock, freshness_overrides=FRESHNESS)
    sim = LiftSimulator(clock=clock, link=tmp_path / "lift", registers=registers,
                        model=LiftModel(deploy_s=0.3, stow_s=0.3, cycles=41))
    sim_task = asyncio.create_task(sim.run(), name="sim-lift")
    try:
        await asyncio.wait_for(sim.started.wait(), 5)
        driver = LiftModbusSource(
            state=state, clock=clock, port=str(tmp_path / "lift"), registers=registers,
            poll_interval_s=0.05, timeout_s=0.2, failures_before_degraded=2,
            backoff_initial_s=0.05, backoff_max_s=0.2,
        )
        async with running(driver, clock) as run:
            yield sim, state, run
    finally:
        sim_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sim_task


def value(state: VehicleState, name: str) -> object:
    return state.value(name)


async def test_lift_cycle_reaches_state(tmp_path: Path) -> None:
    async with lift_rig(tmp_path) as (sim, state, run):
        await wait_until(lambda: value(state, sig.LIFT_STATE) == "stowed", timeout=5,
                         what="first poll")
        assert value(state, sig.LIFT_CYCLES) == 41
        assert value(state, sig.LIFT_INTERLOCK) is False
        assert run.health.phase is Phase.RUNNING
        seen: list[object] = []
        watcher = state.watch([sig.LIFT_STATE])

        async def record() -> None:
            while True:
                await watcher.changed()
                seen.append(state.value(sig.LIFT_STATE))

        recorder = asyncio.create_task(record())
        sim.cycle(dwell_s=0.3)
        await wait_until(lambda: value(state, sig.LIFT_CYCLES) == 42, timeout=5,
                         what="one full cycle")
        await wait_until(lambda: seen[-1:] == ["stowed"], timeout=2, what="stowed recorded")
        recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder
        assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == [
            "deploying", "deployed", "stowing", "stowed"
        ]
        assert value(state, sig.LIFT_DOOR_OPEN) is False


async def test_fault_is_reported(tmp_path: Path) -> None:
    async with lift_rig(tmp_path) as (sim, state, _run):
        sim.deploy()
        await wait_until(lambda: value(state, sig.LIFT_STATE) == "deploying", timeout=5,
                         what="deploying")
        sim.inject_fault()
        await wait_until(lambda: value(state, sig.LIFT_STATE) == "fault", timeout=5,
                         what="fault")
        assert value(state, sig.LIFT_INTERLOCK) is True


async def test_silent_unit_goes_stale_and_recovers(tmp_path: Path) -> None:
    async with lift_rig(tmp_path) as (sim, state, run):
        await wait_until(lambda: run.health.phase is Phase.RUNNING, timeout=5, what="running")
        sim.answering = False
        await wait_until(lambda: state.view(sig.LIFT_STATE).stale, timeout=5, what="stale")
        await wait_until(lambda: run.health.phase is Phase.DEGRADED, timeout=5,
                         what="degraded health")
        assert "not answering" in run.health.reason
        assert run.ctx.counters["poll_failures"] >= 2
        sim.answering = True
        await wait_until(lambda: run.health.phase is Phase.RUNNING, timeout=5,
                         what="recovery")
        await wait_until(lambda: not state.view(sig.LIFT_STATE).stale, timeout=5,
                         what="fresh again")
        assert value(state, sig.LIFT_STATE) == "stowed"


async def test_custom_register_map_and_32_bit_counter(tmp_path: Path) -> None:
    registers = LiftRegisterMap(stowed=8, deployed=9, moving=10, door_open=11, interlock=12,
                                fault=13, cycles=20, cycles_words=2)
    async with lift_rig(tmp_path, registers) as (sim, state, _run):
        sim.model.cycles = 70_000  # beyond 16 bits
        await wait_until(lambda: value(state, sig.LIFT_CYCLES) == 70_000, timeout=5,
                         what="32-bit counter")
        assert value(state, sig.LIFT_STATE) == "stowed"


@pytest.mark.slow
async def test_line_gone_and_back(tmp_path: Path) -> None:
    """The adapter disappears (simulator stopped, link removed) and returns: the driver reopens."""
    clock = SystemClock()
    state = VehicleState(clock, freshness_overrides=FRESHNESS)
    link = tmp_path / "lift"
    driver = LiftModbusSource(state=state, clock=clock, port=str(link), poll_interval_s=0.05,
                              timeout_s=0.2, failures_before_degraded=2,
                              backoff_initial_s=0.05, backoff_max_s=0.2)
    async with running(driver, clock) as run:
        await wait_until(lambda: run.ctx.counters.get("connect_failures", 0) >= 1, timeout=5,
                         what="open failure while no device exists")
        assert run.health.phase is Phase.DEGRADED
        sim = LiftSimulator(clock=clock, link=link)
        task = asyncio.create_task(sim.run())
        try:
            await wait_until(lambda: value(state, sig.LIFT_STATE) == "stowed", timeout=5,
                             what="reopened")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await wait_until(lambda: run.health.phase is Phase.DEGRADED, timeout=5,
                         what="degraded after the line went away")
