"""The monitoring store: crash safety of open legs/visits, atomic batches, the daily job."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from busd import signals as sig
from busd.clock import ManualClock
from busd.config import MonitoringConfig
from busd.monitoring.daily import DailySummaryJob
from busd.monitoring.tracker import Tracker, TrackerStore
from busd.plan import Plan, haversine_m
from busd.state import VehicleState
from busd.storage import Report
from busd.supervisor import ComponentContext, ComponentHealth, Phase
from telemetry.monitoring_store import MonitoringStore, Row, StoreError
from tests.monitoring_helpers import (
    DEPOT,
    ROZUPE,
    TURKI,
    CaptureSink,
    Place,
    epoch,
    make_plan,
)
from tests.support.wait import wait_until

RIGA = ZoneInfo("Europe/Riga")
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=RIGA).timestamp()
# One day's records by kind (MonitoringStore.day_records_sync).
Records = dict[str, list[Row]]


class Killable:
    """Wraps the real store; after :meth:`kill` nothing more reaches it (a dead process)."""

    def __init__(self, store: MonitoringStore) -> None:
        self.store = store
        self.dead = False

    def kill(self) -> None:
        self.dead = True

    async def open_records(self) -> dict[str, Row]:
        return await self.store.open_records()

    async def save_plan(self, plan: Plan) -> None:
        if not self.dead:
            await self.store.save_plan(plan)

    async def write(self, rows: list[tuple[str, Row]], samples: list[Row]) -> None:
        if not self.dead:
            await self.store.write(rows, samples)


class Bus:
    """Writes a scripted bus straight into the vehicle state, one step per simulated second."""

    def __init__(self, state: VehicleState, clock: ManualClock, place: Place = DEPOT) -> None:
        self.state, self.clock = state, clock
        self.lat, self.lon, self.odo = place[2], place[3], 5000.0

    current_silent = False  # the BMS current frame stops arriving (CAN fault)

    def _write(self, speed: float, current: float) -> None:
        up = self.state.update
        up(sig.VEHICLE_SPEED, speed, source="test")
        up(sig.VEHICLE_ODOMETER, self.odo, source="test")
        up(sig.GPS_FIX, "3d", source="test")
        up(sig.GPS_LAT, self.lat, source="test")
        up(sig.GPS_LON, self.lon, source="test")
        up(sig.BATTERY_VOLTAGE, 400.0, source="test")
        if not self.current_silent:
            up(sig.BATTERY_CURRENT, current, source="test")
        up(sig.BATTERY_SOC, 80.0, source="test")

    async def _tick(self) -> None:
        await self.clock.advance(1.0)
        for _ in range(3):
            await asyncio.sleep(0)

    async def park(self, seconds: int) -> None:
        for _ in range(seconds):
            self._write(0.0, 12.5)  # 5 kW
            await self._tick()

    async def drive(self, to: Place, kmh: float = 72.0) -> None:
        lat0, lon0 = self.lat, self.lon
        d = haversine_m(lat0, lon0, to[2], to[3])
        n = int(d / (kmh / 3.6))
        for i in range(1, n + 1):
            self.lat, self.lon = lat0 + i / n * (to[2] - lat0), lon0 + i / n * (to[3] - lon0)
            self.odo += d / n / 1000
            self._write(kmh, 75.0)  # 30 kW
            await self._tick()


async def start(tracker: Tracker, clock: ManualClock) -> asyncio.Task[None]:
    health = ComponentHealth(tracker.name, False)
    task = asyncio.create_task(tracker.run(ComponentContext(health, clock)))
    # Ready = plan saved, open records resumed, watching.
    await wait_until(lambda: health.phase is Phase.RUNNING, timeout=5, what="the tracker ready",
                     interval=0.001)
    return task


async def wait_rows(store: MonitoringStore, predicate: Callable[[Records], bool],
                    timeout: float = 5.0) -> Records:
    await wait_until(lambda: predicate(store.day_records_sync("2026-01-01")), timeout=timeout,
                     what="the day's records")
    return store.day_records_sync("2026-01-01")


def make_tracker(state: VehicleState, clock: ManualClock, store: TrackerStore,
                 sink: CaptureSink | None = None, on_storage: Report | None = None) -> Tracker:
    return Tracker(state=state, clock=clock, plan=make_plan(), store=store,
                   sink=sink or CaptureSink(), config=MonitoringConfig(min_visit_min=3.0),
                   on_storage=on_storage)


@pytest.mark.parametrize("still_there", [True, False])
async def test_killed_mid_visit_the_visit_is_closed_once_after_restart(
    tmp_path: Path, still_there: bool
) -> None:
    path = tmp_path / "monitoring.sqlite"
    clock = ManualClock(start=T0)
    store = MonitoringStore(path)
    dying = Killable(store)
    state = VehicleState(clock)
    bus = Bus(state, clock)
    task = await start(make_tracker(state, clock, dying), clock)
    await bus.park(120)
    await bus.drive(ROZUPE)
    await bus.park(600)  # ten minutes at Rožupe; checkpoints every minute
    before = await wait_rows(store, lambda r: any(
        v["place_id"] == "rozupe" and v["status"] == "open"
        and v["updated_ts"] >= clock.now() - 61 for v in r["visit"]))
    arrival = next(v for v in before["visit"] if v["place_id"] == "rozupe")["start_ts"]
    # kill -9: nothing more is written, the database is closed without finishing anything.
    dying.kill()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()

    await clock.advance(180.0)  # three minutes down
    store = MonitoringStore(path)
    state = VehicleState(clock)
    bus2 = Bus(state, clock, place=ROZUPE)
    bus2.odo = bus.odo
    sink = CaptureSink()
    task = await start(make_tracker(state, clock, store, sink), clock)
    if still_there:
        await bus2.park(300)
    else:
        bus2.lat, bus2.lon = TURKI[2], TURKI[3]  # it drove away while busd was down
        bus2.odo += 15.0
    await bus2.drive(TURKI if still_there else DEPOT)
    await bus2.park(300)
    rows = await wait_rows(store, lambda r: len([leg for leg in r["leg"]
                                                 if leg["status"] == "closed"]) >= 2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()

    rozupe = [v for v in rows["visit"] if v["place_id"] == "rozupe"]
    assert len(rozupe) == 1, rows["visit"]
    visit = rozupe[0]
    assert visit["start_ts"] == arrival
    if still_there:
        assert visit["status"] == "closed"
        assert visit["duration_min"] == pytest.approx(10 + 3 + 5, abs=0.2)
        assert 180 <= visit["gap_s"] <= 180 + 61  # down time plus at most one checkpoint
        assert sink.of("visit_ended")[0]["id"] == visit["id"]
    else:
        assert visit["status"] == "interrupted"
        assert visit["end_ts"] == pytest.approx(before_checkpoint(before), abs=0.01)
        assert visit["duration_min"] == pytest.approx(10, abs=1.1)
    legs = [leg for leg in rows["leg"] if leg["status"] == "closed"]
    assert [(leg["from_place"], leg["to_place"]) for leg in legs] == [
        ("livani", "rozupe"), ("rozupe", "turki" if still_there else "livani")]
    assert len({leg["id"] for leg in rows["leg"]}) == len(rows["leg"])


def before_checkpoint(rows: Records) -> float:
    updated: float = next(v for v in rows["visit"] if v["place_id"] == "rozupe")["updated_ts"]
    return updated


def test_a_batch_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "m.sqlite")
    good = {"id": "visit-1", "day": "2026-01-01", "status": "open", "start_ts": 1.0}
    with pytest.raises(KeyError):
        store.write_sync([("visit", good), ("nonsense", good)], [])
    assert store.day_records_sync("2026-01-01")["visit"] == []
    store.write_sync([("visit", good)], [])
    store.write_sync([("visit", {**good, "status": "closed", "end_ts": 2.0})], [])
    (row,) = store.day_records_sync("2026-01-01")["visit"]
    assert row["status"] == "closed"  # written twice = updated, not doubled
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    store.close()


def test_a_store_from_an_older_version_gets_the_columns_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE visits (id TEXT PRIMARY KEY, day TEXT NOT NULL, status TEXT, "
                "start_ts REAL, lift_cycles INTEGER)")
    con.execute("INSERT INTO visits VALUES ('visit-1', '2026-01-01', 'open', 1.0, 2)")
    con.commit()
    con.close()
    store = MonitoringStore(path)
    store.write_sync([("visit", {"id": "visit-2", "day": "2026-01-01", "status": "open",
                                 "start_ts": 2.0, "lift_cycles": 1, "lift_counter": 41})], [])
    rows = {r["id"]: r for r in store.day_records_sync("2026-01-01")["visit"]}
    assert rows["visit-1"]["lift_cycles"] == 2 and rows["visit-1"]["lift_counter"] is None
    assert rows["visit-2"]["lift_counter"] == 41
    store.close()


def test_a_new_store_has_the_layout_sqlite_utils_gave_earlier_ones(tmp_path: Path) -> None:
    # Stores written before sqlite-utils was dropped must read the same: the
    # compound keys, the NOT NULL day and the index names are theirs.
    store = MonitoringStore(tmp_path / "m.sqlite")
    sql = dict(store.db.execute("SELECT name, sql FROM sqlite_master"))
    store.close()
    assert sql["stop_notes"] == (
        'CREATE TABLE "stop_notes" (\n   "day" TEXT NOT NULL,\n   "stop_id" TEXT,\n'
        '   "status" TEXT,\n   "reason" TEXT,\n   "ts" REAL,\n   PRIMARY KEY ("day", "stop_id")\n)')
    assert sql["daily_summaries"].startswith(
        'CREATE TABLE "daily_summaries" (\n   "day" TEXT PRIMARY KEY NOT NULL,')
    assert sql["idx_visits_status"] == (
        'CREATE INDEX "idx_visits_status"\n    ON "visits" ("status")')


def test_notes_and_summaries_written_twice_are_updated(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "m.sqlite")
    store.note_stop("2026-01-01", "rozupe", "shortened", "SOC", 1.0)
    store.note_stop("2026-01-01", "rozupe", "skipped", "driver", 2.0)
    store.save_summary_sync("2026-01-01", {"km": 1.0}, 2, 3.0)
    store.save_summary_sync("2026-01-01", {"km": 2.0}, 3, 4.0)
    records = store.day_records_sync("2026-01-01")
    store.close()
    assert [(n["status"], n["reason"]) for n in records["notes"]] == [("skipped", "driver")]
    assert [(s["alerts"], s["json"]) for s in records["summaries"]] == [(3, '{"km": 2.0}')]


def test_an_unusable_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open monitoring store"):
        MonitoringStore(bad)
    assert sqlite3.sqlite_version


async def test_daily_summary_fires_at_the_configured_local_time_and_at_shutdown(
    tmp_path: Path,
) -> None:
    store = MonitoringStore(tmp_path / "m.sqlite")
    store.write_sync([("visit", {"id": "visit-1", "day": "2026-01-01", "status": "closed",
                                 "start_ts": T0, "end_ts": T0 + 600, "duration_min": 10.0,
                                 "place_id": "rozupe", "place_kind": "stop",
                                 "lift_cycles": 2})], [])
    clock = ManualClock(start=datetime(2026, 1, 1, 20, 0, tzinfo=RIGA).timestamp())
    sink = CaptureSink()
    job = DailySummaryJob(clock=clock, store=store, sink=sink, at=time(21, 0),
                          timezone="Europe/Riga", alert_count=lambda day: 4)
    assert job.next_fire(clock.now()) == datetime(2026, 1, 1, 21, 0, tzinfo=RIGA).timestamp()
    ctx = ComponentContext(ComponentHealth(job.name, False), clock)
    task = asyncio.create_task(job.run(ctx))
    await wait_until(lambda: clock.sleepers == 1, timeout=5, what="the job waiting for 21:00")
    await clock.advance(3599.0)
    assert sink.of("report.daily") == []
    await clock.advance(2.0)
    await wait_until(lambda: bool(sink.of("report.daily")), timeout=5, what="the summary")
    (report,) = sink.of("report.daily")
    assert report["day"] == "2026-01-01" and report["alerts"] == 4
    assert report["lift_cycles"] == 2 and report["on_site_min"] == 10.0
    summary = store.summary("2026-01-01")
    assert summary is not None and summary["alerts"] == 4
    # Next day: records exist, the process stops before 21:00 → summary at shutdown.
    store.write_sync([("visit", {"id": "visit-2", "day": "2026-01-02", "status": "open",
                                 "start_ts": T0 + 86400, "place_id": "turki",
                                 "place_kind": "stop"})], [])
    await clock.advance(12 * 3600.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [r["day"] for r in sink.of("report.daily")] == ["2026-01-01", "2026-01-02"]
    assert sink.of("report.daily")[1]["open_records"] == 1
    store.close()


async def test_a_stale_current_is_a_marked_gap_in_the_leg_not_invented_energy(
    tmp_path: Path,
) -> None:
    clock = ManualClock(start=T0)
    store = MonitoringStore(tmp_path / "m.sqlite")
    state = VehicleState(clock)
    bus = Bus(state, clock)
    sink = CaptureSink()
    task = await start(make_tracker(state, clock, store, sink), clock)
    try:
        await bus.park(60)
        half = ("half", "half", (DEPOT[2] + ROZUPE[2]) / 2, (DEPOT[3] + ROZUPE[3]) / 2)
        await bus.drive(half)
        bus.current_silent = True
        before = bus.clock.monotonic()
        await bus.drive(ROZUPE)
        silent_s = bus.clock.monotonic() - before
        bus.current_silent = False
        await bus.park(240)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()
    (leg,) = sink.of("leg_completed")
    energy_config = MonitoringConfig()
    # The last value is held for energy_gap_s, the rest of the silence is a gap.
    assert leg["gap_s"] == pytest.approx(silent_s - energy_config.energy_gap_s, abs=2)
    assert leg["gaps"] == 1
    driven_with_current_s = (epoch(leg["end"]) - epoch(leg["start"])) - leg["gap_s"]
    assert leg["out_kwh"] == pytest.approx(30.0 * driven_with_current_s / 3600, rel=0.01)


def test_an_older_charges_table_gets_both_energies_and_their_summary(tmp_path: Path) -> None:
    from busd.monitoring.summary import daily_summary

    path = tmp_path / "m.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE charges (id TEXT PRIMARY KEY, day TEXT NOT NULL, status TEXT, "
                "start_ts REAL, session_kwh REAL, energy_added_kwh REAL)")
    con.execute("INSERT INTO charges VALUES ('charge-1', '2026-01-01', 'closed', 1.0, 9, 8)")
    con.commit()
    con.close()
    store = MonitoringStore(path)
    store.write_sync([("charge", {"id": "charge-2", "day": "2026-01-01", "status": "closed",
                                  "start_ts": 2.0, "charger_kwh": 32.5, "battery_kwh": 30.0,
                                  "charge_diff_kwh": 2.5, "counter_rejects": 3})], [])
    records = store.day_records_sync("2026-01-01")
    store.close()
    rows = {r["id"]: r for r in records["charge"]}
    assert rows["charge-1"]["charger_kwh"] is None and rows["charge-2"]["counter_rejects"] == 3
    summary = daily_summary("2026-01-01", records)
    assert (summary["charging_charger_kwh"], summary["charging_battery_kwh"],
            summary["charging_diff_kwh"], summary["charger_counter_rejects"]) == (
        32.5, 30.0, 2.5, 3)


async def test_the_first_soc_sample_is_logged_as_soon_as_the_soc_is_known(tmp_path: Path) -> None:
    # A tracker whose first ticks come before the first CAN SOC used to wait a whole
    # soc_sample_s (60 s) for its first sample: a daemon run shorter than that logged none.
    clock = ManualClock(start=T0)
    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    state = VehicleState(clock)
    task = await start(make_tracker(state, clock, store), clock)
    try:
        for _ in range(3):  # ticks with no SOC yet: nothing to log
            await clock.advance(1.0)
            await asyncio.sleep(0)
        await Bus(state, clock).park(3)  # the SOC arrives
        rows = await wait_rows(store, lambda r: len(r["samples"]) > 0)
        assert rows["samples"][0]["soc"] == 80.0
        assert rows["samples"][0]["ts"] >= T0 + 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()
