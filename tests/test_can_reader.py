"""The CAN driver end to end: frames on a python-can bus → decoder → vehicle state."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import can
import pytest

from busd import signals as sig
from busd.clock import ScaledClock, SystemClock
from busd.config import CanConfig, CanSimulatorConfig
from busd.state import VehicleState
from busd.supervisor import Backoff, Component, Phase, Supervisor
from drivers.can.decoder import FrameDecoder
from drivers.can.plausibility import CONFIRM_FRAMES
from drivers.can.reader import CanReader
from simulators.can.simulator import CanSimulator
from tests.can_helpers import OWN_DBC, frame, own_db, sim_mapping
from tests.support import wait

_channels = itertools.count()


@pytest.fixture
def channel() -> str:
    return f"test-can-{next(_channels)}"


def can_config(channel: str, **overrides: Any) -> CanConfig:
    return CanConfig(interface="virtual", channel=channel, dbc=OWN_DBC, mapping=sim_mapping(),
                     **overrides)


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    # Generous: a reader thread starved on a loaded 2-core CI machine once missed 5 s;
    # a passing condition returns as soon as it holds, so this costs nothing.
    await wait.wait_until(predicate, timeout=timeout)


class Running:
    """A supervisor with the given components, stopped on exit."""

    def __init__(self, *components: Component, backoff: Backoff | None = None) -> None:
        self.supervisor = Supervisor(list(components), clock=SystemClock(),
                                     backoff=backoff or Backoff(initial_s=0.05, max_s=0.2))

    async def __aenter__(self) -> Supervisor:
        self._task = asyncio.create_task(self.supervisor.run())
        return self.supervisor

    async def __aexit__(self, *exc: object) -> None:
        self.supervisor.request_stop()
        await asyncio.wait_for(self._task, 5)


def make_reader(channel: str, state: VehicleState, **overrides: Any) -> CanReader:
    config = can_config(channel, **overrides)
    return CanReader(config=config, decoder=FrameDecoder(own_db(), config.mapping), state=state,
                     clock=state.clock)


async def test_simulator_frames_become_live_state(channel: str) -> None:
    clock = SystemClock()
    state = VehicleState(clock)
    sim = CanSimulator(
        CanSimulatorConfig(interface="virtual", channel=channel, dbc=OWN_DBC, initial_soc=77.0,
                           outside_temp_c=-12.0),
        clock,
    )
    async with Running(make_reader(channel, state), sim) as sup:
        await state.wait_for(
            lambda s: all(s.value(name) is not None for name in (
                sig.BATTERY_SOC, sig.BATTERY_CURRENT, sig.BATTERY_POWER, sig.VEHICLE_SPEED,
                sig.VEHICLE_OUTSIDE_TEMP, sig.CHARGER_STATE, sig.VEHICLE_DOOR_OPEN,
                sig.VEHICLE_ODOMETER,
                sig.BATTERY_CELL_V_MIN, sig.VEHICLE_HVAC_POWER)),
            timeout=5,
        )
        truth = sim.truth
        assert state.value(sig.BATTERY_SOC) == pytest.approx(truth.soc, abs=0.2)
        assert state.value(sig.VEHICLE_OUTSIDE_TEMP) == pytest.approx(-12.0, abs=0.1)
        assert state.value(sig.CHARGER_STATE) == "idle"
        assert sup.health["can"].phase is Phase.RUNNING
        assert sup.health["can"].counters["frames"] > 0


async def test_malformed_frames_are_counted_and_good_ones_still_flow(channel: str) -> None:
    state = VehicleState(SystemClock())
    db = own_db()
    async with Running(make_reader(channel, state, filter_frames=False)) as sup:
        await wait_until(lambda: sup.health["can"].phase is Phase.RUNNING)
        with can.Bus(interface="virtual", channel=channel) as tx:
            tx.send(can.Message(arbitration_id=0x100, is_extended_id=False, data=b"\x01\x02"))
            tx.send(can.Message(arbitration_id=0x555, is_extended_id=False, data=b"\x00" * 8))
            tx.send(can.Message(arbitration_id=0x102, is_extended_id=False, is_error_frame=True))
            for _ in range(CONFIRM_FRAMES):  # a first value is published once confirmed
                tx.send(frame(db, "BMS_Status", StateOfCharge=55.5))
            await state.wait_for(lambda s: s.value(sig.BATTERY_SOC) == 55.5, timeout=5)
        counters = sup.health["can"].counters
        await wait_until(lambda: counters.get("bad_length") == 1)
        assert counters["unknown_id"] == 1
        assert sup.health["can"].phase is Phase.RUNNING


async def test_silent_bus_is_reported_and_its_signals_go_stale(channel: str) -> None:
    state = VehicleState(SystemClock(), freshness_overrides={sig.BATTERY_SOC: 0.3})
    reader = make_reader(channel, state, silence_timeout_s=0.3)
    async with Running(reader) as sup:
        await wait_until(lambda: sup.health["can"].phase is Phase.RUNNING)
        with can.Bus(interface="virtual", channel=channel) as tx:
            for _ in range(CONFIRM_FRAMES):  # a first value is published once confirmed
                tx.send(frame(own_db(), "BMS_Status", StateOfCharge=60.0))
            await state.wait_for(lambda s: s.value(sig.BATTERY_SOC) == 60.0, timeout=5)
            await wait_until(lambda: sup.health["can"].phase is Phase.DEGRADED)
            assert "no CAN frames" in sup.health["can"].reason
            assert state.view(sig.BATTERY_SOC).stale
            tx.send(frame(own_db(), "BMS_Status", StateOfCharge=60.3))
            await wait_until(lambda: sup.health["can"].phase is Phase.RUNNING)
            await state.wait_for(
                lambda s: s.value(sig.BATTERY_SOC) == pytest.approx(60.3), timeout=5)


async def test_missing_interface_is_a_clear_error_and_retried(channel: str) -> None:
    state = VehicleState(SystemClock())
    reader = make_reader(channel, state)
    reader._config = reader._config.model_copy(
        update={"interface": "socketcan", "channel": "busd-no-such-can"}
    )
    async with Running(reader) as sup:
        await wait_until(lambda: sup.health["can"].counters.get("connect_failures", 0) >= 2)
        error = sup.health["can"].last_error
        assert error.startswith("DeviceError: cannot open CAN interface socketcan:busd-no-such-can")
        # Retried by the reader itself: degraded with the reason, its loop alive for the watchdog.
        assert sup.health["can"].phase is Phase.DEGRADED
        assert "cannot open CAN interface" in sup.health["can"].reason
        assert sup.health["can"].restarts == 0


async def test_bus_failure_mid_stream_reopens_the_bus(channel: str) -> None:
    opened: list[can.BusABC] = []

    class FailingOnce(can.BusABC):
        """A virtual bus whose first instance fails after its first frame."""

        def __init__(self, **kwargs: Any) -> None:
            self._inner = can.Bus(interface="virtual", channel=kwargs["channel"])
            self._fail = not opened
            opened.append(self)
            super().__init__(channel=kwargs["channel"])

        def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
            msg = self._inner.recv(timeout)
            if msg is not None and self._fail:
                raise can.CanOperationError("adapter unplugged")
            return msg, False

        def send(self, msg: can.Message, timeout: float | None = None) -> None:
            self._inner.send(msg, timeout)

        def shutdown(self) -> None:
            self._inner.shutdown()
            super().shutdown()

    state = VehicleState(SystemClock())
    config = can_config(channel)
    reader = CanReader(config=config, decoder=FrameDecoder(own_db(), config.mapping),
                       state=state, clock=state.clock, bus_factory=FailingOnce)
    async with Running(reader) as sup:
        with can.Bus(interface="virtual", channel=channel) as tx:
            await wait_until(lambda: sup.health["can"].phase is Phase.RUNNING)
            tx.send(frame(own_db(), "BMS_Status", StateOfCharge=40.0))
            await wait_until(lambda: len(opened) == 2)
            assert "adapter unplugged" in sup.health["can"].last_error
            await wait_until(lambda: sup.health["can"].phase is Phase.STARTING
                             or sup.health["can"].phase is Phase.RUNNING)

            async def delivered() -> None:
                while state.value(sig.BATTERY_SOC) != 41.0:
                    tx.send(frame(own_db(), "BMS_Status", StateOfCharge=41.0))
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(delivered(), 5)


async def test_unmapped_frames_are_filtered_before_the_decoder(channel: str) -> None:
    state = VehicleState(SystemClock())
    db = own_db()
    async with Running(make_reader(channel, state)) as sup:
        await wait_until(lambda: sup.health["can"].phase is Phase.RUNNING)
        with can.Bus(interface="virtual", channel=channel) as tx:
            for arbitration_id in (0x555, 0x7FF):
                tx.send(can.Message(arbitration_id=arbitration_id, is_extended_id=False,
                                    data=b"\x00" * 8))
            speed = frame(db, "CCVS1", WheelBasedVehicleSpeed=33.0)
            speed.arbitration_id = (speed.arbitration_id & ~0xFF) | 0x27  # another ECU
            tx.send(speed)
            for _ in range(CONFIRM_FRAMES):  # a first value is published once confirmed
                tx.send(frame(db, "BMS_Status", StateOfCharge=44.0))
            await state.wait_for(lambda s: s.value(sig.BATTERY_SOC) == 44.0
                                 and s.value(sig.VEHICLE_SPEED) == 33.0, timeout=5)
        counters = sup.health["can"].counters
        await wait_until(lambda: counters.get("frames") == 1 + CONFIRM_FRAMES)
        assert counters["unknown_id"] == 0


async def test_recorded_log_replayed_through_the_driver(channel: str) -> None:
    """A candump recording, replayed on the bus, ends in the state the log last said."""
    from tests.conftest import FIXTURES

    log_path = FIXTURES / "can_sim_drive.log"
    db = own_db()
    status = db.get_message_by_name("BMS_Status")
    last_soc = None
    for msg in can.LogReader(str(log_path)):
        if msg.arbitration_id == status.frame_id and not msg.is_extended_id:
            decoded = status.decode(bytes(msg.data))
            assert isinstance(decoded, dict)  # not a container message
            last_soc = decoded["StateOfCharge"]
    assert last_soc is not None
    clock = ScaledClock(speed=20.0)  # the 40 s recording in 2 s
    state = VehicleState(clock, freshness_overrides={sig.BATTERY_SOC: 120.0})
    sim = CanSimulator(
        CanSimulatorConfig(interface="virtual", channel=channel, dbc=OWN_DBC, replay=log_path,
                           replay_loop=False), clock,
    )
    reader = make_reader(channel, state, filter_frames=False)
    async with Running(reader, sim) as sup:
        await wait_until(lambda: sup.health["sim.can"].phase is Phase.FINISHED, timeout=20)
        await state.wait_for(
            lambda s: s.value(sig.BATTERY_SOC) == pytest.approx(last_soc, abs=0.01), timeout=5
        )
        recorded = sum(1 for _ in can.LogReader(str(log_path)))
        await wait_until(lambda: sup.health["can"].counters.get("frames", 0) == recorded)
        assert sup.health["can"].counters["buffer_dropped"] == 0
