"""GPS sources: gpsd's JSON protocol (default) or NMEA 0183 from a serial port."""

from __future__ import annotations

from busd.clock import Clock
from busd.config import GpsConfig
from busd.state import VehicleState
from drivers.gps.fix import FixQuality, GpsFix
from drivers.gps.gpsd_client import GpsdSource
from drivers.gps.nmea_serial import NmeaSerialSource

__all__ = ["FixQuality", "GpsFix", "GpsdSource", "NmeaSerialSource", "gps_source"]


def gps_source(
    config: GpsConfig, *, state: VehicleState, clock: Clock
) -> GpsdSource | NmeaSerialSource:
    """The component the config asks for (the composition root's one call)."""
    if config.source == "nmea":
        assert config.device is not None  # the config validator guarantees it
        return NmeaSerialSource(
            state=state, clock=clock, device=str(config.device), baudrate=config.baudrate,
            stale_after_s=config.stale_after_s, time_offset_alarm_s=config.time_offset_alarm_s,
            backoff_initial_s=config.backoff_initial_s, backoff_max_s=config.backoff_max_s,
        )
    return GpsdSource(
        state=state, clock=clock, host=config.host, port=config.port,
        connect_timeout_s=config.connect_timeout_s,
        stale_after_s=config.stale_after_s, time_offset_alarm_s=config.time_offset_alarm_s,
        backoff_initial_s=config.backoff_initial_s, backoff_max_s=config.backoff_max_s,
    )
