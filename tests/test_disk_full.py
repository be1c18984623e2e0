"""A full disk: busd raises an alert, keeps running, and loses no event."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from busd.alerts import AlertBoard
from busd.clock import SystemClock
from busd.config import OutboxConfig
from busd.event_catalog import Item, LiftCycle, PlanDocument
from busd.events import EventForwarder
from busd.supervisor import Phase, Supervisor
from telemetry.outbox import Outbox
from tests.support.wait import wait_until


async def pragma(outbox: Outbox, sql: str) -> list[Any]:
    """A PRAGMA in the outbox's own thread, its rows read: a cursor left open keeps a
    statement in progress, and the outbox's next COMMIT fails on that, not on the disk."""
    def query() -> list[Any]:
        db = outbox._db
        assert db is not None  # the outbox is open
        return db.execute(sql).fetchall()

    return await outbox._call(query)


async def test_disk_full_raises_an_alert_and_nothing_is_lost(tmp_path: Path) -> None:
    clock = SystemClock()
    outbox = Outbox(path=tmp_path / "outbox.sqlite", clock=clock,
                    config=OutboxConfig(commit_interval_s=0.05))

    def on_storage(reason: str | None) -> None:
        if reason is None:
            alerts.clear_alert("storage_unwritable", details={})
        else:
            alerts.raise_alert("storage_unwritable", message=reason, details={})

    events = EventForwarder(sink=outbox, clock=clock, on_storage=on_storage)
    alerts = AlertBoard(clock=clock, forward=events.forward)
    sup = Supervisor([outbox, events], clock=clock)
    runner = asyncio.create_task(sup.run())
    try:
        await wait_until(lambda: sup.health["outbox"].phase is Phase.RUNNING, timeout=10)
        events.emit(_cycle(0))
        await wait_until(lambda: events.forwarded == 1, timeout=10)

        # The disk fills up: SQLite may not grow the file by one more page.
        def fill_disk() -> None:
            db = outbox._db
            assert db is not None  # the outbox is open
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")

        await outbox._call(fill_disk)
        for n in range(1, 200):
            events.emit(_cycle(n, padding="x" * 500))
            outbox.add_telemetry({"values": {"battery.soc": 50.0 + n / 100}}, full=False)
        await wait_until(lambda: "storage_unwritable" in alerts.active, timeout=10)
        assert "full" in alerts.active["storage_unwritable"].message
        await wait_until(lambda: sup.health["outbox"].phase is Phase.DEGRADED, timeout=10)
        assert sup.health["events"].phase is Phase.DEGRADED  # waiting, not failed
        assert sup.health["events"].restarts == 0 and sup.health["outbox"].restarts == 0

        # Space again (the crew deleted something): everything goes through, in order.
        await pragma(outbox, "PRAGMA max_page_count = 1073741823")
        # 199 events, plus the alert's own raised and cleared events
        await wait_until(lambda: not alerts.active and events.pending == 0
                         and events.forwarded == 1 + 199 + 2, timeout=60)
        await wait_until(lambda: sup.health["outbox"].phase is Phase.RUNNING, timeout=10)
        rows = await outbox.peek(after_seq=0, limit=10_000)
        kinds = [r.kind for r in rows if r.stream == "event"]
        assert kinds[0] == "lift_cycle" and kinds.count("lift_cycle") == 1 + 199
        assert kinds.count("alert_raised") == 1 and kinds.count("alert_cleared") == 1
        cycles = [r for r in rows if r.kind == "lift_cycle"]
        import json
        assert [json.loads(r.body)["day_cycles"] for r in cycles] == list(range(200))  # in order
        seqs = [r.seq for r in rows]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # contiguous, no loss
        assert sum(1 for r in rows if r.stream == "telemetry") == 199
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 10)


async def test_deletes_and_bounds_on_a_full_disk_wait_without_failing_the_outbox(
    tmp_path: Path,
) -> None:
    """Acknowledged records cannot be deleted on a full disk either (WAL needs room for
    the delete): the outbox stays up, degraded, reports it, and deletes them later."""
    clock = SystemClock()
    reports: list[str | None] = []
    outbox = Outbox(path=tmp_path / "outbox.sqlite", clock=clock,
                    config=OutboxConfig(commit_interval_s=0.02, delete_interval_s=0.02,
                                        retention_check_s=0.02), on_storage=reports.append)
    sup = Supervisor([outbox], clock=clock)
    runner = asyncio.create_task(sup.run())
    try:
        await wait_until(lambda: sup.health["outbox"].phase is Phase.RUNNING, timeout=10)
        seqs = [await outbox.append("event", "before", {"n": n, "pad": "x" * 2000})
                for n in range(50)]
        await pragma(outbox, "PRAGMA wal_checkpoint(TRUNCATE)")
        [(pages,)] = await pragma(outbox, "PRAGMA page_count")
        await pragma(outbox, f"PRAGMA max_page_count = {pages}")
        await outbox.ack(seqs)
        for n in range(100):  # and telemetry that cannot be committed
            outbox.add_telemetry({"values": {"battery.soc": 50.0 + n / 100}}, full=False)
        await wait_until(lambda: bool(reports) and sup.health["outbox"].phase is Phase.DEGRADED,
                         timeout=10)
        assert reports[0] is not None and "full" in reports[0]
        # Purge and bound checks meet the full disk again and again (each refusal is
        # counted; under the storage policy's back-off the second one comes after seconds)...
        failed_before = outbox.counters["storage_errors"]
        await wait_until(lambda: outbox.counters["storage_errors"] >= failed_before + 2,
                         timeout=20, what="two more writes refused by the full disk")
        # ...and none of them failed the outbox.
        assert sup.health["outbox"].restarts == 0 and sup.health["outbox"].last_error == ""

        await pragma(outbox, "PRAGMA max_page_count = 1073741823")
        await wait_until(lambda: reports[-1] is None
                         and sup.health["outbox"].phase is Phase.RUNNING, timeout=10)
        rows = await outbox.peek(after_seq=0, limit=1000)
        assert [r.stream for r in rows] == ["telemetry"] * 100  # the events went, acked
        assert reports.count(None) == 1
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 10)


async def test_a_plan_published_on_a_full_disk_still_goes_out(tmp_path: Path) -> None:
    """The retained plan is kept in the outbox for a restart; a full disk must not stop
    the planner from publishing it now."""
    from busd.clock import ManualClock
    from busd.state import VehicleState
    from telemetry.wiring import build_uplink
    from tests.support.uplink_env import bus_config

    clock = ManualClock()
    parts = build_uplink(bus_config(tmp_path, 1883), state=VehicleState(clock), clock=clock)
    await parts.outbox.open()
    try:
        await parts.outbox.set_meta("filler", "x" * 100_000)  # a page or more to fill
        [(pages,)] = await pragma(parts.outbox, "PRAGMA page_count")
        await pragma(parts.outbox, f"PRAGMA max_page_count = {pages}")
        big = PlanDocument(plan=None, itinerary=[Item(kind="stop", id="x" * 50_000, minutes=1)],
                           done=[], at=None, projection=None, pending=None)
        await parts.uplink.publish_plan(big)
        assert parts.uplink._plan == big and parts.uplink._plan_changed.is_set()
    finally:
        await parts.outbox.close()


def _cycle(n: int, padding: str | None = None) -> LiftCycle:
    """The n-th event of a test (any catalogue event would do)."""
    return LiftCycle(cycles=1, day_cycles=n, counter=None, place_id=None, place_name=padding)
