"""Moving and stopped: one definition, from the config's ``[motion]`` section.

Every part of busd that asks whether the bus moves asks here: the tracker (a
halt that may become a visit, and when a visit ends) and the uplink (state and
telemetry rates, the ``moving`` flag of ``.../state``); the planner no longer
judges speed at all (arrival and departure are the tracker's). One threshold,
not two: the bus is *stopped* at or below ``motion.stopped_kmh`` and *moving*
above it, so no speed is both or neither, and no two parts can disagree about it.
The rules that need hysteresis have it in time or distance (a visit needs
``min_visit_min`` stopped, and ends ``exit_margin_m`` outside the geofence), not
in a second speed.

The speed is the wheel speed, or the GPS speed when there is no fresh wheel
speed. The lift alert's ``lift_alert.speed_threshold_kmh`` is deliberately
not this: it is a safety rule whose threshold is set by the lift's safety case
(how fast a bus may creep with the lift out before someone must be warned), and
tuning visits or publish rates must never loosen it by the way. Nor do the
simulators use it (simulators/lift/simulator.py ``standing``): they judge the
model's true speed, and sharing busd's definition would hide a wrong one.
"""

from __future__ import annotations

from busd import signals as sig
from busd.config import MotionConfig
from busd.state import VehicleState

DEFAULT_MOTION = MotionConfig()  # the config's defaults, for parts built without a config


def speed_kmh(wheel_kmh: float | None, gps_kmh: float | None = None) -> float | None:
    """The speed that counts: the wheel speed, else the GPS speed, else unknown."""
    return wheel_kmh if wheel_kmh is not None else gps_kmh


def stopped(motion: MotionConfig, wheel_kmh: float | None,
            gps_kmh: float | None = None) -> bool | None:
    """Stopped (True), moving (False), or unknown (None: no speed at all)."""
    speed = speed_kmh(wheel_kmh, gps_kmh)
    return None if speed is None else speed <= motion.stopped_kmh


def moving_now(motion: MotionConfig, state: VehicleState) -> bool:
    """Whether the vehicle state says the bus moves now (an unknown speed: it does not)."""
    return stopped(motion, _number(state, sig.VEHICLE_SPEED), _number(state, sig.GPS_SPEED)) \
        is False


def _number(state: VehicleState, name: str) -> float | None:
    value = state.value(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
