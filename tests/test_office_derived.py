"""The archive's derived tables, against SQLite and a private PostgreSQL, from catalogue events
archived as a bus sends them (tests/support/bus_events.py)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from busd.clock import ManualClock
from busd.event_catalog import LiftCycle
from office.archive import ArchivedRecord, ArchiveError, InsertResult, migrations, open_archive
from office.archive.base import Archive
from tests.support.bus_events import (
    REASON,
    SHORTEN,
    accepted,
    alert_cleared,
    alert_raised,
    archived,
    charging,
    daily,
    leg,
    plan_answer,
    proposed,
    visit_ended,
    visit_started,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
# 9 March 2026, Riga (UTC+2): the bus leaves the depot at 09:00 local.
T0 = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
DAY = date(2026, 3, 9)


def _z(month: int, day: int, hour: int, minute: int = 0, second: float = 0.0) -> datetime:
    """A UTC instant of 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) + timedelta(seconds=second)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
async def archive(archive_url: str) -> AsyncIterator[Archive]:
    async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as opened:
        yield opened


def a_day(bus: str = "lv-01", first_seq: int = 1) -> list[ArchivedRecord]:
    """A short day: a leg, a visit (started, ended), a charge, an alert, a proposal accepted,
    an office plan refused, a lift cycle and the daily report; in the bus's seq order."""
    events = [
        (leg("leg-1", at(0), at(30)), at(30)),
        (visit_started("visit-1", at(31)), at(33)),
        (LiftCycle(cycles=1, day_cycles=1, counter=None, place_id="rozupe",
                   place_name="Rožupe"), at(40)),
        (alert_raised("lift_fault", at(41)), at(41)),
        (alert_cleared("lift_fault", at(41), 120.0), at(43)),
        (proposed("p-1", at(50)), at(50)),
        (accepted("p-1"), at(52)),
        (plan_answer(False, 2), at(55)),
        (visit_ended("visit-1", at(31), at(120)), at(121)),
        (charging("charge-1", at(150), None, 0.0), at(151)),
        (charging("charge-1", at(150), at(190), 14.5), at(191)),
        (daily(DAY, at(600), counter_rejects=2), at(600)),
    ]
    return [archived(e, first_seq + i, ts, bus) for i, (e, ts) in enumerate(events)]


async def everything(archive: Archive, bus: str | None = None) -> dict[str, Any]:
    """Every derived row of 9 March (and its month's reports), for comparisons."""
    return {"visits": await archive.visits(bus, DAY), "legs": await archive.legs(bus, DAY),
            "charging": await archive.charging(bus, DAY), "alerts": await archive.alerts(bus, DAY),
            "plan": await archive.plan_changes(bus, DAY),
            "reports": await archive.daily_reports(bus, DAY)}


async def test_a_day_of_events_gives_typed_rows(archive: Archive) -> None:
    assert await archive.insert_batch(a_day()) == InsertResult(12, 0)
    (visit,) = await archive.visits("lv-01", DAY)
    assert (visit.id, visit.status, visit.place_id, visit.day) == ("visit-1", "closed", "rozupe",
                                                                    DAY)
    assert (visit.start_ts, visit.end_ts) == (at(31), at(120))
    assert visit.duration_min == pytest.approx(89.0)
    assert (visit.lift_cycles, visit.soc_min, visit.temp_c) == (2, 77.5, -12.0)
    (the_leg,) = await archive.legs("lv-01", DAY)
    assert (the_leg.km, the_leg.net_kwh, the_leg.regen_kwh, the_leg.temp_c) == (
        12.5, 3.0, 0.4, -12.0)
    assert the_leg.kwh_per_km == pytest.approx(0.24)
    (charge,) = await archive.charging("lv-01", DAY)
    assert (charge.status, charge.energy_added_kwh, charge.peak_kw) == ("closed", 14.5, 22.0)
    (alert,) = await archive.alerts("lv-01", DAY)
    assert (alert.alert, alert.message, alert.raised_at, alert.duration_s) == (
        "lift_fault", "lift_fault now", at(41), 120.0)
    assert alert.cleared_at == at(43)
    assert alert.details == {"code": 7}
    causes = [(p.cause, p.proposal_id, p.accepted) for p in await archive.plan_changes(
        "lv-01", DAY)]
    assert causes == [("proposed", "p-1", None), ("accepted", "p-1", None),
                      ("command", None, False)]
    proposal = (await archive.plan_changes("lv-01", DAY))[0]
    assert proposal.changes == [SHORTEN] and proposal.reasons == [REASON]
    assert (proposal.depot_soc_before, proposal.depot_soc_after) == (11.0, 21.0)
    (report,) = await archive.daily_reports("lv-01", DAY)
    assert (report.day, report.km, report.clients_served, report.stops[0].reason) == (
        DAY, 80.0, 14, "Depot SOC below the reserve")
    assert report.charger_counter_rejects == 2


def test_the_office_keeps_every_figure_of_the_bus_daily_report() -> None:
    # The stored row repeats the report's fields; one the office forgot (the charger's
    # rejected counter readings) was lost to the monthly figures without a word.
    from busd.event_catalog import DailyReport
    from office.archive import DayReport

    assert set(DailyReport.model_fields) - {"kind"} <= set(DayReport.model_fields)


async def test_a_record_arriving_twice_gives_one_row(archive: Archive) -> None:
    day = a_day()
    assert await archive.insert_batch(day[:6] + day[:3]) == InsertResult(6, 3)
    first = await everything(archive)
    assert await archive.insert_batch(day) == InsertResult(6, 6)
    assert await archive.insert_batch(day) == InsertResult(0, 12)
    again = await everything(archive)
    assert again == await everything(archive)
    assert [len(again[k]) for k in again] == [1, 1, 1, 1, 3, 1]
    assert first["visits"][0].status == "open"
    assert again["visits"][0].status == "closed"


async def test_events_out_of_order_still_give_the_latest_state(archive: Archive) -> None:
    """A worker restart: the visit's end (and the alert's clear, and the charge's end) arrive
    before their starts. The later record (by the bus's seq) wins."""
    day = a_day()
    in_order = await _derived_of(archive, day)
    await _wipe(archive)
    for record in reversed(day):
        await archive.insert_batch([record])
    assert await everything(archive) == in_order
    (visit,) = await archive.visits("lv-01", DAY)
    assert (visit.status, visit.seq) == ("closed", 9)
    (alert,) = await archive.alerts("lv-01", DAY)
    assert (alert.message, alert.duration_s, alert.raised_seq, alert.cleared_seq) == (
        "lift_fault now", 120.0, 4, 5)


async def test_an_alert_cleared_before_its_raise_arrives_is_known_by_its_clear(
        archive: Archive) -> None:
    raised = at(41)
    await archive.insert_batch([archived(alert_cleared("lift_fault", raised, 60.0), 5, at(42))])
    (alert,) = await archive.alerts("lv-01", DAY)
    assert (alert.message, alert.cleared_at, alert.raised_seq) == (None, at(42), None)


async def test_a_batch_that_fails_derives_nothing_and_archives_nothing(
        archive: Archive, archive_url: str) -> None:
    """The derived rows are written in the records' transaction: when the database refuses a
    derived row, the records are not archived either, and the redelivered batch fills both."""
    await _sql(archive_url, _REFUSE_VISITS)
    day = a_day()
    with pytest.raises(ArchiveError, match="refused"):
        await archive.insert_batch(day)
    assert await archive.count() == 0
    assert await archive.legs("lv-01", DAY) == []
    await _sql(archive_url, _ALLOW_VISITS)
    assert await archive.insert_batch(day) == InsertResult(12, 0)
    assert len((await everything(archive))["visits"]) == 1


async def test_two_writers_updating_the_same_rows_do_not_deadlock(archive_url: str) -> None:
    """Two workers, one with the visits' starts and one with their ends,
    writing at the same moment: the derived rows are written in key order, so neither waits
    for the other in a cycle, and every visit ends closed."""
    n = 3000
    starts = [archived(visit_started(f"v-{i:05d}", at(i % 600)), i + 1, at(i % 600))
              for i in range(n)]
    # The ends in the opposite order of the starts (by seq): the archive returns each batch's
    # records in seq order, so only sorting the derived rows by key keeps the lock order.
    ends = [archived(visit_ended(f"v-{n - 1 - i:05d}", at(i % 600), at(i % 600 + 1)),
                     n + i + 1, at(i % 600 + 1)) for i in range(n)]
    start = threading.Barrier(2, timeout=30)

    def writer(records: list[ArchivedRecord]) -> InsertResult:
        async def write() -> InsertResult:
            async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as mine:
                start.wait()
                return await mine.insert_batch(records)

        return asyncio.run(write())

    outcomes = await asyncio.gather(asyncio.to_thread(writer, starts),
                                    asyncio.to_thread(writer, ends), return_exceptions=True)
    assert list(outcomes) == [InsertResult(n, 0), InsertResult(n, 0)], outcomes
    async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as archive:
        visits = await archive.visits("lv-01", DAY)
    assert len(visits) == n and {v.status for v in visits} == {"closed"}


async def test_a_record_that_does_not_fit_the_catalogue_is_archived_and_counted(
        archive: Archive) -> None:
    good = archived(visit_started("visit-1", at(31)), 1, at(31))
    odd = good.model_copy(update={"seq": 2, "data": {**good.data, "kind": "visit_started",
                                                      "soc_start": "lots"}})
    foreign = good.model_copy(update={"seq": 3, "kind": "teleport", "data": {"to": "mars"}})
    wrong_kind = good.model_copy(update={"seq": 4, "kind": "visit_ended"})
    result = await archive.insert_batch([good, odd, foreign, wrong_kind])
    assert result == InsertResult(inserted=4, duplicates=0, unfit=3)
    assert await archive.count() == 4
    (visit,) = await archive.visits("lv-01", DAY)
    assert visit.seq == 1
    # A duplicate is neither derived nor counted again.
    assert await archive.insert_batch([odd]) == InsertResult(0, 1, 0)


async def test_rebuild_equals_incremental(archive: Archive) -> None:
    records = a_day("lv-01") + a_day("lv-02", first_seq=100)
    shuffled = records + records[:5]
    random.Random(7).shuffle(shuffled)
    for i in range(0, len(shuffled), 4):
        await archive.insert_batch(shuffled[i:i + 4])
    incremental = await everything(archive)
    assert await archive.rebuild_derived() == _rebuilt(24)
    assert await everything(archive) == incremental
    # One bus alone: the other's rows are left as they are.
    assert await archive.rebuild_derived("lv-02") == _rebuilt(12)
    assert await everything(archive) == incremental
    assert len(incremental["visits"]) == 2


async def test_a_migration_adding_derived_tables_fills_them_from_the_records(
        archive_url: str) -> None:
    """An archive from before the derived tables: when they are added, they are filled."""
    clock = ManualClock(NOW.timestamp())
    async with open_archive(archive_url, clock=clock) as archive:
        await archive.insert_batch(a_day())
        expected = await everything(archive)
    await _sql(archive_url, "DROP TABLE visits; DROP TABLE legs; DROP TABLE charging; "
               "DELETE FROM schema_migrations WHERE version = 2")
    async with open_archive(archive_url, clock=clock) as archive:
        assert await archive.applied_migrations() == [m.version for m in migrations.load("sqlite")]
        assert await everything(archive) == expected
        assert len(expected["legs"]) == 1


@pytest.mark.parametrize("tz", ["Europe/Riga", "Europe/Vilnius"])
@pytest.mark.parametrize(("last_of_day", "first_of_next"), [
    # Winter, UTC+2: local midnight is 22:00Z.
    (_z(1, 14, 21, 59, 59.999), _z(1, 14, 22)),
    # Summer, UTC+3: 21:00Z.
    (_z(7, 14, 20, 59, 59.999), _z(7, 14, 21)),
    # 29 March 2026, the clocks go forward (03:00 → 04:00): a 23-hour day, ending at 21:00Z.
    (_z(3, 29, 20, 59, 59.999), _z(3, 29, 21)),
    # 25 October 2026, back (04:00 → 03:00): a 25-hour day, ending at 22:00Z.
    (_z(10, 25, 21, 59, 59.999), _z(10, 25, 22)),
])
async def test_days_split_at_local_midnight(archive_url: str, tz: str, last_of_day: datetime,
                                            first_of_next: datetime) -> None:
    day = last_of_day.date()
    after = day + timedelta(days=1)
    async with open_archive(archive_url, tz=tz, clock=ManualClock(NOW.timestamp())) as archive:
        await archive.insert_batch([
            archived(visit_started("v-late", last_of_day), 1, last_of_day),
            archived(leg("l-late", last_of_day, last_of_day), 2, last_of_day),
            archived(proposed("p-late", last_of_day), 3, last_of_day),
            archived(alert_raised("a", last_of_day), 4, last_of_day),
            archived(alert_cleared("a", last_of_day, 0.0), 5, last_of_day),
            archived(visit_started("v-early", first_of_next), 6, first_of_next),
            archived(leg("l-early", first_of_next, first_of_next), 7, first_of_next),
            archived(proposed("p-early", first_of_next), 8, first_of_next),
            archived(alert_raised("b", first_of_next), 9, first_of_next),
            archived(alert_cleared("b", first_of_next, 0.0), 10, first_of_next),
        ])
        assert [v.id for v in await archive.visits("lv-01", day)] == ["v-late"]
        assert [v.id for v in await archive.visits("lv-01", after)] == ["v-early"]
        assert [v.day for v in await archive.visits(None, day, last=after)] == [day, after]
        assert [g.id for g in await archive.legs("lv-01", after)] == ["l-early"]
        assert [p.proposal_id for p in await archive.plan_changes("lv-01", day)] == ["p-late"]
        assert [a.alert for a in await archive.alerts("lv-01", day)] == ["a"]
        assert [a.alert for a in await archive.alerts("lv-01", after)] == ["b"]


async def test_an_alert_is_listed_on_every_day_it_was_active(archive: Archive) -> None:
    raised = datetime(2026, 3, 9, 21, 30, tzinfo=UTC)  # 23:30 local
    await archive.insert_batch([
        archived(alert_raised("charger_fault", raised), 1, raised),
        archived(alert_raised("gps_lost", raised), 2, raised),
        archived(alert_cleared("charger_fault", raised, 3600.0), 3, raised + timedelta(hours=1)),
    ])
    assert [a.alert for a in await archive.alerts("lv-01", DAY)] == ["charger_fault", "gps_lost"]
    assert [a.alert for a in await archive.alerts("lv-01", DAY + timedelta(days=1))] == [
        "charger_fault", "gps_lost"]
    # Still active (never cleared) two days on; the cleared one is not.
    assert [a.alert for a in await archive.alerts("lv-01", DAY + timedelta(days=2))] == [
        "gps_lost"]


async def test_monthly_reports_per_bus_and_per_municipality(archive: Archive) -> None:
    records = []
    for n, bus in enumerate(("lv-01", "lv-02", "lt-01")):
        for seq, d in enumerate((date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 31),
                                 date(2026, 4, 1)), start=1):
            created = datetime.combine(d, datetime.min.time(), tzinfo=UTC) + timedelta(hours=16)
            records.append(archived(daily(d, created, km=50.0 + n), seq, created, bus))
    # lv-01 sends 31 March's report again, corrected (a later record): it replaces the first.
    fixed = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
    records.append(archived(daily(date(2026, 3, 31), fixed, km=99.0), 40, fixed, "lv-01"))
    await archive.insert_batch(records)
    march = await archive.daily_reports(["lv-01", "lv-02"], date(2026, 3, 15))
    assert [(r.bus, r.day.isoformat(), r.km) for r in march] == [
        ("lv-01", "2026-03-01", 50.0), ("lv-01", "2026-03-31", 99.0),
        ("lv-02", "2026-03-01", 51.0), ("lv-02", "2026-03-31", 51.0)]
    assert len(await archive.daily_reports(None, date(2026, 3, 1))) == 6
    assert [r.day for r in await archive.daily_reports("lt-01", date(2026, 2, 1))] == [
        date(2026, 2, 28)]


async def test_retention_drops_derived_rows_with_their_month(archive: Archive) -> None:
    january = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)
    await archive.insert_batch([
        archived(visit_started("v-jan", january), 1, january),
        archived(daily(january.date(), january), 2, january),
        archived(alert_raised("a", january), 3, january), *a_day(first_seq=10)])
    assert await archive.retention(datetime(2026, 3, 1, tzinfo=UTC)) == [date(2026, 1, 1)]
    assert await archive.visits(None, january.date()) == []
    assert await archive.daily_reports(None, january.date()) == []
    assert await archive.alerts(None, january.date()) == []
    kept = await everything(archive)
    assert [len(kept[k]) for k in kept] == [1, 1, 1, 1, 3, 1]


# --- helpers ---------------------------------------------------------------------------


def _rebuilt(records: int) -> Any:
    from office.archive.derived import RebuildResult

    return RebuildResult(records=records, unfit=0)


async def _derived_of(archive: Archive, records: list[ArchivedRecord]) -> dict[str, Any]:
    await archive.insert_batch(records)
    return await everything(archive)


async def _wipe(archive: Archive) -> None:
    """An empty archive again (records and derived rows), through retention."""
    await archive.retention(datetime(2100, 1, 1, tzinfo=UTC))
    assert await archive.count() == 0
    assert not any((await everything(archive)).values())


_REFUSE_VISITS = {
    "sqlite": "CREATE TRIGGER refuse BEFORE INSERT ON visits BEGIN "
              "SELECT RAISE(ABORT, 'refused'); END",
    "postgresql": "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN RAISE EXCEPTION 'refused'; END $$; "
                  "CREATE TRIGGER refuse BEFORE INSERT ON visits FOR EACH ROW "
                  "EXECUTE FUNCTION refuse()",
}
_ALLOW_VISITS = {"sqlite": "DROP TRIGGER refuse", "postgresql": "DROP TRIGGER refuse ON visits"}


async def _sql(url: str, statements: str | dict[str, str]) -> None:
    """Run SQL on the archive's database behind its back (another process would)."""
    import sqlite3

    from office.archive.base import sqlite_path

    backend = "sqlite" if url.startswith("sqlite:") else "postgresql"
    script = statements if isinstance(statements, str) else statements[backend]
    if backend == "sqlite":
        db = sqlite3.connect(sqlite_path(url))
        db.executescript(script)
        db.close()
        return
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(script.encode())
