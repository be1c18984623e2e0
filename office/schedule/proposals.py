"""Missed service made up: a visit that did not happen is offered for the next reserve day.

Semi-automatic, as the methodology's "reserve routes" are: :func:`find_missed` compares what
was due on past days with the visits the archive holds (its derived ``visits``), and each
visit skipped, shortened below the point's minimum, or due on a public holiday becomes a
*proposal* for the next reserve day. The office confirms a proposal (``busd office plan
confirm ID``); only then does the day plan of that reserve day include the point.

Proposals live in the archive (table ``schedule_proposals``), so both back ends keep them and
the dashboard can read them. A proposal's id is the municipality, the point and the missed
day: finding the same miss again changes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from busd.clock import Clock
from office.archive import Archive, Visit
from office.archive.base import select
from office.schedule.cycles import day_kind, days, due_points, next_reserve_day
from office.schedule.model import Schedule, ServicePoint

log = structlog.get_logger("office.schedule.proposals")

MissReason = Literal["skipped", "shortened", "holiday"]
Status = Literal["proposed", "confirmed"]


class MakeUp(BaseModel):
    """A missed visit, offered for a reserve day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    municipality: str
    bus: str
    point_id: str
    point_name: str
    missed_day: date
    reason: MissReason
    minutes: float  # on site that day (0: not visited)
    min_min: float
    reserve_day: date
    status: Status
    created: datetime
    confirmed: datetime | None = None


_COLUMNS = ("id, municipality, bus, point_id, point_name, missed_day, reason, minutes, "
            "min_min, reserve_day, status, created, confirmed")


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts.astimezone(UTC)


def _row(r: tuple[Any, ...]) -> MakeUp:
    created = _ts(r[11])
    assert created is not None
    return MakeUp(id=r[0], municipality=r[1], bus=r[2], point_id=r[3], point_name=r[4],
                  missed_day=_day(r[5]), reason=r[6], minutes=float(r[7]),
                  min_min=float(r[8]), reserve_day=_day(r[9]), status=r[10], created=created,
                  confirmed=_ts(r[12]))


def proposal_id(municipality: str, point_id: str, missed_day: date) -> str:
    return f"{municipality.lower().replace(' ', '-')}/{point_id}/{missed_day.isoformat()}"


def minutes_on_site(visits: list[Visit]) -> dict[tuple[date, str], float]:
    """Minutes on site per (local day, place id), every visit of the day to that place added."""
    out: dict[tuple[date, str], float] = {}
    for v in visits:
        if v.place_id is None:
            continue
        key = (v.day, v.place_id)
        out[key] = out.get(key, 0.0) + v.duration_min
    return out


def miss_of(point: ServicePoint, minutes: float, *, holiday: bool) -> MissReason | None:
    """Why a visit due that day counts as missed (None: it was served)."""
    if holiday:
        return "holiday"
    if minutes <= 0:
        return "skipped"
    if minutes < point.min_min:
        return "shortened"
    return None


async def planned_make_ups(archive: Archive, schedule: Schedule, day: date) -> list[MakeUp]:
    """The confirmed proposals whose reserve day is ``day``."""
    rows = await select(
        archive,
        f"SELECT {_COLUMNS} FROM schedule_proposals WHERE municipality = :m AND "
        "reserve_day = :day AND status = 'confirmed' ORDER BY id",
        {"m": schedule.municipality, "day": day.isoformat()})
    return [_row(r) for r in rows]


async def find_missed(archive: Archive, schedule: Schedule, first: date, last: date, *,
                      clock: Clock) -> list[MakeUp]:
    """Store a proposal for every visit due on ``first``..``last`` that was missed; returns
    the proposals new this time. Make-ups confirmed for a reserve day count as due there."""
    visits = await archive.visits([b.id for b in schedule.buses], first, last=last)
    on_site = minutes_on_site(visits)
    created = datetime.fromtimestamp(clock.now(), UTC)
    new: list[MakeUp] = []
    for day in days(first, last):
        holiday = day_kind(schedule, day) == "holiday"
        owed: list[ServicePoint] = []
        for bus in schedule.buses:
            owed += due_points(schedule, bus.id, day)
        owed_ids = {p.id for p in owed}
        for made_up in await planned_make_ups(archive, schedule, day):
            if made_up.point_id not in owed_ids and made_up.point_id in {
                    p.id for p in schedule.points}:
                owed.append(schedule.point(made_up.point_id))
                owed_ids.add(made_up.point_id)
        for point in owed:
            minutes = on_site.get((day, point.id), 0.0)
            reason = miss_of(point, minutes, holiday=holiday)
            if reason is None:
                continue
            reserve = next_reserve_day(schedule, day)
            if reserve is None:
                log.warning("no_reserve_day", day=day.isoformat())
                continue
            proposal = MakeUp(
                id=proposal_id(schedule.municipality, point.id, day),
                municipality=schedule.municipality, bus=schedule.bus_of(point.id).id,
                point_id=point.id, point_name=point.name, missed_day=day, reason=reason,
                minutes=round(minutes, 1), min_min=point.min_min, reserve_day=reserve,
                status="proposed", created=created)
            if await _insert(archive, proposal):
                new.append(proposal)
    log.info("missed_found", first=first.isoformat(), last=last.isoformat(), new=len(new))
    return new


async def _insert(archive: Archive, p: MakeUp) -> bool:
    rows = await select(
        archive,
        f"INSERT INTO schedule_proposals ({_COLUMNS}) VALUES (:id, :municipality, :bus, "
        ":point_id, :point_name, :missed_day, :reason, :minutes, :min_min, :reserve_day, "
        ":status, :created, NULL) ON CONFLICT (id) DO NOTHING RETURNING id",
        {"id": p.id, "municipality": p.municipality, "bus": p.bus, "point_id": p.point_id,
         "point_name": p.point_name, "missed_day": p.missed_day.isoformat(),
         "reason": p.reason, "minutes": p.minutes, "min_min": p.min_min,
         "reserve_day": p.reserve_day.isoformat(), "status": p.status,
         "created": p.created.isoformat(timespec="microseconds")})
    return bool(rows)


async def list_proposals(archive: Archive, schedule: Schedule, *,
                         since: date | None = None) -> list[MakeUp]:
    """The municipality's proposals (those missed on or after ``since``), by reserve day."""
    rows = await select(
        archive,
        f"SELECT {_COLUMNS} FROM schedule_proposals WHERE municipality = :m AND "
        "missed_day >= :since ORDER BY reserve_day, id",
        {"m": schedule.municipality, "since": (since or date(1970, 1, 1)).isoformat()})
    return [_row(r) for r in rows]


async def confirm(archive: Archive, proposal: str, *, clock: Clock) -> MakeUp | None:
    """Confirm a proposal (again: no change); None when there is no such proposal."""
    now = datetime.fromtimestamp(clock.now(), UTC).isoformat(timespec="microseconds")
    await select(
            archive,         "UPDATE schedule_proposals SET status = 'confirmed', confirmed = :now "
        "WHERE id = :id AND status = 'proposed' RETURNING id", {"id": proposal, "now": now})
    rows = await select(archive, f"SELECT {_COLUMNS} FROM schedule_proposals WHERE id = :id",
                               {"id": proposal})
    if not rows:
        return None
    made = _row(rows[0])
    log.info("make_up_confirmed", reserve_day=made.reserve_day.isoformat())
    return made


def scan_window(today: date, days_back: int) -> tuple[date, date]:
    """The past days a scan looks at: ``days_back`` days up to yesterday (today is not over)."""
    return today - timedelta(days=days_back), today - timedelta(days=1)
