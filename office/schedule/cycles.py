"""When a service point is due: its cycles on the calendar, reserve days and holidays.

Pure calendar arithmetic over local dates. A point with several cycles is due on every day any
of them falls on (once per day). Holidays are not removed here: a point due on a holiday is
still *due* (the coverage report counts it, and the missed visit is offered for a reserve
day); :func:`day_kind` says nothing is planned on it.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Literal

from office.schedule.model import (
    Cycle,
    Fortnightly,
    Monthly,
    Schedule,
    ServicePoint,
    Weekly,
    weekday_number,
)

DayKind = Literal["service", "reserve", "holiday"]


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def cycle_due(cycle: Cycle, day: date) -> bool:
    """Whether ``cycle`` falls on ``day``."""
    if day.weekday() != weekday_number(cycle.weekday):
        return False
    if isinstance(cycle, Weekly):
        return True
    if isinstance(cycle, Fortnightly):
        # Whole weeks between Mondays: correct across a year's end (ISO week numbers are not:
        # a year has 52 or 53 of them).
        weeks = (_monday(day) - _monday(cycle.anchor)).days // 7
        return weeks % 2 == 0
    assert isinstance(cycle, Monthly)
    if cycle.nth == "last":
        return day.day + 7 > monthrange(day.year, day.month)[1]
    return (day.day - 1) // 7 + 1 == cycle.nth


def point_due(point: ServicePoint, day: date) -> bool:
    return any(cycle_due(c, day) for c in point.cycles)


def day_kind(schedule: Schedule, day: date) -> DayKind:
    if day in schedule.holidays:
        return "holiday"
    if day in schedule.reserve.dates or day.weekday() in {
        weekday_number(w) for w in schedule.reserve.weekdays
    }:
        return "reserve"
    return "service"


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def due_days(point: ServicePoint, first: date, last: date) -> list[date]:
    """The days ``first``..``last`` (inclusive) on which ``point`` is due."""
    return [d for d in days(first, last) if point_due(point, d)]


def due_points(schedule: Schedule, bus_id: str, day: date) -> list[ServicePoint]:
    """The points ``bus_id`` owes a visit on ``day`` by their cycles (holidays included)."""
    ids = set(schedule.points_of(schedule.bus(bus_id)))
    return [p for p in schedule.points if p.id in ids and point_due(p, day)]


def next_reserve_day(schedule: Schedule, after: date, *, horizon_days: int = 120) -> date | None:
    """The first reserve day strictly after ``after`` (None: none within the horizon)."""
    for k in range(1, horizon_days + 1):
        day = after + timedelta(days=k)
        if day_kind(schedule, day) == "reserve":
            return day
    return None


def month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    return first, first.replace(day=monthrange(first.year, first.month)[1])
