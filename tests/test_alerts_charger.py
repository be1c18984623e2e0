"""Charger fault: the pure rule, and the component around it."""

from __future__ import annotations

from typing import Any

import pytest

from busd import signals as sig
from busd.alerts import AlertBoard
from busd.alerts_charger import ALERT_KIND, ChargerFaultAlert, evaluate_charger_alert
from busd.clock import ManualClock
from busd.state import SignalView, VehicleState
from tests.support.components import running
from tests.support.wait import wait_until


def view(name: str, value: object, *, stale: bool = False) -> SignalView:
    return SignalView(name, value, "", 0.0, 0.0, stale, "test")  # type: ignore[arg-type]


def views(state: str | None = None, code: int | None = None, *,
          stale: bool = False) -> dict[str, SignalView]:
    out = {}
    if state is not None:
        out[sig.CHARGER_STATE] = view(sig.CHARGER_STATE, state, stale=stale)
    if code is not None:
        out[sig.CHARGER_FAULT_CODE] = view(sig.CHARGER_FAULT_CODE, code, stale=stale)
    return out


@pytest.mark.parametrize(
    ("state", "code", "expected"),
    [("fault", 0x21, True), ("fault", None, True), ("charging", 0x21, True),
     ("charging", 0, False), ("idle", 0, False), ("complete", None, False), (None, None, False)],
)
def test_raises_on_a_fault_state_or_code(state: str | None, code: int | None,
                                         expected: bool) -> None:
    assert evaluate_charger_alert(views(state, code), active=False).active is expected


def test_stale_values_neither_raise_nor_clear() -> None:
    assert not evaluate_charger_alert(views("fault", 0x21, stale=True), active=False).active
    assert evaluate_charger_alert(views("charging", 0, stale=True), active=True).active
    assert evaluate_charger_alert({}, active=True).active


def test_clears_on_a_current_report_without_a_fault() -> None:
    assert evaluate_charger_alert(views("fault", 0x21), active=True).active
    assert not evaluate_charger_alert(views("charging", 0), active=True).active
    assert not evaluate_charger_alert(views("idle", 0), active=True).active  # unplugged


async def test_the_board_gets_one_alert_per_fault_and_its_clearing() -> None:
    clock = ManualClock()
    state = VehicleState(clock)
    events: list[tuple[str, dict[str, Any]]] = []
    board = AlertBoard(clock=clock, forward=lambda e: events.append((e.kind, e.to_dict())))
    alert = ChargerFaultAlert(state=state, sink=board)
    async with running(alert, clock):
        state.update(sig.CHARGER_STATE, "charging", source="t")
        state.update(sig.CHARGER_FAULT_CODE, 0, source="t")
        state.update(sig.CHARGER_STATE, "fault", source="t")
        state.update(sig.CHARGER_FAULT_CODE, 0x21, source="t")
        await wait_until(lambda: len(events) == 1, timeout=2, what="raise")
        state.update(sig.CHARGER_POWER, 0.0, source="t")  # more reports of the same fault
        state.update(sig.CHARGER_STATE, "fault", source="t")
        await clock.advance(1.0)
        state.update(sig.CHARGER_STATE, "charging", source="t")
        state.update(sig.CHARGER_FAULT_CODE, 0, source="t")
        await wait_until(lambda: len(events) == 2, timeout=2, what="clear")
    assert [(k, d["alert"]) for k, d in events] == [("alert_raised", ALERT_KIND),
                                                     ("alert_cleared", ALERT_KIND)]
    assert events[0][1]["details"]["fault_code"] == 0x21
    assert "0x21" in events[0][1]["message"]
    assert board.active == {}
