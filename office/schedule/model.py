"""A municipality's service schedule: the depot, chargers, service points and their cycles.

One TOML file per municipality (``config/schedule.livani.toml``). The depot and the chargers
are the bus's own plan models (:mod:`busd.plan`), so a day plan made from the schedule carries
them unchanged. Every problem, from a field's type to a point served by no bus, is reported
with the key it concerns (``points.2.cycles.0.weekday: ...``).
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from busd.config import PlannerConfig
from busd.errors import ConfigError
from busd.plan import ArrivalWindow, Charger, Depot, Latitude, Longitude, PlaceId, plan_problems

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Mean daily temperatures of a cold year in Latgale, °C, January first: the day plans are
# checked against energy at these unless the schedule says otherwise.
DEFAULT_MONTH_TEMP_C = (-8.0, -8.0, -4.0, 3.0, 9.0, 13.0, 15.0, 14.0, 9.0, 4.0, -1.0, -5.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def weekday_number(day: Weekday) -> int:
    """Monday 0 … Sunday 6, as ``date.weekday()``."""
    return WEEKDAYS.index(day)


class Weekly(_Strict):
    every: Literal["weekly"]
    weekday: Weekday


class Fortnightly(_Strict):
    """Every other week on ``weekday``: the weeks an even number of weeks from ``anchor``'s."""

    every: Literal["fortnightly"]
    weekday: Weekday
    anchor: date = Field(description="any day of a week in which the point is served")


class Monthly(_Strict):
    """The ``nth`` ``weekday`` of every month (1..5, or "last"); a month without a fifth one
    has no visit."""

    every: Literal["monthly"]
    weekday: Weekday
    nth: Literal[1, 2, 3, 4, 5, "last"]


Cycle = Annotated[Weekly | Fortnightly | Monthly, Field(discriminator="every")]


class ServicePoint(_Strict):
    """A village the bus serves: where, how long, how important, and how often."""

    id: PlaceId
    name: str = Field(min_length=1, max_length=80)
    lat: Latitude
    lon: Longitude
    geofence_m: float = Field(default=150.0, gt=10, le=2000, description="radius of the site")
    planned_min: float = Field(gt=0, le=720, description="planned minutes on site")
    min_min: float = Field(ge=0, le=720, description="shortest acceptable visit, minutes")
    priority: int = Field(default=5, ge=1, le=10, description="10 = most important")
    must_serve: bool = False
    window: ArrivalWindow | None = Field(default=None, description="announced arrival window")
    cycles: list[Cycle] = Field(min_length=1, max_length=7,
                                description="when it is due; several cycles may add up")

    @model_validator(mode="after")
    def _durations(self) -> ServicePoint:
        if self.min_min > self.planned_min:
            raise ValueError("min_min is longer than planned_min")
        return self


class Road(_Strict):
    """A known road distance between two places (either direction)."""

    a: PlaceId
    b: PlaceId
    km: float = Field(gt=0, le=1000)


class Bus(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    points: list[PlaceId] = Field(default_factory=list, description="points this bus serves")
    routes: list[PlaceId] = Field(default_factory=list, description="routes this bus serves")
    start_soc: float = Field(default=95.0, gt=0, le=100, description="SOC leaving the depot")
    energy: PlannerConfig = Field(
        default_factory=PlannerConfig,
        description="the bus's seeded energy model and reserve (its [planner] config)")


class Route(_Strict):
    id: PlaceId
    points: list[PlaceId] = Field(min_length=1)


class ReserveDays(_Strict):
    """Days kept free for what could not be served: weekdays, and single dates."""

    weekdays: list[Weekday] = Field(default_factory=list)
    dates: list[date] = Field(default_factory=list)


class Schedule(_Strict):
    municipality: str = Field(min_length=1, max_length=80)
    timezone: str = "Europe/Riga"
    depot: Depot
    chargers: list[Charger] = Field(default_factory=list, max_length=20)
    points: list[ServicePoint] = Field(min_length=1, max_length=200)
    roads: list[Road] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    buses: list[Bus] = Field(min_length=1)
    reserve: ReserveDays = Field(default_factory=ReserveDays)
    holidays: list[date] = Field(default_factory=list, description="nothing is planned")
    month_temp_c: list[float] = Field(
        default=list(DEFAULT_MONTH_TEMP_C), min_length=12, max_length=12,
        description="outside temperature the energy check assumes, January first")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def point(self, point_id: str) -> ServicePoint:
        for p in self.points:
            if p.id == point_id:
                return p
        raise KeyError(point_id)

    def bus(self, bus_id: str) -> Bus:
        for b in self.buses:
            if b.id == bus_id:
                return b
        raise KeyError(bus_id)

    def points_of(self, bus: Bus) -> list[str]:
        """The ids of the points ``bus`` serves (its own and its routes'), in schedule order."""
        routes = {r.id: r for r in self.routes}
        wanted = set(bus.points)
        for rid in bus.routes:
            wanted.update(routes[rid].points)
        return [p.id for p in self.points if p.id in wanted]

    def bus_of(self, point_id: str) -> Bus:
        for bus in self.buses:
            if point_id in self.points_of(bus):
                return bus
        raise KeyError(point_id)

    def road_km(self, a: str, b: str) -> float | None:
        for road in self.roads:
            if {road.a, road.b} == {a, b}:
                return road.km
        return None

    def temp_c(self, day: date) -> float:
        return self.month_temp_c[day.month - 1]


def _duplicates(ids: list[str]) -> list[str]:
    return sorted({i for i in ids if ids.count(i) > 1})


def cross_problems(s: Schedule) -> list[tuple[str, str]]:
    """Rules across sections, each with the key it concerns."""
    problems: list[tuple[str, str]] = []
    places = [s.depot.id, *(c.id for c in s.chargers), *(p.id for p in s.points)]
    for dup in _duplicates(places):
        problems.append(("points", f"id {dup!r} is used by more than one place"))
    for dup in _duplicates([b.id for b in s.buses]):
        problems.append(("buses", f"bus {dup!r} is listed more than once"))
    point_ids = {p.id for p in s.points}
    route_ids = {r.id for r in s.routes}
    for k, route in enumerate(s.routes):
        for j, pid in enumerate(route.points):
            if pid not in point_ids:
                problems.append((f"routes.{k}.points.{j}", f"unknown point {pid!r}"))
    for k, road in enumerate(s.roads):
        for end in ("a", "b"):
            if getattr(road, end) not in places:
                problems.append((f"roads.{k}.{end}", f"unknown place {getattr(road, end)!r}"))
    served_by: dict[str, str] = {}
    for k, bus in enumerate(s.buses):
        for j, pid in enumerate(bus.points):
            if pid not in point_ids:
                problems.append((f"buses.{k}.points.{j}", f"unknown point {pid!r}"))
        for j, rid in enumerate(bus.routes):
            if rid not in route_ids:
                problems.append((f"buses.{k}.routes.{j}", f"unknown route {rid!r}"))
        if not bus.points and not bus.routes:
            problems.append((f"buses.{k}", "serves no point and no route"))
        if problems:
            continue
        for pid in s.points_of(bus):
            if pid in served_by:
                problems.append((f"buses.{k}",
                                 f"point {pid!r} is already served by bus {served_by[pid]!r}"))
            served_by[pid] = bus.id
    if not problems:
        for k, p in enumerate(s.points):
            if p.id not in served_by:
                problems.append((f"points.{k}.id", f"point {p.id!r} is served by no bus"))
    reserve = set(s.reserve.weekdays)
    for k, p in enumerate(s.points):
        for j, cycle in enumerate(p.cycles):
            if cycle.weekday in reserve:
                problems.append((f"points.{k}.cycles.{j}.weekday",
                                 f"{cycle.weekday} is a reserve weekday"))
    for k, day in enumerate(s.reserve.dates):
        if day in s.holidays:
            problems.append((f"reserve.dates.{k}", f"{day.isoformat()} is a public holiday"))
    return problems


def parse_schedule(data: object) -> Schedule:
    """Validate a decoded schedule; raises ConfigError naming every problem's key."""
    try:
        schedule = Schedule.model_validate(data)
    except ValidationError as err:
        raise ConfigError(plan_problems(err)) from err
    problems = cross_problems(schedule)
    if problems:
        raise ConfigError(problems)
    return schedule


def load_schedule(path: Path) -> Schedule:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([(str(path), "schedule file not found")]) from None
    except (OSError, UnicodeDecodeError, ValueError) as err:  # TOMLDecodeError is a ValueError
        raise ConfigError([(str(path), f"cannot read schedule: {err}")]) from err
    return parse_schedule(data)
