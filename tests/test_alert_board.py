from __future__ import annotations

from busd.alerts import AlertBoard
from busd.clock import ManualClock


async def test_raise_once_clear_once_and_forward() -> None:
    clock = ManualClock()
    events: list[tuple[str, dict]] = []
    board = AlertBoard(clock=clock, forward=lambda kind, payload: events.append((kind, payload)))
    board.raise_alert("lift_not_stowed", message="Lift not stowed", details={"speed_kmh": 12})
    board.raise_alert("lift_not_stowed", message="Lift not stowed", details={"speed_kmh": 14})
    assert list(board.active) == ["lift_not_stowed"] and board.raised_count == 1
    await clock.advance(42)
    board.clear_alert("lift_not_stowed", details={})
    board.clear_alert("lift_not_stowed", details={})
    assert board.active == {}
    assert [kind for kind, _ in events] == ["alert_raised", "alert_cleared"]
    assert events[1][1]["duration_s"] == 42
