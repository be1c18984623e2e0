"""The wheelchair lift's digital-input module over Modbus RTU."""

from drivers.lift.mapping import LiftInputs, lift_state
from drivers.lift.modbus import LiftModbusSource

__all__ = ["LiftInputs", "LiftModbusSource", "lift_state"]
