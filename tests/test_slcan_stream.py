"""The chunked slcan bus: line parsing, and the simulator's pty read through it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import can
import pytest

from busd import signals as sig
from busd.clock import SystemClock
from busd.config import CanConfig, CanSimulatorConfig
from busd.state import VehicleState
from busd.supervisor import Phase
from drivers.can.decoder import FrameDecoder
from drivers.can.reader import CanReader
from drivers.can.slcan_stream import parse_line
from simulators.can.simulator import CanSimulator
from tests.can_helpers import OWN_DBC, own_db, sim_mapping
from tests.test_can_reader import Running, wait_until


@pytest.mark.parametrize(
    ("line", "arbitration_id", "extended", "data"),
    [
        (b"t1008DEADBEEF00112233", 0x100, False, bytes.fromhex("DEADBEEF00112233")),
        (b"T18FEF1008" + b"00" * 8, 0x18FEF100, True, b"\x00" * 8),
        (b"t7FF0", 0x7FF, False, b""),
        (b"t12320a0b", 0x123, False, b"\x0a\x0b"),  # lower-case hex is accepted
    ],
)
def test_valid_lines(line: bytes, arbitration_id: int, extended: bool, data: bytes) -> None:
    msg = parse_line(line)
    assert msg is not None
    assert (msg.arbitration_id, msg.is_extended_id, bytes(msg.data)) == (
        arbitration_id, extended, data)


@pytest.mark.parametrize(
    "line",
    [b"", b"t10", b"t1009" + b"00" * 9, b"t1004DEAD", b"t1002ZZ00", b"x1234", b"T18FEF1",
     b"\x07", b"t10\xff2AABB"],
)
def test_malformed_lines_are_rejected(line: bytes) -> None:
    assert parse_line(line) is None


def test_remote_frame() -> None:
    msg = parse_line(b"r1234")
    assert msg is not None and msg.is_remote_frame and msg.dlc == 4


async def test_simulator_pty_to_daemon_through_slcan_stream(tmp_path: Path) -> None:
    link = tmp_path / "can.pty"
    clock = SystemClock()
    sim = CanSimulator(
        CanSimulatorConfig(dbc=OWN_DBC, slcan_link=link, fps=500, initial_soc=66.0), clock
    )
    state = VehicleState(clock)
    config = CanConfig(interface="slcan_stream", channel=str(link), dbc=OWN_DBC,
                       mapping=sim_mapping())
    reader = CanReader(config=config, decoder=FrameDecoder(own_db(), config.mapping),
                       state=state, clock=clock)
    # The simulator starts first so that its pty exists when the reader opens it.
    async with Running(sim, reader) as sup:
        await state.wait_for(
            lambda s: s.value(sig.BATTERY_SOC) is not None and s.value(sig.VEHICLE_SPEED)
            is not None and s.value(sig.VEHICLE_DOOR_OPEN) is not None,
            timeout=10,
        )
        assert state.value(sig.BATTERY_SOC) == pytest.approx(sim.truth.soc, abs=0.2)
        assert sup.health["can"].phase is Phase.RUNNING
        await wait_until(lambda: sup.health["can"].counters.get("frames", 0) > 50)
        assert sup.health["can"].counters["undecodable"] == 0
        assert sup.health["can"].counters["bad_length"] == 0


async def test_garbage_on_the_line_is_skipped(tmp_path: Path) -> None:
    import os
    import pty
    import tty

    master, slave = pty.openpty()
    tty.setraw(slave)
    link = tmp_path / "garbage.pty"
    link.symlink_to(os.ttyname(slave))
    bus = can.Bus(interface="slcan_stream", channel=str(link), poll_timeout=0.05)
    try:
        os.write(master, b"\x00\xffnoise\rt1002AB\rt1008" + b"11" * 8 + b"\r")
        received = await asyncio.to_thread(bus.recv, 2.0)
        assert received is not None and received.arbitration_id == 0x100
        assert bytes(received.data) == b"\x11" * 8
        assert bus.malformed_lines == 2
    finally:
        bus.shutdown()
        os.close(master)
        os.close(slave)
