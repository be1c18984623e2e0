"""Services by type and time by activity, from the bus's counter to the office's derived tables
(SQLite and a private PostgreSQL): the visit_ended the tracker sends with the visit's tallies,
the daily report made from the bus's monitoring store, each archived as the bus sends it and
read back typed (``visit_services``, ``daily_reports``), and on into the monthly report and
its XLSX."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl

from busd.clock import ManualClock
from busd.config import ServicesConfig
from busd.event_catalog import DailyReport, EventModel, VisitEnded
from busd.monitoring.summary import daily_summary
from busd.services.counter import ServiceCounter
from office.archive import ArchivedRecord, open_archive
from office.archive.base import Archive
from office.reports import Municipality, Period, build_report, to_xlsx
from telemetry.monitoring_store import MonitoringStore
from tests.monitoring_helpers import CaptureSink
from tests.support.bus_events import archived, daily, visit_ended, visit_started
from tests.support.components import running
from tests.support.wait import wait_until
from tests.test_office_derived import NOW, _sql, archive

__all__ = ["archive"]  # the fixture, imported to be used here

T0 = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # 09:00 in Riga
DAY = date(2026, 3, 9)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def a_counted_day(tmp_path: Path) -> list[EventModel]:
    """Two visits counted on the staff page, as the bus sends them: the counter's own events,
    each visit_ended with its tallies, and the daily report from the monitoring store."""
    clock, sink = ManualClock(start=at(31).timestamp()), CaptureSink()
    store = MonitoringStore(tmp_path / "m.sqlite")
    counter = ServiceCounter(config=ServicesConfig(start_activity="setup"), store=store,
                             clock=clock, sink=sink, timezone="Europe/Riga")
    sent: list[EventModel] = []
    async with running(counter, clock) as run:  # its writer stores what visits' ends close
        await wait_until(lambda: run.health.phase.value == "running", timeout=5, what="ready")
        await record_visits(counter, clock, sink, sent)
        await wait_until(lambda: not counter._unsaved, timeout=5, what="the visits' ends stored")
    summary = daily_summary(DAY.isoformat(), store.day_records_sync(DAY.isoformat()))
    store.close()
    report = daily(DAY, at(600), clients=summary["clients_served"]).model_dump()
    sent.append(DailyReport.model_validate(report | {
        "services": summary["services"], "activities_min": summary["activities_min"]}))
    return sent


async def record_visits(counter: ServiceCounter, clock: ManualClock, sink: CaptureSink,
                        sent: list[EventModel]) -> None:
    for visit_id, place, start, presses in (
        ("visit-1", "rozupe", 31.0, ("notary", "notary", "social")),
        ("visit-2", "turki", 150.0, ("social", "library", "library", "library")),
    ):
        await clock.advance(at(start).timestamp() - clock.now())
        started = visit_started(visit_id, at(start), place)
        counter.on_event(started)
        sent.append(started)
        await clock.advance(600.0)
        await counter.switch("serving")
        for service in presses:
            await counter.increment(1, service)
        await clock.advance(1800.0)
        plain = visit_ended(visit_id, at(start), at(start + 40), place)
        found = counter.at_end(visit_id, at(start + 40).timestamp())  # as the tracker asks
        assert found is not None
        ended = VisitEnded.model_validate({**plain.model_dump(), "services": found[0],
                                           "activities_min": found[1]})
        counter.on_event(ended)
        sent += [*sink.models, ended]
        sink.models.clear()


async def test_per_type_counts_and_activity_time_reach_the_derived_tables(
    archive: Archive, tmp_path: Path,
) -> None:
    events = await a_counted_day(tmp_path)
    records: list[ArchivedRecord] = [archived(e, i + 1, at(i)) for i, e in enumerate(events)]
    result = await archive.insert_batch(records)
    assert (result.inserted, result.unfit) == (len(records), 0)

    counted = await archive.visit_services("lv-01", DAY, last=DAY + timedelta(days=30))
    assert [(v.id, v.place_id, v.clients_served) for v in counted] == [
        ("visit-1", "rozupe", 3), ("visit-2", "turki", 4)]
    assert counted[0].services == {"municipal": 0, "social": 1, "notary": 2,
                                   "orphans_court": 0, "library": 0, "other": 0}
    assert counted[0].activities_min == {"setup": 10.0, "serving": 30.0}
    assert counted[1].services["library"] == 3

    assert [v.id for v in await archive.visits("lv-01", DAY)] == ["visit-1", "visit-2"]

    (report,) = await archive.daily_reports("lv-01", DAY)
    assert report.clients_served == 7
    assert report.services == {"library": 3, "notary": 2, "social": 2}
    assert report.activities_min == {"serving": 60.0, "setup": 20.0}

    # A visit still open (only its visit_started arrived) is not counted yet.
    more = [archived(visit_started("visit-3", at(300)), len(records) + 1, at(300))]
    await archive.insert_batch(more)
    assert len(await archive.visit_services("lv-01", DAY)) == 2
    assert len(await archive.visits("lv-01", DAY)) == 3


async def test_records_of_a_bus_without_the_staff_page_still_derive(archive: Archive) -> None:
    """An older bus: no services in its visit_ended nor in its daily report."""
    old = [visit_started("visit-1", at(31)), visit_ended("visit-1", at(31), at(71)),
           daily(DAY, at(600))]
    records = [archived(e, i + 1, at(i)) for i, e in enumerate(old)]
    report = records[-1]
    assert isinstance(report.data, dict)
    data = {k: v for k, v in report.data.items() if k not in ("services", "activities_min")}
    records[-1] = report.model_copy(update={"data": data})  # as an older catalogue sends it
    await archive.insert_batch(records)
    assert await archive.visit_services("lv-01", DAY) == []
    (day_report,) = await archive.daily_reports("lv-01", DAY)
    assert (day_report.clients_served, day_report.services, day_report.activities_min) == (
        14, {}, {})


async def test_the_migration_fills_visit_services_from_an_archive_of_counted_days(
    archive_url: str, tmp_path: Path,
) -> None:
    """An archive that took counted days before migration 004: once applied, it is filled."""
    events = await a_counted_day(tmp_path)
    records = [archived(e, i + 1, at(i)) for i, e in enumerate(events)]
    clock = ManualClock(NOW.timestamp())
    async with open_archive(archive_url, clock=clock) as opened:
        await opened.insert_batch(records)
        expected = (await opened.visit_services("lv-01", DAY),
                    await opened.daily_reports("lv-01", DAY))
    await _sql(archive_url, "DROP TABLE visit_services; "
               "ALTER TABLE daily_reports DROP COLUMN services; "
               "ALTER TABLE daily_reports DROP COLUMN activities_min; "
               "DELETE FROM schema_migrations WHERE version = 4")
    async with open_archive(archive_url, clock=clock) as opened:
        assert 4 in await opened.applied_migrations()
        assert (await opened.visit_services("lv-01", DAY),
                await opened.daily_reports("lv-01", DAY)) == expected
    assert len(expected[0]) == 2 and expected[1][0].services["library"] == 3


async def test_counts_made_on_the_bus_come_out_in_the_monthly_report_and_its_xlsx(
    archive: Archive, tmp_path: Path,
) -> None:
    """The whole chain: the staff page's counter (the real ServiceCounter on a real monitoring
    store) → the events the bus sends → the office archive (insert_batch) → the municipality's
    month report (build_report) → its XLSX read back with openpyxl."""
    events = await a_counted_day(tmp_path)
    await archive.insert_batch([archived(e, i + 1, at(i)) for i, e in enumerate(events)])
    livani = Municipality(name="Līvāni", tz="Europe/Riga", buses=("lv-01", "lv-02"))
    report = await build_report(archive, livani, Period.month(2026, 3))
    assert report.totals.clients_served == 7
    # visit-1: notary ×2, social; visit-2: social, library ×3. lv-02 counted nothing.
    assert {s.name: (s.by_bus, s.total) for s in report.services} == {
        "notary": ({"lv-01": 2, "lv-02": 0}, 2), "social": ({"lv-01": 2, "lv-02": 0}, 2),
        "library": ({"lv-01": 3, "lv-02": 0}, 3)}
    # 10 min set-up then 30 min serving at each visit.
    assert {a.name: a.total for a in report.activities} == {"setup": 20.0, "serving": 60.0}

    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(report, "en")), read_only=True)
    sheets = {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}
    book.close()
    summary = {row[0]: row[1] for row in sheets["Summary"] if len(row) > 1}
    assert summary["Clients served"] == 7
    assert (summary["Clients by service: Notary"], summary["Clients by service: Social"],
            summary["Clients by service: Library"]) == (2, 2, 3)
    services = sheets["Clients by service"]
    assert services[0] == ("Service", "lv-01", "lv-02", "Total")
    assert {r[0]: r[1:] for r in services[1:]} == {
        "Notary": (2, 0, 2), "Social": (2, 0, 2), "Library": (3, 0, 3)}
    activities = sheets["Time by activity, min"]
    assert {r[0]: r[-1] for r in activities[1:]} == {"Set-up": 20.0, "Serving clients": 60.0}
