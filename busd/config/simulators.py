"""The simulators started with the daemon in simulation configs: CAN, GPS, lift, broker, clock."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from busd.config.base import Strict
from busd.config.devices import LiftRegisterMap


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
