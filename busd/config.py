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
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
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


class SimulatorsConfig(Strict):
    can: CanSimulatorConfig | None = None
    speed: float = Field(default=1.0, gt=0, description="simulated seconds per real second")


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
    simulators: SimulatorsConfig = SimulatorsConfig()
    planner: PlannerConfig = PlannerConfig()

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
                section[key] = str(base / value)

    fix(data, "data_dir")
    fix(data.get("planner"), "plan_file")
    fix(data.get("can"), "dbc")
    sims = data.get("simulators")
    if isinstance(sims, dict):
        fix(sims.get("can"), "dbc", "replay", "slcan_link")


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
