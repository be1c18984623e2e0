"""A disk that refuses writes: every writer reports it, keeps its data, and catches up.

The monitoring store is made unwritable the way a file system remounted
read-only does it to SQLite (``PRAGMA query_only``: "attempt to write a readonly
database"); the outbox's full disk is in tests/test_disk_full.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from busd.clock import ManualClock
from busd.monitoring.daily import SAVE_RETRY_S, DailySummaryJob
from busd.monitoring.retention import RETRY_S, RetentionJob
from busd.monitoring.tracker import Tracker
from busd.state import VehicleState
from busd.storage import StorageStatus
from busd.supervisor import ComponentContext, ComponentHealth, Phase, Supervisor
from telemetry.monitoring_store import MonitoringStore
from tests.monitoring_helpers import ROZUPE, CaptureSink
from tests.support.wait import wait_until
from tests.test_monitoring_store import T0, Bus, make_tracker, wait_rows

RIGA = ZoneInfo("Europe/Riga")


def read_only(store: MonitoringStore, on: bool) -> None:
    with store._lock:
        store.db.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")


def test_one_alert_from_the_first_failing_writer_to_the_last_recovered() -> None:
    changes: list[str | None] = []
    status = StorageStatus(on_change=changes.append)
    outbox, monitoring = status.reporter("outbox"), status.reporter("monitoring")
    outbox("database or disk is full")
    monitoring("attempt to write a readonly database")
    outbox("database or disk is full")  # the same failure again: no news
    assert changes == ["cannot write outbox: database or disk is full"]
    outbox(None)
    assert changes[1:] == [] and set(status.failing) == {"monitoring"}
    monitoring(None)
    monitoring(None)  # writing again, again: no news
    assert changes[1:] == [None] and status.failing == {}


async def test_the_tracker_keeps_tracking_on_a_read_only_store_and_catches_up(
    tmp_path: Path,
) -> None:
    clock = ManualClock(start=T0)
    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    sink = CaptureSink()
    reports: list[str | None] = []

    state = VehicleState(clock)
    tracker = make_tracker(state, clock, store, sink, on_storage=reports.append)
    bus = Bus(state, clock)
    read_only(store, True)
    health = ComponentHealth(tracker.name, False)
    task = asyncio.create_task(tracker.run(ComponentContext(health, clock)))
    try:
        await bus.park(60)
        await wait_until(lambda: bool(reports), timeout=5)
        assert reports[0] is not None and "readonly" in reports[0]
        assert health.phase is Phase.DEGRADED and not task.done()
        await bus.drive(ROZUPE)
        await bus.park(300)
        # Events still flow to the office while nothing can be stored.
        assert "visit_started" in sink.kinds()
        assert store.day_records_sync("2026-01-01")["visit"] == []
        assert store.day_records_sync("2026-01-01")["plan_stops"] == []

        read_only(store, False)
        await bus.park(120)  # the writer retries within its back-off (at most 60 s)
        rows = await wait_rows(store, lambda r: any(v["place_id"] == "rozupe" for v in r["visit"]))
        assert [leg["to_place"] for leg in rows["leg"] if leg["status"] == "closed"] == ["rozupe"]
        assert rows["plan_stops"] and rows["samples"]
        await wait_until(lambda: reports[-1] is None and health.phase is Phase.RUNNING,
                         timeout=5)
        assert reports.count(None) == 1 and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def test_the_daily_report_goes_out_and_is_stored_when_the_disk_allows(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "m.sqlite")
    store.write_sync(
        [
            (
                "visit",
                {
                    "id": "visit-1",
                    "day": "2026-01-01",
                    "status": "closed",
                    "start_ts": T0,
                    "end_ts": T0 + 600,
                    "duration_min": 10.0,
                    "place_id": "rozupe",
                    "place_kind": "stop",
                },
            )
        ],
        [],
    )
    read_only(store, True)
    clock = ManualClock(start=datetime(2026, 1, 1, 20, 59, tzinfo=RIGA).timestamp())
    sink = CaptureSink()
    reports: list[str | None] = []
    job = DailySummaryJob(
        clock=clock,
        store=store,
        sink=sink,
        at=time(21, 0),
        timezone="Europe/Riga",
        on_storage=reports.append,
    )
    task = asyncio.create_task(job.run(ComponentContext(ComponentHealth(job.name, False), clock)))
    try:
        await wait_until(lambda: clock.sleepers == 1, timeout=5, what="the job waiting for 21:00")
        await clock.advance(61.0)
        await wait_until(lambda: bool(sink.of("report.daily") and reports), timeout=5)
        assert sink.of("report.daily")[0]["on_site_min"] == 10.0
        assert store.summary("2026-01-01") is None and "2026-01-01" in job.unsaved

        read_only(store, False)
        await clock.advance(SAVE_RETRY_S + 1)
        await wait_until(lambda: not job.unsaved, timeout=5)
        summary = store.summary("2026-01-01")
        assert summary is not None and summary["on_site_min"] == 10.0
        assert job.unsaved == {} and reports[-1] is None
        assert len(sink.of("report.daily")) == 1  # published once, not again on the retry
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def test_retention_on_a_read_only_store_is_reported_and_retried(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "m.sqlite")
    store.set_clients_served(visit_id="v-old", day="2025-01-01", count=3, ts=0.0)
    read_only(store, True)
    clock = ManualClock(start=T0)
    reports: list[str | None] = []
    job = RetentionJob(
        clock=clock,
        purge_before=store.purge_before,
        days=30,
        timezone="Europe/Riga",
        on_storage=reports.append,
    )
    sup = Supervisor([job], clock=clock)
    runner = asyncio.create_task(sup.run())
    try:
        await wait_until(lambda: bool(reports), timeout=5)
        assert reports[0] is not None and "readonly" in reports[0]
        read_only(store, False)
        await clock.advance(RETRY_S + 1)
        await wait_until(lambda: sup.health[job.name].counters.get("deleted") == 1, timeout=5)
        assert reports[-1] is None and sup.health[job.name].restarts == 0
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 5)
        store.close()


async def test_the_daemon_wires_every_writer_to_one_alert_shown_on_the_live_state(
    tmp_path: Path,
) -> None:
    """build_daemon: a failing writer raises storage_unwritable on the alert board (through
    the storage alert, an alert rule of its own), and the retained state message carries it
    while the events cannot be stored."""
    import json

    from busd.app import build_daemon, prepare
    from busd.storage import StorageAlert
    from tests.support.uplink_env import bus_config

    clock = ManualClock(start=T0)
    daemon = build_daemon(prepare(bus_config(tmp_path, 1883)), clock)
    names = [c.name for c in daemon.components]
    # The alert rule runs after the previous run's alerts are inherited.
    assert names.index("alerts.memory") < names.index("alerts.storage")
    rule = next(c for c in daemon.components if isinstance(c, StorageAlert))
    status = rule._status
    tracker = next(c for c in daemon.components if isinstance(c, Tracker))
    assert tracker.name == "monitoring.tracker"
    tracker._storage.refused("cannot write the monitoring store: readonly")
    assert set(status.failing) == {"monitoring"}
    rule.sync()
    assert "storage_unwritable" in daemon.alerts.active
    state = json.loads(daemon.uplink.uplink.state_payload())
    assert "readonly" in state["alerts"]["storage_unwritable"]
    daemon.uplink.outbox._storage.refused("cannot write the outbox: full")
    tracker._storage.wrote()
    rule.sync()
    assert "storage_unwritable" in daemon.alerts.active  # the outbox still cannot write
    daemon.uplink.outbox._storage.wrote()
    rule.sync()
    assert "storage_unwritable" not in daemon.alerts.active
    # Every writer of the daemon reports under its name.
    for writer in (daemon.events, *daemon.components):
        policy = getattr(writer, "_storage", None)
        if policy is not None:
            policy.refused("full")
    expected = {"outbox", "events", "alerts", "stop notes", "plan projections", "monitoring",
                "daily summary", "monitoring retention", "services"} | (
                    {"planner"} if "planner" in names else set())
    assert set(status.failing) == expected
    daemon.store.close()
