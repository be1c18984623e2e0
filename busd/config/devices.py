"""The devices busd reads: CAN (and its signal mapping), GPS, and the wheelchair lift."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from busd.config.base import Strict
from busd.signals import SIGNALS, Kind


class FrameCondition(Strict):
    """A rule on another signal of the same frame that must hold for the value to count.

    ``value`` is in the DBC signal's physical units (its raw bits times the
    DBC's own factor plus offset, the number cantools decodes), never in busd's
    units: the mapping's ``scale``/``offset``/``invert`` do not apply to it, even
    when the condition names the mapped signal itself. A signal with a value
    table compares by its number, not its label.
    """

    signal: str
    op: Literal["==", "!=", "<", "<=", ">", ">="] = "=="
    value: float = Field(description="in the DBC signal's physical units (DBC factor and offset "
                         "applied), not after the mapping's scale/offset")


class SignalMapping(Strict):
    """Which DBC signal feeds which busd signal, and how to make it honest.

    The busd value is ``(dbc_value * scale + offset)``, negated when ``invert``
    (e.g. a BMS that counts charging current as positive).
    """

    message: str | int = Field(description="DBC message name, or its frame id")
    signal: str = Field(description="DBC signal name in that message")
    target: str = Field(description="busd signal name, e.g. battery.soc")
    scale: float = 1.0
    offset: float = 0.0
    invert: bool = False
    choices: dict[int, str] | None = Field(
        default=None, description="raw value -> label, for enum signals"
    )
    valid_min: float | None = None
    valid_max: float | None = None
    max_rate: float | None = Field(
        default=None, gt=0, description="largest believable change, units per second"
    )
    max_step: float | None = Field(
        default=None, ge=0,
        description="how far beyond max_rate a step confirmed by consecutive agreeing frames "
        "may go at once (busd units); unset: values only ever move as fast as max_rate allows",
    )
    when: FrameCondition | None = None

    @model_validator(mode="after")
    def _check(self) -> SignalMapping:
        spec = SIGNALS.get(self.target)
        if spec is None:
            raise ValueError(f"unknown busd signal {self.target!r}")
        if self.max_step is not None and self.max_rate is None:
            raise ValueError("max_step bounds the max_rate rule's steps: give max_rate too")
        if (
            self.valid_min is not None
            and self.valid_max is not None
            and self.valid_min > self.valid_max
        ):
            raise ValueError("valid_min is above valid_max")
        if self.choices is not None:
            if spec.kind is not Kind.ENUM:
                raise ValueError(
                    f"choices only apply to enum signals; {self.target} is {spec.kind}"
                )
            unknown = set(self.choices.values()) - set(spec.choices)
            if unknown:
                raise ValueError(
                    f"choices {sorted(unknown)} are not states of {self.target} "
                    f"({', '.join(spec.choices)})"
                )
        return self


class CanConfig(Strict):
    interface: str = Field(default="socketcan", description="python-can interface name")
    channel: str = "can0"
    bitrate: int = Field(default=500_000, gt=0)
    dbc: Path = Field(description="the DBC file, relative to this config file")
    dbc_strict: bool = Field(
        default=True, description="refuse a DBC that cantools does not load strictly"
    )
    match_j1939_pgn: bool = Field(
        default=True,
        description="match 29-bit frames by PGN, ignoring priority and source address",
    )
    filter_frames: bool = Field(
        default=True,
        description="pass only mapped frames through the interface's acceptance filters "
        "(in the kernel on SocketCAN); off to count every unknown id",
    )
    silence_timeout_s: float = Field(default=2.0, gt=0)
    queue_size: int = Field(default=10_000, ge=100)
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="extra keyword arguments for the python-can bus"
    )
    mapping: list[SignalMapping] = Field(default_factory=list)


class GpsConfig(Strict):
    """Where positions come from: gpsd over TCP, or NMEA 0183 straight from a serial port."""

    source: Literal["gpsd", "nmea"] = Field(
        default="gpsd", description="gpsd JSON protocol, or raw NMEA 0183 on a serial port"
    )
    host: str = Field(default="127.0.0.1", description="gpsd host (source = gpsd)")
    port: int = Field(default=2947, gt=0, lt=65536, description="gpsd TCP port (source = gpsd)")
    device: Path | None = Field(
        default=None, description="serial device with NMEA 0183 (source = nmea)"
    )
    baudrate: int = Field(default=9600, gt=0, description="serial speed (source = nmea)")
    stale_after_s: float = Field(
        default=5.0, gt=0, description="no position report for this long: health degraded"
    )
    time_offset_alarm_s: float = Field(
        default=5.0, gt=0,
        description="GPS time and the system clock differing by more than this is reported",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    backoff_initial_s: float = Field(default=0.5, gt=0, description="first reconnect delay")
    backoff_max_s: float = Field(default=30.0, gt=0, description="longest reconnect delay")

    @model_validator(mode="after")
    def _check_source(self) -> GpsConfig:
        if self.source == "nmea" and self.device is None:
            raise ValueError("source = 'nmea' needs device")
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError("backoff_initial_s is above backoff_max_s")
        return self


class LiftRegisterMap(Strict):
    """Modbus addresses (0-based, as on the wire) of the lift's digital-input module."""

    stowed: int = Field(default=0, ge=0, lt=65536, description="discrete input: lift stowed")
    deployed: int = Field(default=1, ge=0, lt=65536, description="discrete input: fully deployed")
    moving: int = Field(default=2, ge=0, lt=65536, description="discrete input: platform moving")
    door_open: int = Field(default=3, ge=0, lt=65536, description="discrete input: lift door open")
    interlock: int = Field(
        default=4, ge=0, lt=65536, description="discrete input: drive interlock engaged"
    )
    fault: int = Field(
        default=5, ge=0, lt=65536, description="discrete input: lift controller fault"
    )
    cycles: int = Field(default=0, ge=0, lt=65536, description="input register: cycle counter")
    cycles_words: Literal[1, 2] = Field(
        default=1, description="cycle counter width in registers (2 = 32 bit, high word first)"
    )

    @model_validator(mode="after")
    def _check_span(self) -> LiftRegisterMap:
        inputs = [self.stowed, self.deployed, self.moving, self.door_open, self.interlock,
                  self.fault]
        if len(set(inputs)) != len(inputs):
            raise ValueError("two lift inputs share one discrete input address")
        # The driver reads all inputs in one request; Modbus allows at most 2000 bits.
        if max(inputs) - min(inputs) >= 2000:
            raise ValueError("discrete inputs must lie within 2000 addresses of each other")
        return self


class LiftConfig(Strict):
    """The wheelchair lift's RS-485 digital-input module, read with Modbus RTU."""

    port: Path = Field(description="serial device of the RS-485 adapter")
    baudrate: int = Field(default=19200, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    unit_id: int = Field(default=1, ge=1, le=247, description="Modbus unit (slave) id")
    poll_interval_s: float = Field(default=0.25, gt=0, le=5, description="time between polls")
    timeout_s: float = Field(default=0.5, gt=0, description="reply timeout of one request")
    failures_before_degraded: int = Field(
        default=3, ge=1, description="consecutive failed polls before health shows degraded"
    )
    backoff_initial_s: float = Field(default=0.5, gt=0, description="first reopen delay")
    backoff_max_s: float = Field(default=10.0, gt=0, description="longest reopen delay")
    registers: LiftRegisterMap = LiftRegisterMap()


class LiftAlertConfig(Strict):
    """Lift-not-stowed-while-moving alert."""

    speed_threshold_kmh: float = Field(
        default=3.0, gt=0,
        description="moving above this speed with the lift not stowed raises the alert; "
        "it clears once the lift reads stowed",
    )
