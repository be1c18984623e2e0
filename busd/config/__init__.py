"""The configuration: one TOML file, validated by pydantic, overridable from the environment.

Precedence, highest first: environment (``BUSD_`` prefix, ``__`` for nesting,
e.g. ``BUSD_MQTT__PORT=1884``), then the TOML file, then the defaults here.
Unknown keys are errors, so a typo never silently falls back to a default.
Relative paths in the file are relative to the file's own folder.

Every problem is reported with its key path (``can.mapping.3.target``), both
by ``busd check-config`` and when ``busd run`` refuses to start.

Import everything from here. One module per part of the file:
:mod:`~busd.config.base` (``Strict``, ``log``, ``supervisor``, ``motion``),
:mod:`~busd.config.devices` (``can``, ``gps``, ``lift``, ``lift_alert``),
:mod:`~busd.config.display`, :mod:`~busd.config.services`, :mod:`~busd.config.simulators`,
:mod:`~busd.config.uplink` (``mqtt``, ``outbox``, ``uplink``),
:mod:`~busd.config.day` (``monitoring``, ``planner``), and
:mod:`~busd.config.loading` (``BusdConfig``, ``load_config``).
"""

from busd.config.base import LogConfig, MotionConfig, Strict, SupervisorConfig
from busd.config.day import MonitoringConfig, PlannerConfig
from busd.config.devices import (
    CanConfig,
    FrameCondition,
    GpsConfig,
    LiftAlertConfig,
    LiftConfig,
    LiftRegisterMap,
    SignalMapping,
)
from busd.config.display import DisplayConfig
from busd.config.loading import CONFIG_ENV, BusdConfig, BusId, load_config, outbox_path
from busd.config.services import ServicesConfig
from busd.config.simulators import (
    BrokerSimulatorConfig,
    CanSimulatorConfig,
    ClockAnchor,
    GpsSimulatorConfig,
    LiftSimulatorConfig,
    SimulatorsConfig,
    TimeWindow,
    Waypoint,
)
from busd.config.uplink import (
    DEFAULT_STATE_SIGNALS,
    MqttConfig,
    OutboxConfig,
    TlsConfig,
    UplinkConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_STATE_SIGNALS",
    "BrokerSimulatorConfig",
    "BusId",
    "BusdConfig",
    "CanConfig",
    "CanSimulatorConfig",
    "ClockAnchor",
    "DisplayConfig",
    "FrameCondition",
    "GpsConfig",
    "GpsSimulatorConfig",
    "LiftAlertConfig",
    "LiftConfig",
    "LiftRegisterMap",
    "LiftSimulatorConfig",
    "LogConfig",
    "MonitoringConfig",
    "MotionConfig",
    "MqttConfig",
    "OutboxConfig",
    "PlannerConfig",
    "ServicesConfig",
    "SignalMapping",
    "SimulatorsConfig",
    "Strict",
    "SupervisorConfig",
    "TimeWindow",
    "TlsConfig",
    "UplinkConfig",
    "Waypoint",
    "load_config",
    "outbox_path",
]
