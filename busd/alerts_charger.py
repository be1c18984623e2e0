"""Alert: the on-board charger reports a fault.

The rule is a pure function over signal views; :class:`ChargerFaultAlert` is
the small component that watches the state and tells an :class:`AlertSink`.

A fault is the charger's state ``fault`` or a non-zero fault code, whichever
arrives first. Honesty rules as for the lift: stale values neither raise nor
clear; once raised, only a current report without a fault (the charger back
to charging, or idle once unplugged) clears it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from busd import signals as sig
from busd.alerts_rule import AlertSink, StateAlertRule
from busd.state import SignalView, VehicleState

ALERT_KIND = "charger_fault"
WATCHED = (sig.CHARGER_STATE, sig.CHARGER_FAULT_CODE, sig.CHARGER_PLUGGED)


@dataclass(frozen=True, slots=True)
class ChargerAlertVerdict:
    active: bool
    state: str | None
    code: int | None
    details: dict[str, object] = field(default_factory=dict)


def evaluate_charger_alert(views: Mapping[str, SignalView], *, active: bool) -> ChargerAlertVerdict:
    """Whether the alert should be active, given whether it is now."""
    state_view, code_view = views.get(sig.CHARGER_STATE), views.get(sig.CHARGER_FAULT_CODE)
    state = state_view.fresh_value if state_view is not None else None
    code = code_view.fresh_value if code_view is not None else None
    state = state if isinstance(state, str) else None
    code = int(code) if isinstance(code, int | float) and not isinstance(code, bool) else None
    faulty = state == "fault" or bool(code)
    # Once raised, cleared only by evidence: a current state that is not a fault, no code.
    still = faulty or (active and state is None)
    return ChargerAlertVerdict(still, state, code, {"charger_state": state, "fault_code": code})


class ChargerFaultAlert(StateAlertRule[ChargerAlertVerdict]):
    """Watches the charger's state and fault code; raises and clears through the sink."""

    kind = ALERT_KIND
    watched = WATCHED

    def __init__(self, *, state: VehicleState, sink: AlertSink,
                 name: str = "charger-alert") -> None:
        super().__init__(state=state, sink=sink, name=name)

    def judge(self, views: Mapping[str, SignalView]) -> ChargerAlertVerdict:
        return evaluate_charger_alert(views, active=self.active)

    def message(self, verdict: ChargerAlertVerdict) -> str:
        code = "" if not verdict.code else f" (code 0x{verdict.code:02X})"
        return f"the charger reports a fault{code}"
