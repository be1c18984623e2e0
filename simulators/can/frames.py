"""Frames from the model: every DBC message at its rate, plus other ECUs' chatter.

This module only *encodes* (cantools ``Message.encode``); it shares no code
with the daemon's decoder, so a mistake on one side cannot hide the same
mistake on the other.

Rates are per *real* second: with a clock running ``time_scale`` times faster
every period is stretched by that factor, so an accelerated day sends fewer
frames per simulated second but never floods the bus or the daemon.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import can
import cantools
import structlog
from cantools.database.can import Database
from cantools.database.can import Message as DbcMessage

from simulators.can.model import ChargerState, Truth

log = structlog.get_logger("simulators.can.frames")

RATES_HZ: Mapping[str, float] = {
    "BMS_Pack": 10.0,
    "BMS_Cells": 10.0,
    "BMS_Status": 10.0,
    "OBC_Status": 1.0,
    "VCU_Status": 10.0,
    "CCVS1": 20.0,
    "VDHR": 10.0,
    "DC1": 10.0,
    "AMB": 1.0,
    "VEP4": 1.0,
}
"""Transmit rate of each project DBC message, as a real bus sends them."""

BACKGROUND_MAX_HZ = 50.0  # no single background ECU message faster than this

Values = dict[str, float | int]


@dataclass(slots=True)
class _Context:
    """Per-run extras a message needs beyond the model's state."""

    trip_start_km: float
    counter: int = 0


def _bms_pack(t: Truth, c: _Context) -> Values:
    return {
        # A real BMS quirk the driver must filter: 0 V while the contactor is open.
        "PackVoltage": t.pack_voltage if t.contactor_closed else 0.0,
        "PackCurrent": t.pack_current,
        "ContactorClosed": int(t.contactor_closed),
        "PackCounter": c.counter % 256,
    }


def _bms_cells(t: Truth, _c: _Context) -> Values:
    return {
        "CellVoltMin": t.cell_v_min,
        "CellVoltMax": t.cell_v_max,
        "CellTempMin": round(t.temp_min_c),
        "CellTempMax": round(t.temp_max_c),
        "StateOfHealth": t.soh,
    }


def _bms_status(t: Truth, _c: _Context) -> Values:
    return {"StateOfCharge": t.soc, "FaultFlags": t.bms_fault_flags, "BmsState": int(t.bms_state)}


def _obc_status(t: Truth, _c: _Context) -> Values:
    return {
        "PlugPresent": int(t.plugged),
        "ChargerState": int(t.charger_state),
        "ChargerFaultCode": t.charger_fault_code,
        "ChargePower": t.charger_power_kw,
        "SessionEnergy": t.session_energy_kwh,
    }


def _vcu_status(t: Truth, _c: _Context) -> Values:
    return {"DriveReady": int(t.ready), "HvacPower": t.hvac_kw, "AuxVoltage": t.aux_voltage}


def _ccvs1(t: Truth, _c: _Context) -> Values:
    return {
        "TwoSpeedAxleSwitch": 3,  # not available
        "ParkingBrakeSwitch": int(t.parking_brake),
        "CruiseCtrlPauseSwitch": 3,
        "WheelBasedVehicleSpeed": t.speed_kmh,
        "BrakeSwitch": int(t.traction_kw < 0.0),
    }


def _vdhr(t: Truth, c: _Context) -> Values:
    return {
        "HiResTotalVehicleDistance": t.odometer_km,
        "HiResTripDistance": max(0.0, t.odometer_km - c.trip_start_km),
    }


def _amb(t: Truth, _c: _Context) -> Values:
    cabin = 20.0 if (t.ready and t.hvac_kw > 0.0) else t.outside_temp_c
    return {
        "BarometricPressure": 101.0,
        "CabInteriorTemperature": cabin,
        "AmbientAirTemperature": t.outside_temp_c,
    }


def _dc1(t: Truth, _c: _Context) -> Values:
    return {
        "PositionOfDoors": 0 if t.doors_open else 2,
        "RampWheelchairLiftPosition": 1 if t.lift_out else 0,
        "StatusOfDoors": 3,  # not available
    }


def _vep4(t: Truth, _c: _Context) -> Values:
    return {
        "BatteryRemainingCharge": t.soc,
        "BatteryChargingState": int(t.charger_state is ChargerState.CHARGING),
    }


SIGNAL_BUILDERS: Mapping[str, Callable[[Truth, _Context], Values]] = {
    "BMS_Pack": _bms_pack,
    "BMS_Cells": _bms_cells,
    "BMS_Status": _bms_status,
    "OBC_Status": _obc_status,
    "VCU_Status": _vcu_status,
    "CCVS1": _ccvs1,
    "VDHR": _vdhr,
    "AMB": _amb,
    "DC1": _dc1,
    "VEP4": _vep4,
}


def load_dbc(path: str | Path) -> Database:
    """The DBC, loaded strictly: the simulator is the reference for our own file."""
    db = cantools.database.load_file(str(path), strict=True)
    if not isinstance(db, Database):
        raise ValueError(f"{path} is not a CAN database")
    return db


def _pgn(arbitration_id: int) -> int:
    """J1939 parameter group number of a 29-bit identifier (PDU1 drops the destination)."""
    pgn = (arbitration_id >> 8) & 0x3FFFF
    if (pgn >> 8) & 0xFF < 240:
        pgn &= 0x3FF00
    return pgn


class MessageEncoder:
    """Encodes one DBC message from the model's state; values outside the
    signal's range are clamped, as a real ECU saturates rather than crashes."""

    def __init__(self, message: DbcMessage, build: Callable[[Truth, _Context], Values]) -> None:
        self.message = message
        self.name = message.name
        self._build = build
        self._limits: dict[str, tuple[float | None, float | None]] = {
            s.name: (s.minimum, s.maximum) for s in message.signals
        }
        self._counter = 0

    def encode(self, truth: Truth, ctx: _Context, timestamp: float) -> can.Message:
        ctx.counter = self._counter
        self._counter += 1
        values = self._build(truth, ctx)
        for name, value in values.items():
            lo, hi = self._limits[name]
            if lo is not None and value < lo:
                values[name] = lo
            elif hi is not None and value > hi:
                values[name] = hi
        data = self.message.encode(values, scaling=True, strict=True)
        return can.Message(
            timestamp=timestamp,
            arbitration_id=self.message.frame_id,
            is_extended_id=self.message.is_extended_frame,
            dlc=len(data),
            data=data,
        )


@dataclass(slots=True)
class _Slot:
    period: float
    next_due: float
    make: Callable[[float], can.Message]


class FrameScheduler:
    """Decides which frames are due at a simulated time and builds them.

    ``due(now)`` returns, in timestamp order, each frame whose time has come;
    a message that fell more than one period behind (a stalled loop, a big
    clock jump) is sent once and its missed frames are counted in
    :attr:`skipped` instead of being sent as a burst.
    """

    def __init__(
        self,
        db: Database,
        model_state: Truth,
        *,
        time_scale: float = 1.0,
        total_fps: float = 0.0,
        seed: int = 1,
        rates_hz: Mapping[str, float] = RATES_HZ,
        epoch: float = 0.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._truth = model_state
        self._ctx = _Context(trip_start_km=model_state.odometer_km)
        self._epoch = epoch
        stretch = max(1.0, time_scale)
        self.encoders: list[MessageEncoder] = []
        self._slots: list[_Slot] = []
        for message in db.messages:
            build = SIGNAL_BUILDERS.get(message.name)
            rate = rates_hz.get(message.name)
            if build is None or rate is None:
                log.warning("dbc_message_not_simulated", message=message.name)
                continue
            enc = MessageEncoder(message, build)
            self.encoders.append(enc)
            self._add_slot(1.0 / rate * stretch, self._make_dbc(enc))
        self.dbc_fps = sum(rates_hz.get(e.name, 0.0) for e in self.encoders)
        self.background_fps = max(0.0, total_fps - self.dbc_fps)
        self.background_ids = _background_ids(db, self.background_fps, random.Random(seed))
        if self.background_ids:
            per_id_hz = self.background_fps / len(self.background_ids)
            rng = random.Random(seed + 1)
            for arb_id, extended in self.background_ids:
                self._add_slot(
                    1.0 / per_id_hz * stretch, _background_maker(arb_id, extended, rng)
                )
        self.skipped = 0

    def _add_slot(self, period: float, make: Callable[[float], can.Message]) -> None:
        # Spread the phases so that not every message lands on the same tick.
        phase = (len(self._slots) * 0.0037) % period
        self._slots.append(_Slot(period, phase, make))

    def _make_dbc(self, enc: MessageEncoder) -> Callable[[float], can.Message]:
        return lambda ts: enc.encode(self._truth, self._ctx, ts)

    def due(self, now_s: float) -> list[can.Message]:
        """Frames due by ``now_s`` simulated seconds since the start, oldest first."""
        out: list[tuple[float, can.Message]] = []
        for slot in self._slots:
            if slot.next_due > now_s:
                continue
            behind = now_s - slot.next_due
            if behind >= slot.period:
                missed = int(behind // slot.period)
                self.skipped += missed
                slot.next_due += missed * slot.period
            out.append((slot.next_due, slot.make(self._epoch + slot.next_due)))
            slot.next_due += slot.period
        out.sort(key=lambda pair: pair[0])
        return [msg for _, msg in out]


def _background_ids(db: Database, fps: float, rng: random.Random) -> list[tuple[int, bool]]:
    """IDs of other ECUs that busd must ignore: none in the DBC, no J1939 PGN of the DBC."""
    if fps <= 0:
        return []
    count = max(1, math.ceil(fps / BACKGROUND_MAX_HZ))
    std_used = {m.frame_id for m in db.messages if not m.is_extended_frame}
    pgn_used = {_pgn(m.frame_id) for m in db.messages if m.is_extended_frame}
    ids: list[tuple[int, bool]] = []
    seen: set[int] = set()
    while len(ids) < count:
        if rng.random() < 0.6:
            arb = rng.randrange(0x080, 0x7F0)
            if arb in std_used or arb in seen:
                continue
            ids.append((arb, False))
        else:
            priority = rng.choice((3, 6))
            pgn = rng.choice((0xF000, 0xF001, 0xF004, 0xFEEE, 0xFEF2, 0xFEFC, 0xFEE5,
                              0xFEEA, 0xFE6C, 0xFD09, 0xFEAE, 0xFDC2, 0xFF10 + rng.randrange(200)))
            arb = (priority << 26) | (pgn << 8) | rng.randrange(0x01, 0xFE)
            if pgn in pgn_used or arb in seen:
                continue
            ids.append((arb, True))
        seen.add(arb)
    return ids


def _background_maker(
    arb_id: int, extended: bool, rng: random.Random
) -> Callable[[float], can.Message]:
    """Frames with a rolling counter and a few precomputed payloads (cheap to make)."""
    payloads = [bytearray(rng.randbytes(8)) for _ in range(8)]
    count = 0

    def make(ts: float) -> can.Message:
        nonlocal count
        data = payloads[count % len(payloads)]
        data[7] = count & 0xFF
        count += 1
        return can.Message(
            timestamp=ts, arbitration_id=arb_id, is_extended_id=extended, dlc=8, data=bytes(data)
        )

    return make

