"""The CAN simulator: frames, rates, outputs (virtual bus, slcan pty), replay, CLI.

Decoding here uses cantools directly, never the daemon's driver: the two must
not share code, or a bug in one would hide the same bug in the other.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import can
import cantools
import pytest
from cantools.database.can import Database

from busd.clock import ManualClock, SystemClock
from busd.config import CanSimulatorConfig
from busd.errors import DeviceError
from busd.supervisor import ComponentContext, ComponentHealth
from simulators.can.duty import constant
from simulators.can.frames import RATES_HZ, FrameScheduler, _pgn, load_dbc
from simulators.can.model import ChargerState, Inputs, Truth, VehicleModel
from simulators.can.outputs import BusOutput, SlcanOutput
from simulators.can.record import record_log
from simulators.can.replay import Replayer, ReplayError
from simulators.can.simulator import CanSimulator
from simulators.can.slcan import SlcanPty, frame_line
from tests.can_helpers import can_database, decode_frame
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parent.parent
DBC = REPO / "config" / "busd.dbc"
FIXTURE_LOG = Path(__file__).resolve().parent / "fixtures" / "can_sim_drive.log"
PYTHON = sys.executable


@pytest.fixture(scope="module")
def db() -> Database:
    return can_database(cantools.database.load_file(str(DBC)))


@pytest.fixture
def channel() -> Iterator[str]:
    yield f"sim-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def receiver(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def drain(bus: can.BusABC, into: list[can.Message]) -> list[can.Message]:
    while (msg := bus.recv(timeout=0)) is not None:
        into.append(msg)
    return into


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    await wait_until(cond, timeout=timeout, what=what or repr(cond), interval=0.005)


def make_ctx(clock: object) -> ComponentContext:
    return ComponentContext(ComponentHealth("sim.can", False), clock)  # type: ignore[arg-type]


def sim_config(**kw: object) -> CanSimulatorConfig:
    return CanSimulatorConfig(dbc=DBC, **kw)


# -- frames --------------------------------------------------------------------


def decode_all(db: Database, frames: list[can.Message]) -> dict[str, dict[str, Any]]:
    out = {}
    for f in frames:
        msg = db.get_message_by_frame_id(f.arbitration_id)
        assert f.is_extended_id == msg.is_extended_frame, msg.name
        decoded = msg.decode(bytes(f.data), decode_choices=False)
        assert isinstance(decoded, dict)  # not a container message
        out[msg.name] = decoded
    return out


def check_against_truth(d: dict[str, dict[str, Any]], t: Truth) -> None:
    approx = pytest.approx
    pack = d["BMS_Pack"]
    assert pack["ContactorClosed"] == int(t.contactor_closed)
    assert pack["PackVoltage"] == approx(t.pack_voltage if t.contactor_closed else 0.0, abs=0.05)
    assert pack["PackCurrent"] == approx(t.pack_current, abs=0.05)
    cells = d["BMS_Cells"]
    assert cells["CellVoltMin"] == approx(t.cell_v_min, abs=0.0005)
    assert cells["CellVoltMax"] == approx(t.cell_v_max, abs=0.0005)
    assert cells["CellTempMin"] == approx(t.temp_min_c, abs=0.5)
    assert cells["CellTempMax"] == approx(t.temp_max_c, abs=0.5)
    assert cells["StateOfHealth"] == approx(t.soh, abs=0.25)
    status = d["BMS_Status"]
    assert status["StateOfCharge"] == approx(t.soc, abs=0.005)
    assert status["BmsState"] == int(t.bms_state)
    obc = d["OBC_Status"]
    assert obc["PlugPresent"] == int(t.plugged)
    assert obc["ChargerState"] == int(t.charger_state)
    assert obc["ChargePower"] == approx(t.charger_power_kw, abs=0.005)
    assert obc["SessionEnergy"] == approx(t.session_energy_kwh, abs=0.005)
    vcu = d["VCU_Status"]
    assert vcu["DriveReady"] == int(t.ready)
    assert vcu["HvacPower"] == approx(t.hvac_kw, abs=0.005)
    assert vcu["AuxVoltage"] == approx(t.aux_voltage, abs=0.005)
    assert d["CCVS1"]["WheelBasedVehicleSpeed"] == approx(t.speed_kmh, abs=1 / 256)
    assert d["CCVS1"]["ParkingBrakeSwitch"] == int(t.parking_brake)
    assert d["VDHR"]["HiResTotalVehicleDistance"] == approx(t.odometer_km, abs=0.0025)
    assert d["AMB"]["AmbientAirTemperature"] == approx(t.outside_temp_c, abs=1 / 64)
    assert d["DC1"]["PositionOfDoors"] == (0 if t.doors_open else 2)
    assert d["DC1"]["RampWheelchairLiftPosition"] == int(t.lift_out)
    assert d["VEP4"]["BatteryRemainingCharge"] == approx(t.soc, abs=0.2)


@pytest.mark.parametrize(
    "inputs",
    [
        Inputs(target_speed_kmh=60, outside_temp_c=-12),
        Inputs(plugged=True, charger_power_kw=40, outside_temp_c=3),
        Inputs(doors_open=True, lift_out=True, outside_temp_c=-20),
        Inputs(ready=False, outside_temp_c=10),
    ],
    ids=["driving", "charging", "doors-lift", "contactor-open"],
)
def test_frames_decode_to_the_model_state(db: Database, inputs: Inputs) -> None:
    model = VehicleModel(
        initial_soc=72.5, odometer_km=12_345.6, outside_temp_c=inputs.outside_temp_c)
    for _ in range(300):
        model.step(0.1, inputs)
    sched = FrameScheduler(load_dbc(DBC), model.state)
    frames = sched.due(0.0) + sched.due(1.0)  # every message at least once
    decoded = decode_all(db, frames)
    assert set(decoded) == set(RATES_HZ)
    check_against_truth(decoded, model.state)
    if not inputs.ready:
        assert decoded["BMS_Pack"]["PackVoltage"] == 0.0  # the real quirk the driver filters
        assert model.state.pack_voltage > 300
    if inputs.plugged:
        assert decoded["OBC_Status"]["ChargerState"] == ChargerState.CHARGING


def test_pack_counter_rolls(db: Database) -> None:
    model = VehicleModel()
    sched = FrameScheduler(load_dbc(DBC), model.state)
    counters = [
        decode_frame(db, f)["PackCounter"]
        for i in range(300)
        for f in sched.due(i * 0.1)
        if f.arbitration_id == 0x100
    ]
    assert counters[:3] == [0, 1, 2]
    assert counters[256] == 0


def test_background_traffic_fills_the_rate_with_ids_busd_does_not_know(db: Database) -> None:
    model = VehicleModel()
    sched = FrameScheduler(load_dbc(DBC), model.state, total_fps=1000, seed=7)
    frames = [f for i in range(1001) for f in sched.due(i * 0.01)]
    assert len(frames) == pytest.approx(1000 * 10, rel=0.02)
    dbc_ids = {m.frame_id for m in db.messages}
    dbc_pgns = {_pgn(m.frame_id) for m in db.messages if m.is_extended_frame}
    background = [f for f in frames if f.arbitration_id not in dbc_ids]
    assert len(background) == pytest.approx(917 * 10, rel=0.02)
    assert any(f.is_extended_id for f in background)
    assert any(not f.is_extended_id for f in background)
    for f in background:
        assert f.arbitration_id < (1 << 29 if f.is_extended_id else 1 << 11)
        if f.is_extended_id:
            assert _pgn(f.arbitration_id) not in dbc_pgns
    stamps = [f.timestamp for f in frames]
    assert stamps == sorted(stamps)


def test_a_stalled_loop_skips_frames_instead_of_bursting() -> None:
    sched = FrameScheduler(load_dbc(DBC), VehicleModel().state)
    sched.due(0.0)
    frames = sched.due(5.0)  # five seconds late
    assert len(frames) == len(RATES_HZ)  # one of each, not fifty of BMS_Pack
    assert sched.skipped > 300


# -- the component on a virtual bus ----------------------------------------------


async def run_sim(sim: CanSimulator, clock: ManualClock, seconds: float) -> asyncio.Task[None]:
    task = asyncio.create_task(sim.run(make_ctx(clock)), name="test-sim")
    await wait_for(lambda: clock.sleepers >= 1, what="simulator to start ticking")
    await clock.advance(seconds)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("scale", [1.0, 10.0])
async def test_message_rates_per_real_second(
    channel: str,
    receiver: can.BusABC,
    scale: float,
) -> None:
    clock = ManualClock()
    sim = CanSimulator(sim_config(interface="virtual", channel=channel), clock, time_scale=scale)
    task = await run_sim(sim, clock, 20.0 * scale)  # 20 real seconds' worth
    try:
        frames = drain(receiver, [])
    finally:
        await stop(task)
    counts = collections.Counter(f.arbitration_id for f in frames)
    for msg in load_dbc(DBC).messages:
        expected = RATES_HZ[msg.name] * 20
        assert counts[msg.frame_id] == pytest.approx(expected, abs=2), msg.name
    assert sim.elapsed_s == pytest.approx(20.0 * scale, abs=sim.tick_s * 1.01)
    assert sim.scheduler is not None and sim.scheduler.skipped == 0


async def test_simulator_sends_truth_on_virtual_bus_and_reports(
    db: Database,
    channel: str,
    receiver: can.BusABC,
) -> None:
    clock = ManualClock()
    cfg = sim_config(interface="virtual", channel=channel, fps=300, outside_temp_c=-12,
                     cruise_kmh=50, drive_s=60, stop_s=30)
    sim = CanSimulator(cfg, clock)
    ctx = make_ctx(clock)
    task = asyncio.create_task(sim.run(ctx))
    await wait_for(lambda: clock.sleepers >= 1)
    await clock.advance(30.0)  # mid-drive, steady 50 km/h
    frames = drain(receiver, [])
    truth = sim.truth
    latest: dict[int, can.Message] = {}
    for f in frames:
        latest[f.arbitration_id] = f
    ours = [f for i, f in latest.items() if i in {m.frame_id for m in db.messages}]
    decoded = decode_all(db, ours)
    assert decoded["CCVS1"]["WheelBasedVehicleSpeed"] == pytest.approx(50.0, abs=0.01)
    assert decoded["BMS_Status"]["StateOfCharge"] == pytest.approx(truth.soc, abs=0.02)
    distance = decoded["VDHR"]["HiResTotalVehicleDistance"]
    assert distance == pytest.approx(truth.odometer_km, abs=0.01)
    assert len(frames) == pytest.approx(300 * 30, rel=0.03)
    assert ctx.counters["frames_sent"] == len(frames)
    assert ctx.counters["soc"] == pytest.approx(truth.soc, abs=0.01)
    assert ctx._health.phase.value == "running"
    await stop(task)
    assert sim.output is not None and sim.output._bus is None  # type: ignore[attr-defined]


async def test_explicit_inputs_drive_the_model(channel: str, receiver: can.BusABC) -> None:
    clock = ManualClock()
    plugged = constant(Inputs(plugged=True, charger_power_kw=22, outside_temp_c=0))
    sim = CanSimulator(sim_config(interface="virtual", channel=channel, initial_soc=50), clock,
                       inputs=plugged)
    task = await run_sim(sim, clock, 60.0)
    await stop(task)
    assert sim.truth.charger_state is ChargerState.CHARGING
    assert sim.truth.soc > 50.0
    assert drain(receiver, [])


# -- slcan on a pty --------------------------------------------------------------


def open_slcan(link: Path) -> can.BusABC:
    return can.Bus(interface="slcan", channel=str(link), sleep_after_open=0, bitrate=500_000)


async def recv_n(bus: can.BusABC, n: int, timeout: float = 5.0) -> list[can.Message]:
    def read() -> list[can.Message]:
        got: list[can.Message] = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            msg = bus.recv(0.1)
            if msg is not None:
                got.append(msg)
        return got

    return await asyncio.to_thread(read)


async def test_python_can_slcan_reads_frames_byte_exact(tmp_path: Path) -> None:
    out = SlcanOutput(tmp_path / "ttyCAN")
    out.open()
    try:
        bus = await asyncio.to_thread(open_slcan, tmp_path / "ttyCAN")
        try:
            await wait_for(lambda: out.pty.channel_open, what="host to open the channel")
            assert out.pty.bitrate_cmd == "S6"
            sent = [
                can.Message(arbitration_id=0x100, is_extended_id=False, data=b""),
                can.Message(arbitration_id=0x7FF, is_extended_id=False, data=b"\x01\xab"),
                can.Message(arbitration_id=0x18FEF100, is_extended_id=True, data=bytes(range(8))),
                can.Message(arbitration_id=0x00000001, is_extended_id=True, data=b"\xff" * 8),
            ]
            for m in sent:
                assert out.send(m)
            out.flush()
            got = await recv_n(bus, len(sent))
        finally:
            await asyncio.to_thread(bus.shutdown)
        assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in got] == [
            (m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in sent
        ]
        await wait_for(lambda: not out.pty.channel_open, what="host to close the channel")
    finally:
        out.close()
    assert not (tmp_path / "ttyCAN").exists()


def test_frame_lines() -> None:
    message = can.Message(arbitration_id=0x12, is_extended_id=False, data=b"\x0a")
    assert frame_line(message) == b"t01210A\r"
    assert (
        frame_line(can.Message(arbitration_id=0x18FEF100, is_extended_id=True, data=b"\x00\x01"))
        == b"T18FEF10020001\r"
    )
    remote = can.Message(arbitration_id=0x12, is_extended_id=False, is_remote_frame=True, dlc=2)
    assert frame_line(remote) == b"r0122\r"


async def test_simulator_over_slcan_pty_to_python_can(db: Database, tmp_path: Path) -> None:
    link = tmp_path / "can"
    sim = CanSimulator(sim_config(slcan_link=link, fps=400), SystemClock())
    ctx = make_ctx(SystemClock())
    task = asyncio.create_task(sim.run(ctx))
    try:
        await wait_for(link.exists, what="pty link")
        bus = await asyncio.to_thread(open_slcan, link)
        try:
            got = await recv_n(bus, 400)
        finally:
            await asyncio.to_thread(bus.shutdown)
    finally:
        await stop(task)
    assert len(got) == 400
    ids = {m.frame_id for m in db.messages}
    ours = [m for m in got if m.arbitration_id in ids]
    decoded = decode_all(db, ours)
    assert decoded["BMS_Status"]["StateOfCharge"] == pytest.approx(sim.truth.soc, abs=0.05)
    assert decoded["BMS_Pack"]["ContactorClosed"] == 1
    assert not link.exists()  # removed on stop
    assert ctx.counters["frames_sent"] >= 400


async def test_slcan_drops_and_counts_when_nobody_reads(tmp_path: Path) -> None:
    pty = SlcanPty(tmp_path / "can", buffer_bytes=4096)
    pty.open()
    try:
        frame = can.Message(arbitration_id=0x18FEF100, is_extended_id=True, data=bytes(8))
        assert not pty.send(frame)  # channel not opened by any host yet
        assert pty.counters["dropped_closed"] == 1
        slave = os.open(tmp_path / "can", os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(slave, b"O\r")  # a host opens the channel, then never reads
            await wait_for(lambda: pty.channel_open)
            started = time.monotonic()
            results = [pty.send(frame) for _ in range(20_000)]
            assert time.monotonic() - started < 2.0  # never blocked
            assert not all(results)
            assert pty.counters["dropped_full"] > 0
            assert pty.counters["frames_sent"] + pty.counters["dropped_full"] == 20_000
            assert pty.pending_bytes <= 4096
        finally:
            os.close(slave)
    finally:
        pty.close()


async def test_slcan_answers_commands_like_an_adapter(tmp_path: Path) -> None:
    pty = SlcanPty(tmp_path / "can")
    pty.open()
    slave = os.open(tmp_path / "can", os.O_RDWR | os.O_NOCTTY)
    os.set_blocking(slave, False)
    buf = bytearray()

    async def ask(cmd: bytes, replies: int = 1) -> bytes:
        buf.clear()
        os.write(slave, cmd)

        def have() -> bool:
            with contextlib.suppress(BlockingIOError):
                buf.extend(os.read(slave, 1024))
            return buf.count(b"\r") + buf.count(b"\a") >= replies

        await wait_for(have, what=f"reply to {cmd!r}")
        return bytes(buf)

    try:
        assert await ask(b"V\r") == b"V1013\r"
        assert await ask(b"N\r") == b"NSIM1\r"
        assert await ask(b"S6\r") == b"\r"
        assert await ask(b"S42\r") == b"\a"
        assert await ask(b"t1230\r") == b"\a"  # transmit before open
        assert await ask(b"O\r") == b"\r"
        assert await ask(b"S6\r") == b"\a"  # no bit-rate change while open
        assert await ask(b"t12321122\r") == b"z\r"
        assert await ask(b"T18FEF1001AA\r") == b"Z\r"
        assert await ask(b"t1232AA\r") == b"\a"  # dlc says 2, one byte given
        assert await ask(b"t1231AA\n\r") == b"\a"  # junk after the data
        assert await ask(b"hello\r") == b"\a"
        assert await ask(b"x" * 100) == b"\a"  # garbage with no terminator
        assert await ask(b"C\r") == b"\r"
        assert list(pty.host_frames) == [b"t12321122", b"T18FEF1001AA"]
        assert pty.counters["bad_commands"] == 7
    finally:
        os.close(slave)
        pty.close()


def test_slcan_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "not-a-link"
    target.write_text("keep me")
    pty = SlcanPty(target)

    async def go() -> None:
        pty.open()

    with pytest.raises(DeviceError, match="not a symlink"):
        asyncio.run(go())
    assert target.read_text() == "keep me"


# -- replay ------------------------------------------------------------------------


def fixture_frames() -> list[can.Message]:
    with can.LogReader(FIXTURE_LOG) as reader:
        return list(reader)


def key(m: can.Message) -> tuple[int, bool, bytes]:
    return (m.arbitration_id, m.is_extended_id, bytes(m.data))


def test_fixture_is_a_small_synthetic_recording(db: Database) -> None:
    frames = fixture_frames()
    assert 3000 <= len(frames) <= 10_000
    span = frames[-1].timestamp - frames[0].timestamp
    assert 39.0 <= span <= 40.0
    speeds = [decode_frame(db, f)["WheelBasedVehicleSpeed"]
              for f in frames if f.arbitration_id == 0x18FEF100]
    assert max(speeds) > 30.0 and speeds[-1] == 0.0  # drives, then stands at a stop
    doors = {decode_frame(db, f, decode_choices=False)["PositionOfDoors"]
             for f in frames if f.arbitration_id == 0x18FE4E00}
    assert doors == {0, 2}


async def test_replay_in_order_and_at_pace(channel: str, receiver: can.BusABC) -> None:
    recorded = fixture_frames()
    t0 = recorded[0].timestamp
    clock = ManualClock()
    sim = CanSimulator(sim_config(interface="virtual", channel=channel, replay=FIXTURE_LOG,
                                  replay_loop=False), clock)
    task = asyncio.create_task(sim.run(make_ctx(clock)))
    got: list[can.Message] = []
    try:
        await wait_for(lambda: clock.sleepers == 1, what="replayer to start")
        for step in range(1, 21):
            t = step * 0.5
            await clock.advance(0.5)
            expected = sum(1 for m in recorded if m.timestamp - t0 <= t + 1e-9)

            def arrived(e: int = expected) -> bool:
                return len(drain(receiver, got)) >= e

            await wait_for(arrived, what=f"frames up to t={t}")
            await wait_for(lambda: clock.sleepers == 1, what="replayer to sleep")
            assert len(drain(receiver, got)) == expected, t  # nothing early
        await clock.advance(30.0)
        await wait_for(lambda: len(drain(receiver, got)) >= len(recorded))
        await asyncio.wait_for(task, 5.0)  # a single pass ends the component
    finally:
        await stop(task)
    assert [key(m) for m in got] == [key(m) for m in recorded]
    assert sim.replayer is not None and sim.replayer.counters["replayed"] == len(recorded)


async def test_replay_loops_and_scales_with_the_clock(channel: str, receiver: can.BusABC) -> None:
    recorded = fixture_frames()
    clock = ManualClock()
    replayer = Replayer(FIXTURE_LOG, clock, loop=True)
    bus = can.Bus(interface="virtual", channel=channel)
    out = BusOutput(bus=bus)
    task = asyncio.create_task(replayer.run(out))
    got: list[can.Message] = []
    try:
        await wait_for(lambda: clock.sleepers == 1)
        await clock.advance(45.0)
        await wait_for(lambda: replayer.counters["passes"] == 1 and clock.sleepers == 1)
        drain(receiver, got)
    finally:
        await stop(task)
        bus.shutdown()
    assert len(got) > len(recorded)
    assert [key(m) for m in got[: len(recorded)]] == [key(m) for m in recorded]
    assert key(got[len(recorded)]) == key(recorded[0])


async def test_replay_of_a_missing_or_bad_file_raises(tmp_path: Path) -> None:
    clock = ManualClock()
    with pytest.raises(ReplayError, match="not found"):
        await Replayer(tmp_path / "nope.log", clock).run(SlcanOutput(tmp_path / "x"))
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with pytest.raises(ReplayError, match="no frames"):
        await Replayer(empty, clock).run(SlcanOutput(tmp_path / "x"))


def test_record_is_deterministic(tmp_path: Path) -> None:
    cfg = sim_config(fps=200, cruise_kmh=40, drive_s=5, stop_s=5)
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    n = record_log(a, cfg, duration_s=3)
    assert n == record_log(b, cfg, duration_s=3)
    assert n == pytest.approx(600, abs=20)
    assert a.read_bytes() == b.read_bytes()


# -- the separate process ---------------------------------------------------------------


async def test_cli_serves_slcan_and_stops_cleanly_on_sigterm(db: Database, tmp_path: Path) -> None:
    link = tmp_path / "busd-can"
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [PYTHON, "-m", "simulators.can", "--slcan-link", str(link), "--fps", "500",
         "--speed", "5", "--log-level", "warning"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        await wait_for(lambda: link.exists() or proc.poll() is not None, timeout=15, what="link")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        bus = await asyncio.to_thread(open_slcan, link)
        try:
            got = await recv_n(bus, 300)
        finally:
            await asyncio.to_thread(bus.shutdown)
        assert len(got) == 300
        assert any(m.arbitration_id == 0x18FEF100 and m.is_extended_id for m in got)
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 10)
        assert rc == 0
        assert not link.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "simulators.can", "--fps", "-5"], cwd=REPO, capture_output=True,
        text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "fps" in result.stderr
