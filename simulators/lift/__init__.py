"""Simulated wheelchair-lift Modbus RTU unit on a pty."""

from simulators.lift.model import LiftModel
from simulators.lift.simulator import LiftSimulator

__all__ = ["LiftModel", "LiftSimulator"]
