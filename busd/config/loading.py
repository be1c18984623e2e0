"""The whole configuration (``BusdConfig``) and loading it from a TOML file and the environment."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from busd.config import environment
from busd.config.base import LogConfig, MotionConfig, SupervisorConfig
from busd.config.day import MonitoringConfig, PlannerConfig
from busd.config.devices import CanConfig, GpsConfig, LiftAlertConfig, LiftConfig
from busd.config.display import DisplayConfig
from busd.config.services import ServicesConfig
from busd.config.simulators import SimulatorsConfig
from busd.config.uplink import MqttConfig, OutboxConfig, UplinkConfig
from busd.errors import ConfigError
from busd.signals import SIGNALS

CONFIG_ENV = "BUSD_CONFIG"


BusId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]


class BusdConfig(BaseModel):
    """The whole configuration; ``BUSD_…`` environment variables override what it is given."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,  # TOML's inf and nan are no setting
        validate_default=True,
    )

    bus_id: BusId
    data_dir: Path = Field(default=Path("/var/lib/busd"), description="databases live here")
    log: LogConfig = LogConfig()
    freshness_s: dict[str, float] = Field(
        default_factory=dict, description="per-signal freshness limits overriding the defaults"
    )
    supervisor: SupervisorConfig = SupervisorConfig()
    motion: MotionConfig = Field(
        default=MotionConfig(), description="what counts as moving and stopped, for every part"
    )
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
    services: ServicesConfig = Field(
        default=ServicesConfig(), description="service types counted and activities timed "
        "per visit (the staff page)"
    )

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

    @model_validator(mode="before")
    @classmethod
    def _environment_wins(cls, data: Any) -> Any:
        # Every construction, as pydantic-settings did: the file's contents
        # arrive as arguments, and the environment beats them key by key.
        if not isinstance(data, dict):
            return data
        return environment.merge(data, environment.overrides(cls, os.environ))


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
