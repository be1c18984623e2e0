"""The schedule against the archive, on SQLite and a private PostgreSQL: a day with a stop
skipped and one shortened becomes make-up proposals for the reserve day, confirmed ones join
that day's plan, the coverage report counts due, served, missed and made up, and a bus's
learned energy model comes from its archived legs and visits.

The day's events are catalogue events framed exactly as a bus sends them
(tests/support/bus_events.py), archived as the ingest workers archive them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from busd.clock import ManualClock
from busd.event_catalog import EventModel, StopOutcome
from office.archive import Archive, ArchivedRecord, open_archive
from office.schedule.coverage import coverage, format_coverage
from office.schedule.day import generate_day
from office.schedule.model import Schedule, load_schedule
from office.schedule.proposals import confirm, find_missed, list_proposals
from tests.support.bus_events import archived, daily, leg, visit_ended

LIVANI = Path(__file__).resolve().parents[1] / "config" / "schedule.livani.toml"
BUS = "sim-01"
# Tuesday 8 December 2026 in Riga (UTC+2): Rožupe, Rudzāti, Turki are due.
DAY = date(2026, 12, 8)
RESERVE = date(2026, 12, 11)  # the Friday after
NOW = datetime(2026, 12, 9, 8, 0, tzinfo=UTC)


def z(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


@pytest.fixture(scope="module")
def schedule() -> Schedule:
    return load_schedule(LIVANI)


@pytest.fixture(params=["sqlite", "postgresql"])
async def archive(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Archive]:
    url = (f"sqlite:///{tmp_path}/archive.db" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    async with open_archive(url, clock=ManualClock(NOW.timestamp())) as opened:
        yield opened


def records(events: list[tuple[EventModel, datetime]], first_seq: int) -> list[ArchivedRecord]:
    return [archived(e, first_seq + k, ts, BUS) for k, (e, ts) in enumerate(events)]


def tuesday_with_a_skip(*, leg_kwh: float = 6.0) -> list[ArchivedRecord]:
    """8 Dec: Rožupe served in full, Rudzāti cut to 40 min (minimum 60), Turki skipped."""
    report = daily(DAY, z(DAY, 13)).model_copy(update={"stops": [
        StopOutcome(stop_id="rozupe", name="Rožupe", status="served", planned_min=90,
                    minutes=90, reason=None),
        StopOutcome(stop_id="rudzati", name="Rudzāti", status="shortened", planned_min=120,
                    minutes=40, reason="Depot SOC below the reserve"),
        StopOutcome(stop_id="turki", name="Turki", status="skipped", planned_min=90,
                    minutes=0, reason="Depot SOC below the reserve")]})
    return records([
        (leg("leg-1", z(DAY, 5, 35), z(DAY, 6, 0), km=19.0, kwh=leg_kwh, temp_c=-8.0),
         z(DAY, 6, 0)),
        (visit_ended("visit-1", z(DAY, 6, 0), z(DAY, 7, 30), "rozupe"), z(DAY, 7, 30)),
        (leg("leg-2", z(DAY, 7, 30), z(DAY, 7, 45), km=8.5, kwh=leg_kwh / 2, temp_c=-8.0),
         z(DAY, 7, 45)),
        (visit_ended("visit-2", z(DAY, 8, 0), z(DAY, 8, 40), "rudzati"), z(DAY, 8, 40)),
        (leg("leg-3", z(DAY, 8, 40), z(DAY, 9, 20), km=27.0, kwh=leg_kwh * 1.4, temp_c=-8.0),
         z(DAY, 9, 20)),
        (report, z(DAY, 13)),
    ], first_seq=1)


async def test_a_skipped_and_a_shortened_stop_are_proposed_for_the_reserve_day(
        archive: Archive, schedule: Schedule) -> None:
    await archive.insert_batch(tuesday_with_a_skip())
    clock = ManualClock(NOW.timestamp())
    # Monday 7th had nothing due; Tuesday 8th lost two villages.
    new = await find_missed(archive, schedule, date(2026, 12, 7), DAY, clock=clock)
    assert sorted((p.point_id, p.reason, p.minutes, p.reserve_day) for p in new) == [
        ("rudzati", "shortened", 40.0, RESERVE), ("turki", "skipped", 0.0, RESERVE)]
    # Found again: nothing new, nothing twice.
    assert await find_missed(archive, schedule, date(2026, 12, 7), DAY, clock=clock) == []
    listed = await list_proposals(archive, schedule)
    assert [(p.point_id, p.status) for p in listed] == [("rudzati", "proposed"),
                                                        ("turki", "proposed")]
    # Not confirmed yet: the reserve day has no plan.
    (friday,) = await generate_day(schedule, RESERVE, archive=archive, clock=clock)
    assert friday.plan is None and friday.kind == "reserve"
    # The office confirms Turki: the reserve day's plan has it.
    turki = next(p for p in listed if p.point_id == "turki")
    confirmed = await confirm(archive, turki.id, clock=clock)
    assert confirmed is not None and confirmed.status == "confirmed"
    assert confirmed.confirmed == NOW
    assert await confirm(archive, "līvāni/nowhere/2026-12-08", clock=clock) is None
    (friday,) = await generate_day(schedule, RESERVE, archive=archive, clock=clock, version=3)
    assert friday.plan is not None and [s.id for s in friday.plan.stops] == ["turki"]
    assert friday.make_ups == [turki.id] and friday.safe


async def test_a_make_up_missed_on_its_reserve_day_is_proposed_again(
        archive: Archive, schedule: Schedule) -> None:
    clock = ManualClock(NOW.timestamp())
    await archive.insert_batch(tuesday_with_a_skip())
    await find_missed(archive, schedule, DAY, DAY, clock=clock)
    await confirm(archive, "līvāni/turki/2026-12-08", clock=clock)
    # Friday 11th passes without Turki: it is owed again, on the next reserve day.
    new = await find_missed(archive, schedule, RESERVE, RESERVE, clock=clock)
    assert [(p.id, p.reason, p.reserve_day) for p in new] == [
        ("līvāni/turki/2026-12-11", "skipped", date(2026, 12, 18))]


async def test_coverage_counts_due_served_missed_and_made_up(
        archive: Archive, schedule: Schedule) -> None:
    clock = ManualClock(NOW.timestamp())
    await archive.insert_batch(tuesday_with_a_skip())
    await find_missed(archive, schedule, date(2026, 12, 1), DAY, clock=clock)
    await confirm(archive, "līvāni/turki/2026-12-08", clock=clock)
    # The reserve day: Turki served for 80 minutes (minimum 45).
    await archive.insert_batch(records([
        (visit_ended("visit-9", z(RESERVE, 7, 0), z(RESERVE, 8, 20), "turki"),
         z(RESERVE, 8, 20))], first_seq=100))
    report = await coverage(archive, schedule, date(2026, 12, 1))
    rows = {p.point_id: (p.due, p.served, p.missed, p.made_up) for p in report.places}
    # December 2026: five Tuesdays; Rudzāti also on the last Thursday (31st, a holiday);
    # Jersika every Thursday (five) and every other Monday (14th, 28th); Sutri every other
    # Thursday from the 3rd.
    assert rows == {"rozupe": (5, 1, 4, 0), "rudzati": (6, 0, 6, 0), "turki": (5, 0, 5, 1),
                    "jersika": (7, 0, 7, 0), "sutri": (3, 0, 3, 0)}
    assert report.totals == (26, 1, 25, 1)
    text = format_coverage(report)
    assert "turki" in text and text.splitlines()[-1].split()[1:] == ["26", "1", "25", "1"]


async def test_the_buses_learned_model_checks_its_plans(archive: Archive,
                                                        schedule: Schedule) -> None:
    clock = ManualClock(NOW.timestamp())
    (seeded,) = await generate_day(schedule, date(2026, 12, 15), archive=archive, clock=clock)
    assert seeded.energy == "seeded"
    # Its legs used twice what the seed predicts at −8 °C: the office's check learns so too.
    await archive.insert_batch(tuesday_with_a_skip(leg_kwh=12.5))
    (learned,) = await generate_day(schedule, date(2026, 12, 15), archive=archive, clock=clock)
    assert learned.energy == "learned"
    assert seeded.depot_soc is not None and learned.depot_soc is not None
    assert learned.depot_soc < seeded.depot_soc - 5


async def _seed(url: str) -> None:
    async with open_archive(url) as opened:
        await opened.insert_batch(tuesday_with_a_skip())


def test_the_commands_on_an_archive_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from busd.cli import main

    url = f"sqlite:///{tmp_path}/office.db"
    asyncio.run(_seed(url))  # the commands run their own event loop
    base = ["office", "plan"]
    assert main([*base, "proposals", "--schedule", str(LIVANI), "--archive", url,
                 "--today", "2026-12-09", "--days", "3"]) == 0
    listed = capsys.readouterr().out
    assert "līvāni/turki/2026-12-08" in listed and "skipped" in listed
    assert main([*base, "confirm", "līvāni/turki/2026-12-08", "--archive", url]) == 0
    assert "2026-12-11" in capsys.readouterr().out
    assert main([*base, "confirm", "nope", "--archive", url]) == 2
    capsys.readouterr()
    out = tmp_path / "plans"
    assert main([*base, "generate", "--schedule", str(LIVANI), "--date", "2026-12-11",
                 "--out", str(out), "--archive", url]) == 0
    assert "make-ups: līvāni/turki/2026-12-08" in capsys.readouterr().out
    assert (out / "sim-01.json").exists()
    assert main([*base, "coverage", "--schedule", str(LIVANI), "--month", "2026-12",
                 "--archive", url]) == 0
    assert "Coverage Līvāni 2026-12" in capsys.readouterr().out
    assert main([*base, "coverage", "--schedule", str(LIVANI), "--month", "2026-12",
                 "--archive", str(tmp_path / "missing.db")]) == 2


