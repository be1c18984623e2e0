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
from busd.alerts_lift import AlertSink
from busd.state import SignalView, VehicleState
from busd.supervisor import ComponentContext

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


class ChargerFaultAlert:
    """Watches the charger's state and fault code; raises and clears through the sink."""

    critical = False

    def __init__(self, *, state: VehicleState, sink: AlertSink,
                 name: str = "charger-alert") -> None:
        self.name = name
        self._state = state
        self._sink = sink
        self.active = False

    def evaluate(self) -> ChargerAlertVerdict:
        """Apply the rule to the current state and notify the sink on a change."""
        verdict = evaluate_charger_alert(self._state.snapshot(WATCHED), active=self.active)
        if verdict.active and not self.active:
            code = "" if not verdict.code else f" (code 0x{verdict.code:02X})"
            self._sink.raise_alert(ALERT_KIND, message=f"the charger reports a fault{code}",
                                   details=verdict.details)
        elif self.active and not verdict.active:
            self._sink.clear_alert(ALERT_KIND, details=verdict.details)
        self.active = verdict.active
        return verdict

    async def run(self, ctx: ComponentContext) -> None:
        watcher = self._state.watch(WATCHED)
        ctx.ready()
        while True:
            verdict = self.evaluate()
            ctx.counters["active"] = int(verdict.active)
            await watcher.changed()
            ctx.beat()
