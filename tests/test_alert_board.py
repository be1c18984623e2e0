from __future__ import annotations

from pathlib import Path

from busd.alerts import AlertBoard
from busd.clock import ManualClock
from busd.event_catalog import AlertCleared, AlertRaised


async def test_raise_once_clear_once_and_forward() -> None:
    clock = ManualClock()
    events: list[AlertRaised | AlertCleared] = []
    board = AlertBoard(clock=clock, forward=events.append)
    board.raise_alert("lift_not_stowed", message="Lift not stowed", details={"speed_kmh": 12})
    board.raise_alert("lift_not_stowed", message="Lift not stowed", details={"speed_kmh": 14})
    assert list(board.active) == ["lift_not_stowed"] and board.raised_count == 1
    await clock.advance(42)
    board.clear_alert("lift_not_stowed", details={})
    board.clear_alert("lift_not_stowed", details={})
    assert board.active == {}
    assert [e.kind for e in events] == ["alert_raised", "alert_cleared"]
    assert events[0].alert == "lift_not_stowed" and events[0].details == {"speed_kmh": 12}
    assert isinstance(events[1], AlertCleared) and events[1].duration_s == 42


async def test_alerts_outlive_a_restart_confirmed_or_cleared_after_the_grace(
    tmp_path: Path,
) -> None:
    """Killed with two alerts active: the next run inherits both without raising them
    again; the one whose cause persists is confirmed, the other cleared with the reason."""
    import asyncio
    import json

    from busd.alerts_memory import AlertMemory
    from busd.supervisor import ComponentContext, ComponentHealth, Phase
    from tests.support.wait import wait_until

    path = tmp_path / "alerts.json"
    clock = ManualClock()

    async def start(board: AlertBoard, *, inherits: bool) -> asyncio.Task[None]:
        memory = AlertMemory(board=board, path=path, clock=clock, grace_s=300)
        health = ComponentHealth("m", False)
        task = asyncio.create_task(memory.run(ComponentContext(health, clock)))
        # Ready once the file is read; with alerts inherited, their grace is running.
        await wait_until(
            lambda: health.phase is Phase.RUNNING and clock.sleepers == int(inherits),
            timeout=5, what="the alert memory started")
        return task

    before: list[AlertRaised | AlertCleared] = []
    board = AlertBoard(clock=clock, forward=before.append)
    task = await start(board, inherits=False)
    board.raise_alert("lift_not_stowed", message="Lift not stowed", details={})
    board.raise_alert("storage_unwritable", message="disk full", details={})
    await wait_until(lambda: len(json.loads(path.read_text() if path.exists() else "{}")) == 2,
                     timeout=5, what="both alerts saved")
    task.cancel()  # kill -9: nothing more happens in this run
    await asyncio.gather(task, return_exceptions=True)

    await clock.advance(60)
    after: list[AlertRaised | AlertCleared] = []
    board = AlertBoard(clock=clock, forward=after.append)
    task = await start(board, inherits=True)
    try:
        assert set(board.active) == {"lift_not_stowed", "storage_unwritable"}
        assert after == []  # inherited, not raised again
        board.raise_alert("storage_unwritable", message="disk full", details={})  # confirmed
        await clock.advance(300)
        await wait_until(lambda: bool(after), timeout=5, what="the unconfirmed alert cleared")
        assert [(e.kind, e.alert) for e in after] == [("alert_cleared", "lift_not_stowed")]
        assert after[0].details["reason"] == "not raised again after a restart"
        assert isinstance(after[0], AlertCleared)
        assert after[0].duration_s == 360  # from the first run's raise
        assert list(board.active) == ["storage_unwritable"]
        await wait_until(lambda: set(json.loads(path.read_text())) == {"storage_unwritable"},
                         timeout=5, what="the cleared alert gone from the file")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_an_unreadable_alerts_file_is_no_alerts(tmp_path: Path) -> None:
    from busd.alerts_memory import AlertMemory

    path = tmp_path / "alerts.json"
    path.write_text("{half a fi")
    board = AlertBoard(clock=ManualClock())
    assert AlertMemory(board=board, path=path, clock=ManualClock())._load() == {}
