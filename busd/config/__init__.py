"""The configuration: one TOML file, validated by pydantic, overridable from the environment.

Precedence, highest first: environment (``BUSD_`` prefix, ``__`` for nesting,
e.g. ``BUSD_MQTT__PORT=1884``), then the TOML file, then the defaults here.
Unknown keys are errors, so a typo never silently falls back to a default.
Relative paths in the file are relative to the file's own folder.

Every problem is reported with its key path (``can.mapping.3.target``), both
by ``busd check-config`` and when ``busd run`` refuses to start.

The models live in :mod:`busd.config.loading` for now; import them from here.
"""

from busd.config.loading import (
    CONFIG_ENV,
    DEFAULT_STATE_SIGNALS,
    BrokerSimulatorConfig,
    BusdConfig,
    BusId,
    CanConfig,
    CanSimulatorConfig,
    ClockAnchor,
    DisplayConfig,
    FrameCondition,
    GpsConfig,
    GpsSimulatorConfig,
    LiftAlertConfig,
    LiftConfig,
    LiftRegisterMap,
    LiftSimulatorConfig,
    LogConfig,
    MonitoringConfig,
    MqttConfig,
    OutboxConfig,
    PlannerConfig,
    SignalMapping,
    SimulatorsConfig,
    Strict,
    SupervisorConfig,
    TimeWindow,
    TlsConfig,
    UplinkConfig,
    Waypoint,
    load_config,
    outbox_path,
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
    "MqttConfig",
    "OutboxConfig",
    "PlannerConfig",
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
