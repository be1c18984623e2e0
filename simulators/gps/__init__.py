"""Simulated GPS receiver writing NMEA to a pty."""

from simulators.gps.route import CallbackPosition, PositionSource, Route, SimPosition
from simulators.gps.simulator import GpsSimulator

__all__ = ["CallbackPosition", "GpsSimulator", "PositionSource", "Route", "SimPosition"]
