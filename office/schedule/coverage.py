"""The monthly coverage report: per place, the visits the cycle owed against those made.

- *due*: the days of the month the point's cycles fall on (a public holiday too: the village
  was owed a visit);
- *served*: due days with at least the point's minimum minutes on site (archive visits);
- *missed*: due days that were not served;
- *made up*: missed days whose confirmed make-up was served on its reserve day (which may lie
  in the next month).

:func:`coverage` is the typed function the dashboard's report page calls;
``busd office plan coverage`` prints it.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict

from office.archive import Archive
from office.schedule.cycles import due_days, month_bounds
from office.schedule.model import Schedule
from office.schedule.proposals import list_proposals, minutes_on_site, miss_of

# How far past the month a make-up may be served and still count for it.
MAKE_UP_DAYS = 45


class PlaceCoverage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    point_id: str
    name: str
    bus: str
    cycle: str
    due: int
    served: int
    missed: int
    made_up: int
    due_days: list[date]
    missed_days: list[date]


class CoverageReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality: str
    month: date  # its first day
    places: list[PlaceCoverage]

    @property
    def totals(self) -> tuple[int, int, int, int]:
        return (sum(p.due for p in self.places), sum(p.served for p in self.places),
                sum(p.missed for p in self.places), sum(p.made_up for p in self.places))


def _cycle_text(schedule: Schedule, point_id: str) -> str:
    parts = []
    for c in schedule.point(point_id).cycles:
        if c.every == "monthly":
            parts.append(f"monthly {c.nth} {c.weekday}")
        else:
            parts.append(f"{c.every} {c.weekday}")
    return ", ".join(parts)


async def coverage(archive: Archive, schedule: Schedule, month: date) -> CoverageReport:
    first, last = month_bounds(month)
    buses = [b.id for b in schedule.buses]
    visits = await archive.visits(buses, first, last=last + timedelta(days=MAKE_UP_DAYS))
    on_site = minutes_on_site(visits)
    proposals = {(p.point_id, p.missed_day): p
                 for p in await list_proposals(archive, schedule, since=first)
                 if p.status == "confirmed"}
    places: list[PlaceCoverage] = []
    for point in schedule.points:
        owed = due_days(point, first, last)
        missed: list[date] = []
        made_up = 0
        for day in owed:
            holiday = day in schedule.holidays
            if miss_of(point, on_site.get((day, point.id), 0.0), holiday=holiday) is None:
                continue
            missed.append(day)
            make_up = proposals.get((point.id, day))
            if make_up is not None and miss_of(
                    point, on_site.get((make_up.reserve_day, point.id), 0.0),
                    holiday=False) is None:
                made_up += 1
        places.append(PlaceCoverage(
            point_id=point.id, name=point.name, bus=schedule.bus_of(point.id).id,
            cycle=_cycle_text(schedule, point.id), due=len(owed), served=len(owed) - len(missed),
            missed=len(missed), made_up=made_up, due_days=owed, missed_days=missed))
    return CoverageReport(municipality=schedule.municipality, month=first, places=places)


def format_coverage(report: CoverageReport) -> str:
    w = max([5, *(len(p.cycle) for p in report.places)])
    lines = [f"Coverage {report.municipality} {report.month.strftime('%Y-%m')}",
             f"{'place':<12} {'name':<14} {'bus':<8} {'cycle':<{w}} {'due':>4} {'served':>7} "
             f"{'missed':>7} {'made up':>8}"]
    for p in report.places:
        lines.append(f"{p.point_id:<12} {p.name:<14} {p.bus:<8} {p.cycle:<{w}} {p.due:>4} "
                     f"{p.served:>7} {p.missed:>7} {p.made_up:>8}")
    due, served, missed, made_up = report.totals
    lines.append(f"{'total':<12} {'':<14} {'':<8} {'':<{w}} {due:>4} {served:>7} {missed:>7} "
                 f"{made_up:>8}")
    return "\n".join(lines)
