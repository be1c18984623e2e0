"""The configuration: one TOML file, validated by pydantic, overridable from the environment.

Precedence, highest first: environment (``BUSD_`` prefix, ``__`` for nesting,
e.g. ``BUSD_MQTT__PORT=1884``), then the TOML file, then the defaults here.
Unknown keys are errors, so a typo never silently falls back to a default.
Relative paths in the file are relative to the file's own folder.

Every problem is reported with its key path (``can.mapping.3.target``), both
by ``busd check-config`` and when ``busd run`` refuses to start.
"""

from __future__ import annotations

import os
import tomllib
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from busd.errors import ConfigError
from busd.signals import SIGNALS, Kind

CONFIG_ENV = "BUSD_CONFIG"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class FrameCondition(Strict):
    """A rule on another signal of the same frame that must hold for the value to count."""

    signal: str
    op: Literal["==", "!=", "<", "<=", ">", ">="] = "=="
    value: float


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
    when: FrameCondition | None = None

    @model_validator(mode="after")
    def _check(self) -> SignalMapping:
        spec = SIGNALS.get(self.target)
        if spec is None:
            raise ValueError(f"unknown busd signal {self.target!r}")
        if self.valid_min is not None and self.valid_max is not None:
            if self.valid_min > self.valid_max:
                raise ValueError("valid_min is above valid_max")
        if self.choices is not None:
            if spec.kind is not Kind.ENUM:
                raise ValueError(f"choices only apply to enum signals; {self.target} is {spec.kind}")
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


class DisplayConfig(Strict):
    """The driver's display: a web page served by the daemon for the kiosk screen."""

    enabled: bool = Field(default=True, description="serve the driver's display")
    host: str = Field(
        default="127.0.0.1",
        description="address to listen on; anything but loopback needs allow_remote = true",
    )
    port: int = Field(default=8080, ge=0, lt=65536, description="TCP port (0 = any free port)")
    allow_remote: bool = Field(
        default=False,
        description="explicitly allow listening beyond localhost (a screen on another box)",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="extra Host header names the page may be reached by (besides localhost, "
        "127.0.0.1, ::1 and host); guards against DNS rebinding",
    )
    language: Literal["lv", "lt", "en"] = Field(
        default="lv", description="language the page starts in (the driver can switch)"
    )
    night_mode: Literal["auto", "on", "off"] = Field(
        default="auto", description="dark theme: auto = while the sun is down at the bus"
    )
    timezone: str = Field(default="Europe/Riga", description="time zone of times on the page")
    latitude: float = Field(
        default=56.3543, ge=-90, le=90, description="position for night mode without GPS"
    )
    longitude: float = Field(
        default=26.1758, ge=-180, le=180, description="position for night mode without GPS"
    )
    margin_amber_pct: float = Field(
        default=5.0, gt=0, le=50,
        description="projected depot SOC less than this many points above the reserve: amber; "
        "below the reserve: red",
    )
    charge_target_soc: float = Field(
        default=90.0, gt=0, le=100, description="SOC the time-to-charge estimate aims for, %"
    )
    battery_capacity_kwh: float = Field(
        default=110.0, gt=0, description="usable pack energy, for the time-to-charge estimate"
    )
    push_interval_s: float = Field(
        default=0.5, ge=0.1, le=10, description="fewest real seconds between two live updates"
    )
    heartbeat_s: float = Field(
        default=5.0, ge=1, le=60,
        description="a live update at least this often (real seconds), so the page can tell "
        "a quiet daemon from a lost one",
    )
    max_clients: int = Field(default=8, ge=1, le=100, description="live-update streams at once")

    @model_validator(mode="after")
    def _check_exposure(self) -> DisplayConfig:
        loopback = {"127.0.0.1", "localhost", "::1"}
        if self.host not in loopback and not self.allow_remote:
            raise ValueError(
                f"host {self.host!r} is beyond localhost: set allow_remote = true to allow it"
            )
        if self.host in ("0.0.0.0", "::", "") and not self.allowed_hosts:
            raise ValueError(
                "listening on every address needs allowed_hosts (the names the screen uses)"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


class SupervisorConfig(Strict):
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=4.5, gt=0, le=30)


class CanSimulatorConfig(Strict):
    """The CAN simulator started with the daemon (only in simulation configs)."""

    interface: str = Field(
        default="virtual", description="python-can interface the simulator sends on"
    )
    channel: str = Field(default="busd-sim", description="python-can channel it sends on")
    slcan_link: Path | None = Field(
        default=None,
        description="serve the frames as an slcan adapter on a pty linked at this path "
        "(for a daemon in another process) instead of sending on interface/channel",
    )
    dbc: Path = Field(description="DBC the frames are encoded with")
    replay: Path | None = Field(
        default=None, description="replay this CAN log instead of the model"
    )
    replay_loop: bool = Field(default=True, description="start the replay again when it ends")
    fps: float = Field(
        default=0.0,
        ge=0,
        le=20_000,
        description="total frames per real second including other ECUs' traffic that busd "
        "ignores (e.g. 1000); 0 = only the DBC messages (about 83 frames/s)",
    )
    initial_soc: float = Field(default=90.0, ge=0, le=100, description="SOC at start, %")
    capacity_kwh: float = Field(default=110.0, gt=0, description="usable pack energy")
    outside_temp_c: float = Field(default=-5.0, ge=-50, le=60, description="outside air, °C")
    cruise_kmh: float = Field(default=60.0, gt=0, le=120, description="speed of each drive")
    drive_s: float = Field(default=900.0, gt=0, description="length of each drive")
    stop_s: float = Field(default=600.0, gt=0, description="length of each stop with heating on")


class Waypoint(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class TimeWindow(Strict):
    """A period in seconds after the simulator starts (simulated time)."""

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> TimeWindow:
        if self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class GpsSimulatorConfig(Strict):
    """NMEA receiver simulator: writes RMC/GGA/VTG at 1 Hz to a pty for gpsd to read."""

    link: Path = Field(
        default=Path("/tmp/busd-sim/gps"), description="symlink to the pty slave gpsd opens"
    )
    start: Waypoint = Field(
        default=Waypoint(lat=56.3543, lon=26.1758), description="position before any route"
    )
    route: list[Waypoint] = Field(
        default_factory=list, description="waypoints driven in order, starting from start"
    )
    speed_kmh: float = Field(default=50.0, gt=0, description="speed along the route")
    loop: bool = Field(default=False, description="drive the route again when it ends")
    noise_m: float = Field(default=2.5, ge=0, description="1-sigma horizontal position noise")
    satellites: int = Field(default=9, ge=0, le=32)
    hdop: float = Field(default=0.9, gt=0)
    outages: list[TimeWindow] = Field(default_factory=list, description="periods of silence")
    no_fix: list[TimeWindow] = Field(
        default_factory=list, description="periods the receiver talks but has no fix"
    )
    seed: int | None = Field(default=None, description="noise seed, for repeatable runs")


class LiftSimulatorConfig(Strict):
    """The lift's Modbus RTU unit on a pty."""

    link: Path = Field(
        default=Path("/tmp/busd-sim/lift"), description="symlink to the pty slave the driver opens"
    )
    unit_id: int = Field(default=1, ge=1, le=247)
    deploy_s: float = Field(default=8.0, gt=0, description="time to deploy the platform")
    stow_s: float = Field(default=8.0, gt=0, description="time to stow it")
    dwell_s: float = Field(default=60.0, ge=0, description="time deployed in an automatic cycle")
    cycle_at_stops: bool = Field(
        default=True, description="run one cycle at every stop (when the simulator knows speed)"
    )
    initial_cycles: int = Field(default=0, ge=0)
    registers: LiftRegisterMap = LiftRegisterMap()


class BrokerSimulatorConfig(Strict):
    """A private mosquitto started with the daemon, as the office's broker."""

    port: int = Field(default=18830, ge=1024, le=65535, description="its port on 127.0.0.1")


class SimulatorsConfig(Strict):
    broker: BrokerSimulatorConfig | None = None
    can: CanSimulatorConfig | None = None
    gps: GpsSimulatorConfig | None = None
    lift: LiftSimulatorConfig | None = None
    speed: float = Field(default=1.0, gt=0, description="simulated seconds per real second")
    clock_anchor: ClockAnchor | None = Field(
        default=None,
        description="share one simulated clock with other processes (a scenario runner): "
        "simulated time = sim_epoch + (real time - real_epoch) x speed",
    )


class ClockAnchor(Strict):
    """A simulated day's clock shared by processes: where simulated and real time meet."""

    sim_epoch: float = Field(gt=0, description="simulated UTC epoch seconds at real_epoch")
    real_epoch: float = Field(gt=0, description="real epoch seconds (time.time()) of the anchor")


class TlsConfig(Strict):
    """TLS to the broker. The server is always verified against ``ca_file`` (or the system CAs)."""

    enabled: bool = False
    ca_file: Path | None = Field(default=None, description="CA bundle; system CAs when unset")
    cert_file: Path | None = Field(default=None, description="client certificate (PEM)")
    key_file: Path | None = Field(default=None, description="client private key (PEM)")
    check_hostname: bool = Field(
        default=True, description="verify the broker's name; off only for lab brokers by IP"
    )

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttConfig(Strict):
    host: str = Field(default="localhost", description="broker host (BUSD_MQTT__HOST)")
    port: int = Field(default=1883, ge=1, le=65535, description="broker port (BUSD_MQTT__PORT)")
    client_id: str | None = Field(default=None, description="default busd-{bus_id}")
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description="prefer BUSD_MQTT__PASSWORD or password_file; never logged"
    )
    password_file: Path | None = Field(default=None, description="file holding the password")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="auto: MQTT 5, falling back to 3.1.1 if the broker refuses"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    timeout_s: float = Field(default=10.0, gt=0, description="connect/publish/ack timeout")
    reconnect_initial_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    topic_prefix: str = Field(
        default="multimobile/v1/{bus_id}", description="every topic starts with this"
    )
    tls: TlsConfig = TlsConfig()

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("reconnect_initial_s is above reconnect_max_s")
        if "#" in self.topic_prefix or "+" in self.topic_prefix:
            raise ValueError("topic_prefix must not contain MQTT wildcards")
        return self

    def password_value(self) -> str | None:
        """The password from the config, the environment or the file; None without one."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ConfigError([("mqtt.password_file", f"cannot read: {err}")]) from err
        return None


class OutboxConfig(Strict):
    path: Path = Field(
        default=Path("outbox.sqlite"), description="relative paths are inside data_dir"
    )
    max_mb: float = Field(default=256.0, gt=0, description="over this, old telemetry is thinned")
    max_age_days: float = Field(default=30.0, gt=0, description="older records are dropped")
    commit_interval_s: float = Field(
        default=5.0, gt=0, le=30,
        description="telemetry is committed in groups this often; events commit at once",
    )
    synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL", description="FULL: a committed record survives power loss"
    )
    telemetry_buffer: int = Field(
        default=600, ge=10, description="telemetry samples waiting for the next commit"
    )
    delete_interval_s: float = Field(
        default=30.0, gt=0, description="acknowledged records are deleted in groups this often")
    retention_check_s: float = Field(default=60.0, gt=0)


# What the office's live view needs every second; the full record is in telemetry.
DEFAULT_STATE_SIGNALS = (
    "battery.soc", "battery.power", "battery.fault", "charger.plugged", "charger.state",
    "charger.power", "vehicle.speed", "vehicle.odometer", "vehicle.ready",
    "vehicle.outside_temp", "vehicle.hvac_power", "gps.fix", "gps.lat", "gps.lon",
    "gps.heading", "lift.state",
)


class UplinkConfig(Strict):
    state_signals: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STATE_SIGNALS),
        description="signals in the retained state snapshot (each second while moving)",
    )
    state_interval_moving_s: float = Field(default=1.0, gt=0)
    state_interval_parked_s: float = Field(default=30.0, gt=0)
    state_expiry_s: int = Field(
        default=600, ge=0, description="MQTT 5 message expiry of retained state (0: none)"
    )
    telemetry_interval_moving_s: float = Field(default=1.0, gt=0)
    telemetry_interval_parked_s: float = Field(default=10.0, gt=0)
    telemetry_keyframe_s: float = Field(
        default=60.0, gt=0, description="a full sample this often; changes only in between"
    )
    telemetry_signals: list[str] | None = Field(
        default=None, description="signals in telemetry; all when unset"
    )
    moving_kmh: float = Field(default=2.0, ge=0, description="above this speed the bus moves")
    batch_max_records: int = Field(default=1000, ge=1)
    batch_max_kb: int = Field(default=256, ge=1, le=100_000)
    inflight: int = Field(default=16, ge=1, le=1000, description="QoS 1 messages awaiting PUBACK")
    command_max_bytes: int = Field(default=256 * 1024, ge=256)
    timezone: str = Field(default="Europe/Riga", description="for a plan's date")

    @model_validator(mode="after")
    def _check(self) -> UplinkConfig:
        for key in ("telemetry_signals", "state_signals"):
            unknown = set(getattr(self, key) or ()) - set(SIGNALS)
            if unknown:
                raise ValueError(f"{key} names unknown signals: {sorted(unknown)}")
        return self
class MonitoringConfig(Strict):
    """The monitoring log: legs, visits, charging sessions, daily summary."""

    db: Path | None = Field(
        default=None,
        description="SQLite file of the monitoring store; default data_dir/monitoring.sqlite",
    )
    plan: Path | None = Field(
        default=None, description="the day's stop plan file (TOML or JSON), relative to this file"
    )
    min_visit_min: float = Field(
        default=3.0, gt=0, le=60,
        description="stopped at least this long to count as a visit (shorter is a traffic stop)",
    )
    stopped_kmh: float = Field(
        default=3.0, gt=0, le=15, description="at or below this speed the bus counts as stopped"
    )
    exit_margin_m: float = Field(
        default=30.0, ge=0, le=500,
        description="hysteresis: a visit ends this far outside the stop's geofence",
    )
    unplanned_radius_m: float = Field(
        default=100.0, gt=10, le=2000, description="geofence drawn around an unplanned stop"
    )
    gps_min_step_m: float = Field(
        default=15.0, ge=0, le=200,
        description="GPS track cross-check: ignore moves shorter than this (parked jitter)",
    )
    energy_gap_s: float = Field(
        default=5.0, gt=0, le=300,
        description="battery current older than this is a gap in the energy figures, not held",
    )
    soc_sample_s: float = Field(default=60.0, gt=0, le=3600, description="SOC log interval")
    checkpoint_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="open legs/visits are saved this often, so a crash loses at most this much",
    )
    summary_at: time = Field(
        default=time(21, 0), description="local time (plan time zone) of the daily summary"
    )
    timezone: str = Field(default="Europe/Riga", description="time zone of days and summary_at")
    retention_days: int = Field(
        default=400, ge=7, le=3660,
        description="monitoring records older than this are deleted by a daily job",
    )


class PlannerConfig(Strict):
    """The SOC-aware stop planner: energy model seeds, safety, stability.

    Energy seeds are linear in the cold: driving ``drive_kwh_per_km`` plus
    ``drive_kwh_per_km_per_k`` for every kelvin below ``drive_ref_temp_c``; on
    site ``site_kw`` plus ``site_kw_per_k`` below ``site_ref_temp_c`` (heating).
    The bus's own legs and visits correct them (see busd.planner.energy).
    """

    enabled: bool = Field(default=True, description="run the planner component")
    plan_file: Path | None = Field(
        default=None, description="the day's plan (TOML or JSON); the office may replace it"
    )
    capacity_kwh: float = Field(default=110.0, gt=0, le=1000, description="usable pack energy")
    reserve_pct: float = Field(
        default=15.0, ge=0, le=60, description="SOC that must be left on arrival at the depot"
    )
    margin_pct: float = Field(
        default=3.0, ge=0, le=30, description="safety margin above the reserve, before uncertainty"
    )
    margin_sigmas: float = Field(
        default=1.0, ge=0, le=5,
        description="extra margin: this many standard deviations of the model's error "
        "on the remaining energy",
    )
    drive_kwh_per_km: float = Field(default=0.26, gt=0, le=3, description="seed, warm road")
    drive_kwh_per_km_per_k: float = Field(
        default=0.0035, ge=0, le=0.1, description="seed, extra kWh/km per kelvin below ref"
    )
    drive_ref_temp_c: float = Field(default=15.0, ge=-20, le=40)
    site_kw: float = Field(default=1.0, ge=0, le=50, description="seed, on site, no heating")
    site_kw_per_k: float = Field(
        default=0.12, ge=0, le=5, description="seed, extra on-site kW per kelvin below ref"
    )
    site_ref_temp_c: float = Field(default=18.0, ge=-20, le=40)
    road_factor: float = Field(
        default=1.3, ge=1.0, le=3.0, description="seed, road km per great-circle km"
    )
    learn_rate: float = Field(
        default=0.2, gt=0, le=1, description="weight of each new leg/visit in the learned factors"
    )
    prior_cv: float = Field(
        default=0.10, ge=0, le=1, description="relative error assumed before any learning"
    )
    speed_kmh: float = Field(default=50.0, gt=5, le=120, description="average road speed")
    charge_max_pct: float = Field(default=90.0, gt=0, le=100, description="charge no higher")
    charge_taper_pct: float = Field(
        default=80.0, gt=0, le=100, description="SOC where charging power starts to fall"
    )
    charge_taper_floor: float = Field(
        default=0.2, gt=0, le=1, description="fraction of the power left at 100 %"
    )
    max_charge_kw: float = Field(default=50.0, gt=0, le=400, description="what the bus accepts")
    charge_overhead_min: float = Field(
        default=5.0, ge=0, le=60, description="plugging in, paying, leaving"
    )
    charge_buffer_pct: float = Field(
        default=5.0, ge=0, le=50, description="charge this much above the bare need"
    )
    visit_step_min: float = Field(
        default=5.0, gt=0, le=60, description="visit lengths are proposed in these steps"
    )
    reorder_penalty_min: float = Field(
        default=20.0, ge=0, le=600,
        description="cost of each pair of stops swapped against the announced order, "
        "in minutes of lateness",
    )
    exact_max_stops: int = Field(
        default=10, ge=0, le=12, description="exact search up to this many remaining stops"
    )
    hysteresis_pct: float = Field(
        default=2.0, ge=0, le=20,
        description="a pending proposal is replaced only when its projected depot SOC moves "
        "this much, and withdrawn only when the active plan is this much above the line",
    )
    restore_margin_pct: float = Field(
        default=6.0, ge=0, le=50,
        description="propose restoring shortened or skipped stops only with this much to spare",
    )
    min_interval_s: float = Field(
        default=30.0, ge=0, le=3600, description="re-project at most this often"
    )
    max_interval_s: float = Field(
        default=120.0, gt=0, le=3600, description="re-project at least this often"
    )
    language: Literal["lv", "lt", "en"] = Field(default="lv", description="driver's language")

    @model_validator(mode="after")
    def _check(self) -> PlannerConfig:
        if self.reserve_pct + self.margin_pct >= self.charge_max_pct:
            raise ValueError("reserve_pct + margin_pct must be below charge_max_pct")
        if self.max_interval_s < self.min_interval_s:
            raise ValueError("max_interval_s is below min_interval_s")
        return self


BusId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]


class BusdConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BUSD_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    bus_id: BusId
    data_dir: Path = Field(default=Path("/var/lib/busd"), description="databases live here")
    log: LogConfig = LogConfig()
    freshness_s: dict[str, float] = Field(
        default_factory=dict, description="per-signal freshness limits overriding the defaults"
    )
    supervisor: SupervisorConfig = SupervisorConfig()
    can: CanConfig | None = None
    gps: GpsConfig | None = Field(default=None, description="GPS source; none: no GPS")
    lift: LiftConfig | None = Field(default=None, description="lift Modbus unit; none: no lift")
    lift_alert: LiftAlertConfig = LiftAlertConfig()
    simulators: SimulatorsConfig = SimulatorsConfig()
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    uplink: UplinkConfig = UplinkConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    display: DisplayConfig = Field(
        default=DisplayConfig(), description="the driver's display (web page)"
    )
    planner: PlannerConfig = PlannerConfig()

    @property
    def monitoring_db(self) -> Path:
        """The monitoring store's file."""
        return self.monitoring.db or self.data_dir / "monitoring.sqlite"

    @model_validator(mode="after")
    def _check_signals(self) -> BusdConfig:
        unknown = set(self.freshness_s) - set(SIGNALS)
        if unknown:
            raise ValueError(f"freshness_s names unknown signals: {sorted(unknown)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments; the environment beats them.
        return (env_settings, init_settings)


def _key_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _problems(err: ValidationError) -> list[tuple[str, str]]:
    return [(_key_path(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in err.errors()]


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make the file's relative paths relative to the file, not the working directory."""

    def fix(section: dict[str, Any] | None, *keys: str) -> None:
        if not isinstance(section, dict):
            return
        for key in keys:
            value = section.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                section[key] = os.path.normpath(base / value)

    fix(data, "data_dir")
    fix(data.get("planner"), "plan_file")
    fix(data.get("can"), "dbc")
    fix(data.get("gps"), "device")
    fix(data.get("lift"), "port")
    fix(data.get("monitoring"), "db", "plan")
    sims = data.get("simulators")
    if isinstance(sims, dict):
        fix(sims.get("can"), "dbc", "replay", "slcan_link")
        fix(sims.get("gps"), "link")
        fix(sims.get("lift"), "link")
    mqtt = data.get("mqtt")
    fix(mqtt, "password_file")
    if isinstance(mqtt, dict):
        fix(mqtt.get("tls"), "ca_file", "cert_file", "key_file")
    # outbox.path is relative to data_dir, not to the file: see outbox_path().


def load_config(path: str | Path | None = None) -> BusdConfig:
    """Load and validate; raises ConfigError listing every problem with its key path."""
    if path is None:
        path = os.environ.get(CONFIG_ENV)
    if path is None:
        raise ConfigError([("--config", f"no config file given (use --config or {CONFIG_ENV})")])
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([(str(path), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([(str(path), f"cannot read: {err}")]) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([(str(path), f"not valid TOML: {err}")]) from err
    _resolve_paths(data, path.resolve().parent)
    try:
        return BusdConfig(**data)
    except ValidationError as err:
        raise ConfigError(_problems(err)) from err


def outbox_path(config: BusdConfig) -> Path:
    """Where the outbox database lives: ``outbox.path``, relative to ``data_dir``."""
    path = config.outbox.path
    return path if path.is_absolute() else config.data_dir / path
