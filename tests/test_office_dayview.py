"""A bus's day from the archive (office/dayview), against SQLite and a private PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from busd.clock import ManualClock
from busd.planner.i18n import render
from office.archive import open_archive
from office.archive.base import Archive
from office.dayview import DayView, ReasonNote, bus_day, reason_text
from office.dayview.planned import planned_points
from tests.support.bus_events import archived as archived_event
from tests.support.bus_events import leg
from tests.support.office_day import (
    LEGS_KM,
    RESERVE_PCT,
    SUTRI_AFTER_MIN,
    THRESHOLD_PCT,
    DaySpec,
    day_plan,
    day_records,
    last_seq,
)

SPEC = DaySpec()
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def archive(archive_url: str) -> AsyncIterator[Archive]:
    async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as opened:
        yield opened


async def _the_day(archive: Archive) -> DayView:
    records = day_records(SPEC)
    await archive.insert_batch(records)
    # The next local day begins at 22:00Z: a leg after it is not this day's.
    late = leg("leg-late", datetime(2026, 3, 9, 22, 30, tzinfo=UTC),
               datetime(2026, 3, 9, 23, 0, tzinfo=UTC))
    await archive.insert_batch([archived_event(late, last_seq(records) + 1,
                                               datetime(2026, 3, 9, 23, 0, tzinfo=UTC))])
    return await bus_day(archive, "lv-01", SPEC.day, tz=SPEC.tz, now=NOW)


async def test_a_shortened_stop_carries_the_planners_reason_in_each_language(
        archive: Archive) -> None:
    view = await _the_day(archive)
    by_id = {s.stop_id: s for s in view.stops}
    assert [s.stop_id for s in view.stops] == ["rozupe", "sutri", "kalupe"]
    assert [s.status for s in view.stops] == ["served", "shortened", "skipped"]
    sutri = by_id["sutri"]
    assert (sutri.planned_min, sutri.minutes, sutri.visits) == (90.0, SUTRI_AFTER_MIN, 1)
    assert (sutri.arrival, sutri.departure) == (SPEC.at("10:01"), SPEC.at("10:46"))
    # The plan as it was before the change: Sutri from 10:01 for 90 minutes.
    assert (sutri.planned_arrival, sutri.planned_departure) == (SPEC.at("10:01"),
                                                                SPEC.at("11:31"))
    # The proposal's general reasons, then the stop's own; "result" belongs to no stop.
    assert [r.code for r in sutri.reasons] == ["unsafe", "cold", "shorten"]
    shorten = sutri.reasons[2]
    for lang in ("lv", "lt", "en"):
        assert reason_text(shorten, lang) == render("shorten", shorten.params, lang)
    assert reason_text(shorten, "lv") == "Saīsināt apmeklējumu Sutri: 90 → 45 min."
    # Kalupe was never reached and no plan change said so: the office's own code.
    assert [r.code for r in by_id["kalupe"].reasons] == ["not_visited"]
    assert reason_text(by_id["kalupe"].reasons[0], "lt").startswith("Stotelė neaplankyta")
    assert by_id["rozupe"].reasons == []


def test_a_reason_code_the_office_does_not_know_falls_back_to_the_bus_text() -> None:
    unknown = ReasonNote(code="from_the_future", params={"x": 1},
                         texts={"lv": "Nākotnes iemesls", "en": "A future reason"})
    assert reason_text(unknown, "lv") == "Nākotnes iemesls"
    assert reason_text(unknown, "lt") == "A future reason"
    # A known code with parameters of another release: the bus's text, not an exception.
    odd = ReasonNote(code="shorten", params={"nom": "Sutri"}, texts={"en": "Shorten Sutri"})
    assert reason_text(odd, "en") == "Shorten Sutri"
    assert reason_text(ReasonNote(code="bare", params={}), "en") == "bare"


async def test_the_day_holds_soc_projections_spans_alerts_and_gaps(archive: Archive) -> None:
    view = await _the_day(archive)
    assert view.soc_source == "telemetry"
    assert [p.soc for p in view.soc] == [80.0 - 5 * i for i in range(8)]
    assert view.soc[0].ts == SPEC.at("08:00")
    assert (view.reserve_pct, view.threshold_pct) == (RESERVE_PCT, THRESHOLD_PCT)
    (curve,) = view.projections
    assert curve.accepted_at == SPEC.at("09:42")
    assert curve.points[0].ts == SPEC.at("09:40") and curve.points[-1].soc == 21.0
    assert [x.km for x in view.legs] == list(LEGS_KM)  # not the leg after local midnight
    assert [v.place_id for v in view.visits] == ["rozupe", "sutri"]
    (alert,) = view.alerts
    assert (alert.raised_at, alert.cleared_at) == (SPEC.at("10:10"), SPEC.at("10:12"))
    (gap,) = view.gaps
    assert gap.missing == 1 and view.missing_records == 1
    assert [e.cause for e in view.plan_events] == ["proposed", "accepted"]
    assert view.clients_served == 14
    assert (view.start, view.end) == (datetime(2026, 3, 8, 22, tzinfo=UTC),
                                      datetime(2026, 3, 9, 22, tzinfo=UTC))


async def test_without_telemetry_the_soc_comes_from_the_spans(archive: Archive) -> None:
    spec = DaySpec(telemetry=False, lose_one=False)
    await archive.insert_batch(day_records(spec))
    view = await bus_day(archive, "lv-01", spec.day, tz=spec.tz)
    assert view.soc_source == "spans" and view.soc[0].ts == spec.at("08:00")
    assert view.gaps == []


async def test_a_day_in_progress_has_pending_stops(archive: Archive) -> None:
    """Before the report came and before midnight, an unvisited stop is pending, not skipped;
    the plan then comes from the proposal's projection."""
    records = [r for r in day_records(DaySpec(lose_one=False)) if r.kind != "daily"]
    await archive.insert_batch(records)
    view = await bus_day(archive, "lv-01", SPEC.day, tz=SPEC.tz,
                         now=SPEC.at("11:00"))
    assert [(s.stop_id, s.status) for s in view.stops] == [("sutri", "shortened"),
                                                          ("kalupe", "pending")]
    # Before the report comes, the clients are the counted visits' (both ended by 11:00).
    assert view.report is None and view.clients_served == 14
    later = await bus_day(archive, "lv-01", SPEC.day, tz=SPEC.tz,
                          now=SPEC.at("11:00") + timedelta(days=1))
    assert [s.status for s in later.stops] == ["shortened", "skipped"]


async def test_an_empty_day_is_empty(archive: Archive) -> None:
    view = await bus_day(archive, "lv-09", date(2026, 3, 9), tz="Europe/Vilnius")
    assert (view.stops, view.soc, view.legs, view.gaps, view.soc_source) == (
        [], [], [], [], "none")


async def test_a_day_without_a_proposal_has_the_loaded_plans_planned_times(
        archive: Archive) -> None:
    """The plan the office sent, as the bus loaded it (its plan_changed carries it): the stops,
    their minutes and their times as the bus's planner projects them from the depot."""
    spec = DaySpec(loaded=True, proposed=False, lose_one=False)
    await archive.insert_batch([r for r in day_records(spec) if r.kind != "daily"])
    view = await bus_day(archive, "lv-01", spec.day, tz=spec.tz, now=spec.at("11:00"))
    assert view.plan_version == 3 and not view.projections
    assert [(s.stop_id, s.planned_min) for s in view.stops] == [
        ("rozupe", 60.0), ("sutri", 90.0), ("kalupe", 30.0)]
    expected = planned_points(day_plan(spec))
    for stop in view.stops:
        assert stop.planned_arrival == datetime.fromisoformat(expected[stop.stop_id].eta)
        assert stop.planned_departure == datetime.fromisoformat(expected[stop.stop_id].etd)
    rozupe, sutri, kalupe = view.stops
    assert rozupe.planned_arrival is not None and sutri.planned_arrival is not None
    assert spec.at("08:00") < rozupe.planned_arrival < sutri.planned_arrival
    assert rozupe.planned_departure == rozupe.planned_arrival + timedelta(minutes=60)
    assert kalupe.planned_arrival is not None and kalupe.status == "pending"
    # Without the loaded plan (an older bus) and no proposal: the places visited, no times.
    older_spec = DaySpec(bus="lv-02", proposed=False, lose_one=False)
    await archive.insert_batch([r for r in day_records(older_spec) if r.kind != "daily"])
    older = await bus_day(archive, "lv-02", spec.day, tz=spec.tz, now=spec.at("11:00"))
    assert older.plan_version is None
    assert [(s.stop_id, s.planned_arrival) for s in older.stops] == [
        ("rozupe", None), ("sutri", None)]
