"""A report from the archive: the SQL aggregates (:mod:`office.reports.queries`) folded into
the methodology's indicators per bus and day, per bus, per day, per place and in total.

The database groups the rows by bus and local day; what is left here is a few thousand small
rows for a municipality's month, and the set arithmetic SQL would make awkward (distinct
places planned and visited across days and buses).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import structlog

from office.archive import Archive, DayReport
from office.dayview.reads import as_utc
from office.reports.labels import in_order
from office.reports.models import (
    TEMP_BANDS,
    AlertLine,
    BandLine,
    BusLine,
    DayLine,
    Indicators,
    Line,
    Municipality,
    Period,
    PlaceLine,
    Report,
    TallyLine,
)
from office.reports.queries import Rows, fetch

log = structlog.get_logger("office.reports")


def _day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass
class _Facts:
    """One bus's figures on one local day, before they are summed."""

    legs: int = 0
    km: float = 0.0
    kwh: float = 0.0
    driving_min: float = 0.0
    first: datetime | None = None
    last: datetime | None = None
    visits: int = 0
    on_site_min: float = 0.0
    lift_cycles: int = 0
    planned: set[str] = field(default_factory=set)
    visited: set[str] = field(default_factory=set)
    stops_planned: int = 0
    served: int = 0
    shortened: int = 0
    skipped: int = 0
    clients: int = 0
    sessions: int = 0
    charged_kwh: float = 0.0
    alerts: int = 0
    alert_s: float = 0.0
    emergencies: int = 0

    @property
    def route_min(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return (self.last - self.first).total_seconds() / 60.0


def _ratio(part: float, whole: float, digits: int) -> float | None:
    return round(part / whole, digits) if whole > 0 else None


def indicators(facts: Iterable[_Facts]) -> Indicators:
    """The indicators of some bus-days: sums, ratios of the sums, distinct places."""
    items = list(facts)
    planned: set[str] = set().union(*(f.planned for f in items)) if items else set()
    visited: set[str] = set().union(*(f.visited for f in items)) if items else set()
    km = sum(f.km for f in items)
    kwh = sum(f.kwh for f in items)
    places_visited = len(planned & visited)
    return Indicators(
        days_operated=sum(1 for f in items if f.legs > 0),
        clients_served=sum(f.clients for f in items),
        route_min=round(sum(f.route_min for f in items), 1),
        driving_min=round(sum(f.driving_min for f in items), 1),
        km=round(km, 2), kwh=round(kwh, 3), kwh_per_km=_ratio(kwh, km, 3),
        visits=sum(f.visits for f in items),
        on_site_min=round(sum(f.on_site_min for f in items), 1),
        lift_cycles=sum(f.lift_cycles for f in items),
        places_planned=len(planned), places_visited=places_visited,
        coverage=_ratio(places_visited, len(planned), 3),
        stops_planned=sum(f.stops_planned for f in items),
        stops_served=sum(f.served for f in items),
        stops_shortened=sum(f.shortened for f in items),
        stops_skipped=sum(f.skipped for f in items),
        charging_sessions=sum(f.sessions for f in items),
        charged_kwh=round(sum(f.charged_kwh for f in items), 3),
        alerts=sum(f.alerts for f in items),
        alert_min=round(sum(f.alert_s for f in items) / 60.0, 1),
        emergencies=sum(f.emergencies for f in items))


@dataclass
class _Place:
    name: str
    planned_days: set[date] = field(default_factory=set)
    visits: int = 0
    days: set[date] = field(default_factory=set)
    minutes: float = 0.0


def _fold(rows: Rows) -> tuple[dict[tuple[str, date], _Facts], dict[str, _Place]]:
    facts: dict[tuple[str, date], _Facts] = defaultdict(_Facts)
    places: dict[str, _Place] = {}

    def place(pid: str, name: object) -> _Place:
        return places.setdefault(pid, _Place(str(name) if name else pid))

    for bus, day, n, km, kwh, minutes, first, last in rows.legs:
        f = facts[bus, _day(day)]
        f.legs, f.km, f.kwh, f.driving_min = int(n), float(km), float(kwh), float(minutes)
        f.first, f.last = as_utc(first), as_utc(last)
    for bus, day, pid, name, kind, n, minutes, lifts in rows.visits:
        f = facts[bus, _day(day)]
        f.lift_cycles += int(lifts)
        if kind != "stop" or pid is None:
            continue
        f.visits += int(n)
        f.on_site_min += float(minutes)
        f.visited.add(pid)
        p = place(pid, name)
        p.visits += int(n)
        p.days.add(_day(day))
        p.minutes += float(minutes)
    for bus, day, pid, name in rows.planned:
        f = facts[bus, _day(day)]
        f.planned.add(pid)
        f.stops_planned += 1
        place(pid, name).planned_days.add(_day(day))
    for bus, day, clients, served, shortened, skipped in rows.reports:
        f = facts[bus, _day(day)]
        f.clients, f.served, f.shortened, f.skipped = (int(clients), int(served),
                                                       int(shortened), int(skipped))
    for bus, day, n, kwh in rows.charging:
        f = facts[bus, _day(day)]
        f.sessions, f.charged_kwh = int(n), float(kwh)
    for bus, day, _alert, n, seconds in rows.alerts:
        f = facts[bus, _day(day)]
        f.alerts += int(n)
        f.alert_s += float(seconds)
    for bus, day, n in rows.emergencies:
        facts[bus, _day(day)].emergencies = int(n)
    return facts, places


def _bands(rows: Rows) -> list[BandLine]:
    by_band = {str(band): (int(n), float(km), float(kwh)) for band, n, km, kwh in rows.bands}
    lines = []
    for band in TEMP_BANDS:
        if band in by_band:
            n, km, kwh = by_band[band]
            lines.append(BandLine(band=band, legs=n, km=round(km, 2), kwh=round(kwh, 3),
                                  kwh_per_km=_ratio(kwh, km, 3)))
    return lines


def _alerts(rows: Rows) -> list[AlertLine]:
    counts: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for _bus, _when, alert, n, seconds in rows.alerts:
        counts[str(alert)][0] += int(n)
        counts[str(alert)][1] += float(seconds)
    return [AlertLine(alert=a, count=int(c), minutes=round(s / 60.0, 1))
            for a, (c, s) in sorted(counts.items())]


def tallies(reports: Iterable[DayReport], buses: list[str], *,
            activities: bool) -> list[TallyLine]:
    """Clients per service type (or minutes per activity) per bus and in total, from the
    daily reports (each the bus's own sum of its counted visits)."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(buses, 0.0))
    for r in reports:
        for name, value in (r.activities_min if activities else r.services).items():
            sums[name][r.bus] = sums[name].get(r.bus, 0.0) + float(value)
    digits = 1 if activities else 0
    return [TallyLine(name=n, by_bus={b: round(v, digits) for b, v in sums[n].items()},
                      total=round(sum(sums[n].values()), digits))
            for n in in_order(sums)]


async def build_report(archive: Archive, municipality: Municipality, period: Period, *,
                       bus: str | None = None) -> Report:
    """``municipality``'s report for ``period`` (its buses together), or one of its buses'
    (``bus``). Days are the municipality's local days."""
    if bus is not None and bus not in municipality.buses:
        raise ValueError(f"bus {bus!r} is not one of {municipality.name}'s buses")
    began = time.perf_counter()
    buses = [bus] if bus is not None else list(municipality.buses)
    zone = municipality.zone
    start, end = period.bounds(zone)
    rows = await fetch(archive, buses, zone, start, end, period.first, period.last)
    facts, places = _fold(rows)
    facts = {k: v for k, v in facts.items() if period.first <= k[1] <= period.last}
    lines = [Line(bus=b, day=d, values=indicators([facts[b, d]])) for b, d in sorted(facts)]
    by_bus = [BusLine(bus=b, values=indicators(f for (fb, _), f in facts.items() if fb == b))
              for b in buses]
    by_day = [DayLine(day=d, values=indicators(f for (_, fd), f in facts.items() if fd == d))
              for d in period.days()]
    place_lines = [
        PlaceLine(place_id=pid, name=p.name, planned_days=len(p.planned_days), visits=p.visits,
                  days_visited=len(p.days), minutes=round(p.minutes, 1),
                  coverage=_ratio(len(p.days & p.planned_days), len(p.planned_days), 3))
        for pid, p in sorted(places.items(), key=lambda item: item[1].name)]
    # The period is one day or one calendar month: one month's reports, kept by their days.
    day_reports = [r for r in await archive.daily_reports(buses, period.first)
                   if period.first <= r.day <= period.last]
    report = Report(municipality=municipality.name, tz=municipality.tz,
                    buses=tuple(buses), bus=bus, period=period,
                    totals=indicators(facts.values()), by_bus=by_bus, by_day=by_day,
                    lines=lines, places=place_lines, bands=_bands(rows), alerts=_alerts(rows),
                    services=tallies(day_reports, buses, activities=False),
                    activities=tallies(day_reports, buses, activities=True))
    log.info("report_built", municipality=municipality.name, period=period.label,
             buses=len(buses), lines=len(lines),
             seconds=round(time.perf_counter() - began, 3))
    return report
