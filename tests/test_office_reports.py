"""The office's reports (office/reports) against SQLite and a private PostgreSQL: numbers
checked against a hand-computed month (tests/support/office_day.py's day, a few times over),
and the exports read back (CSV with the csv module, XLSX with openpyxl)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from busd.clock import ManualClock
from busd.event_catalog import PlanChanged
from office.archive import open_archive
from office.archive.base import Archive
from office.reports import Municipality, Period, Report, build_report, to_csv, to_xlsx
from office.reports.export import filename
from office.reports.localday import offset_stretches
from tests.support.bus_events import archived, leg
from tests.support.office_day import DaySpec, day_records, proposal

NOW = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
LIVANI = Municipality(name="Līvāni", tz="Europe/Riga", buses=("lv-01", "lv-02"))
MARCH = Period.month(2026, 3)
NINTH = date(2026, 3, 9)


@pytest.fixture
async def archive(archive_url: str) -> AsyncIterator[Archive]:
    """March 2026 of Līvāni's two buses, and one bus of another municipality:

    - lv-01: the standard day on the 9th (−12 °C) and the 10th (5 °C, a charge), and a leg
      at 00:30 local on 1 March (22:30Z on 28 February: March's, by local midnight);
      a leg at 01:30 local on 1 April (22:30Z on 31 March, after the DST change: April's);
    - lv-02: the standard day on the 9th (10 clients), and an emergency proposal;
    - lv-03 (not Līvāni's): the standard day on the 9th.
    """
    async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as opened:
        await opened.insert_batch(day_records(DaySpec(telemetry=False)))
        await opened.insert_batch(day_records(DaySpec(day=date(2026, 3, 10), first_seq=100,
                                                      temp_c=5.0, charge=True, telemetry=False)))
        early = datetime(2026, 2, 28, 22, 30, tzinfo=UTC)
        late = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
        await opened.insert_batch([
            archived(leg("leg-early", early, datetime(2026, 2, 28, 23, 0, tzinfo=UTC)), 200,
                     early),
            archived(leg("leg-late", late, datetime(2026, 3, 31, 23, 0, tzinfo=UTC)), 201,
                     late)])
        lv02 = DaySpec(bus="lv-02", clients=10, telemetry=False)
        emergency = proposal(lv02).model_copy(update={"id": "p-emergency", "kind": "emergency",
                                                      "emergency": True})
        told = archived(PlanChanged(cause="proposed", proposal=emergency), 300,
                        lv02.at("11:00"), "lv-02")
        await opened.insert_batch([*day_records(lv02), told])
        await opened.insert_batch(day_records(DaySpec(bus="lv-03", clients=99, telemetry=False)))
        yield opened


async def test_a_municipalitys_month_holds_the_hand_computed_figures(archive: Archive) -> None:
    report = await build_report(archive, LIVANI, MARCH)
    t = report.totals
    # Four bus-days: lv-01 on the 1st (one leg), 9th and 10th; lv-02 on the 9th.
    assert t.days_operated == 4
    assert t.clients_served == 14 + 14 + 10
    assert (t.km, t.kwh, t.kwh_per_km) == (3 * 42.5 + 12.5, 3 * 10.5 + 3.0, 0.246)
    assert (t.route_min, t.driving_min) == (3 * 210 + 30, 3 * 101 + 30)
    assert (t.visits, t.on_site_min, t.lift_cycles) == (6, 3 * 105, 12)
    assert (t.places_planned, t.places_visited, t.coverage) == (3, 2, 0.667)
    assert (t.stops_planned, t.stops_served, t.stops_shortened, t.stops_skipped) == (9, 3, 3, 3)
    assert (t.charging_sessions, t.charged_kwh) == (1, 14.5)
    assert (t.alerts, t.alert_min, t.emergencies) == (3, 6.0, 1)
    assert [(b.bus, b.values.days_operated, b.values.km) for b in report.by_bus] == [
        ("lv-01", 3, 97.5), ("lv-02", 1, 42.5)]
    assert [(x.bus, x.day) for x in report.lines] == [
        ("lv-01", date(2026, 3, 1)), ("lv-01", NINTH), ("lv-01", date(2026, 3, 10)),
        ("lv-02", NINTH)]
    assert len(report.by_day) == 31 and report.by_day[8].values.clients_served == 24
    bands = [(b.band, b.legs, b.km, b.kwh, b.kwh_per_km) for b in report.bands]
    assert bands == [("below_-10", 7, 97.5, 24.0, 0.246), ("0_10", 3, 42.5, 10.5, 0.247)]
    places = [(p.place_id, p.planned_days, p.visits, p.days_visited, p.minutes, p.coverage)
              for p in report.places]
    assert places == [("kalupe", 2, 0, 0, 0.0, 0.0), ("rozupe", 2, 3, 2, 180.0, 1.0),
                      ("sutri", 2, 3, 2, 135.0, 1.0)]
    assert [(a.alert, a.count, a.minutes) for a in report.alerts] == [("lift_fault", 3, 6.0)]


async def test_a_buss_day_report(archive: Archive) -> None:
    report = await build_report(archive, LIVANI, Period.day(NINTH), bus="lv-02")
    assert report.bus == "lv-02" and report.buses == ("lv-02",)
    t = report.totals
    assert (t.days_operated, t.clients_served, t.km, t.emergencies) == (1, 10, 42.5, 1)
    assert [x.day for x in report.lines] == [NINTH]
    with pytest.raises(ValueError, match="not one of"):
        await build_report(archive, LIVANI, MARCH, bus="lv-03")


async def test_the_exports_hold_the_reports_numbers(archive: Archive, tmp_path: Path) -> None:
    report = await build_report(archive, LIVANI, MARCH)
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(report, "lv")), read_only=True)
    assert book.sheetnames == ["Kopsavilkums", "Autobuss un diena", "Pa autobusiem",
                               "Pa dienām", "Vietas", "Enerģija pēc temperatūras",
                               "Brīdinājumi", "Klienti pa pakalpojumiem",
                               "Laiks pa darbībām, min"]
    summary = {row[0]: row[1] for row in book["Kopsavilkums"].iter_rows(values_only=True)
               if row and row[0] is not None}
    assert summary["Pašvaldība"] == "Līvāni" and summary["Periods"] == "2026-03"
    assert summary["Apkalpotie klienti"] == 38 and summary["Nobraukums, km"] == 140.0
    assert summary["Teritoriālais pārklājums"] == 0.667
    by_bus = list(book["Pa autobusiem"].iter_rows(values_only=True))
    head = list(by_bus[0])
    km = head.index("Nobraukums, km")
    assert [(r[0], r[km]) for r in by_bus[1:]] == [("lv-01", 97.5), ("lv-02", 42.5),
                                                   ("Kopā", 140.0)]
    book.close()
    text = to_csv(report, "en").decode("utf-8")
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert lines[0][:4] == ["Bus", "Day", "Days operated", "Clients served"]
    assert lines[-1][:4] == ["Total", "2026-03", "4", "38"]
    assert filename(report, "xlsx") == "report-Līvāni-2026-03.xlsx"


def test_the_local_day_stretches_follow_the_dst_change() -> None:
    riga = ZoneInfo("Europe/Riga")
    start, end = MARCH.bounds(riga)
    assert offset_stretches(riga, start, end) == [
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 120), (end, 180)]
    assert offset_stretches(riga, *Period.day(NINTH).bounds(riga)) == [
        (Period.day(NINTH).bounds(riga)[1], 120)]


def test_a_municipality_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Municipality(name="X", tz="Europe/Atlantis", buses=("lv-01",))
    with pytest.raises(ValueError):
        Municipality(name="X", buses=())
    with pytest.raises(ValueError, match="before its first"):
        Period(kind="day", first=NINTH, last=date(2026, 3, 8))


def test_a_report_is_a_typed_model() -> None:
    assert Report.model_json_schema()["title"] == "Report"


async def test_days_split_at_the_municipalitys_midnight_not_the_archives(
        archive: Archive) -> None:
    """The archive's days are Riga's; a municipality in UTC gets its own: the leg at 22:30Z
    on 28 February is February's there, the one at 22:30Z on 31 March is March's."""
    utc_town = Municipality(name="UTC", tz="UTC", buses=("lv-01",))
    report = await build_report(archive, utc_town, MARCH)
    assert [x.day for x in report.lines] == [NINTH, date(2026, 3, 10), date(2026, 3, 31)]
    assert report.totals.km == 2 * 42.5 + 12.5
