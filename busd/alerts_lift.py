"""Alert: the bus moves while the wheelchair lift is not stowed.

The rule is a pure function over signal views; :class:`LiftMovingAlert` is
the small component that watches the state and tells an :class:`AlertSink`.

Honesty rules: speed is the wheel speed (vehicle.speed), or GPS speed when
the wheel speed is stale; with neither, or with no current lift state, the
rule cannot raise. Once raised, only a current "stowed" clears it: a lift
state that went stale is not evidence that the lift was put away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from busd import signals as sig
from busd.alerts_rule import AlertSink, StateAlertRule
from busd.state import SignalView, VehicleState

ALERT_KIND = "lift_not_stowed_moving"
WATCHED = (sig.VEHICLE_SPEED, sig.GPS_SPEED, sig.LIFT_STATE)


@dataclass(frozen=True, slots=True)
class LiftAlertVerdict:
    active: bool
    speed_kmh: float | None
    speed_source: str | None
    lift_state: str | None
    details: dict[str, object] = field(default_factory=dict)


def current_speed(views: Mapping[str, SignalView]) -> tuple[float | None, str | None]:
    """Wheel speed if current, else GPS speed if current, else unknown."""
    for name in (sig.VEHICLE_SPEED, sig.GPS_SPEED):
        view = views.get(name)
        if view is not None and isinstance(view.fresh_value, int | float):
            return float(view.fresh_value), name
    return None, None


def evaluate_lift_alert(
    views: Mapping[str, SignalView], *, active: bool, speed_threshold_kmh: float
) -> LiftAlertVerdict:
    """Whether the alert should be active, given whether it is now."""
    speed, speed_source = current_speed(views)
    lift_view = views.get(sig.LIFT_STATE)
    lift = lift_view.fresh_value if lift_view is not None else None
    lift_state = lift if isinstance(lift, str) else None
    if active:
        still = lift_state != "stowed"
    else:
        still = (speed is not None and speed > speed_threshold_kmh
                 and lift_state is not None and lift_state != "stowed")
    details: dict[str, object] = {"speed_kmh": speed, "speed_source": speed_source,
                                  "lift_state": lift_state}
    return LiftAlertVerdict(still, speed, speed_source, lift_state, details)


class LiftMovingAlert(StateAlertRule[LiftAlertVerdict]):
    """Watches speed and lift state; raises and clears through the sink."""

    kind = ALERT_KIND
    watched = WATCHED

    def __init__(
        self, *, state: VehicleState, sink: AlertSink, speed_threshold_kmh: float = 3.0,
        name: str = "lift-alert",
    ) -> None:
        if speed_threshold_kmh <= 0:
            raise ValueError("speed_threshold_kmh must be positive")
        super().__init__(state=state, sink=sink, name=name)
        self._threshold = speed_threshold_kmh

    def judge(self, views: Mapping[str, SignalView]) -> LiftAlertVerdict:
        return evaluate_lift_alert(views, active=self.active,
                                   speed_threshold_kmh=self._threshold)

    def message(self, verdict: LiftAlertVerdict) -> str:
        return (f"bus moving at {verdict.speed_kmh:.0f} km/h with the lift "
                f"{verdict.lift_state}")
