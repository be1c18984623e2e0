"""The day's stop plan: where the bus goes, for how long, and where it can charge.

One model serves the tracker (stops and their geofences, to recognise visits),
the planner (durations, priorities, windows, chargers, to keep the day safe)
and the office (``cmd/plan`` payloads and the retained ``plan`` topic). A plan
comes from a file for the day or from the office; either way it is validated
here, and every problem names its field.

Times of day are local (the plan's time zone, Europe/Riga by default); stored
and published timestamps are UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from busd.errors import ConfigError

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
PlaceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


# An IANA zone name the system knows (Europe/Riga): the plan's, a schedule's, a municipality's.
TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
EARTH_RADIUS_M = 6_371_008.8


class _Strict(BaseModel):
    # allow_inf_nan=False: ``leg_km: 1e400`` parses as infinity, which is not JSON and
    # would reach the retained plan and the display.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Place(_Strict):
    id: PlaceId
    name: str = Field(min_length=1, max_length=80)
    lat: Latitude
    lon: Longitude
    geofence_m: float = Field(default=150.0, gt=10, le=2000, description="radius of the site")

    def distance_m(self, lat: float, lon: float) -> float:
        return haversine_m(self.lat, self.lon, lat, lon)


class ArrivalWindow(_Strict):
    earliest: time
    latest: time

    @model_validator(mode="after")
    def _ordered(self) -> ArrivalWindow:
        if self.latest < self.earliest:
            raise ValueError("latest is before earliest")
        return self


class ServedPlace(Place):
    """A place the bus serves: how long on site, how important, when it is expected. A plan's
    stop is one, and so is a municipality's service point (office/schedule/model.py)."""

    window: ArrivalWindow | None = Field(default=None, description="announced arrival window")
    planned_min: float = Field(gt=0, le=720, description="planned minutes on site")
    min_min: float = Field(ge=0, le=720, description="shortest acceptable visit, minutes")
    priority: int = Field(default=5, ge=1, le=10, description="10 = most important")
    must_serve: bool = False

    @model_validator(mode="after")
    def _durations(self) -> ServedPlace:
        if self.min_min > self.planned_min:
            raise ValueError("min_min is longer than planned_min")
        return self


class Stop(ServedPlace):
    leg_km: float | None = Field(
        default=None, gt=0, description="road km from the previous place, when known"
    )
    cycle: Literal["weekly", "fortnightly", "monthly"] | None = Field(
        default=None, description="how often the village is served"
    )


class Depot(Place):
    leave_at: time = time(7, 30)
    return_by: time = time(17, 0)
    return_leg_km: float | None = Field(default=None, gt=0)


class Charger(Place):
    power_kw: float = Field(gt=0, le=400)
    opens: time = time(0, 0)
    closes: time = time(23, 59)


class PlannedCharge(_Strict):
    """A charging stop the office planned: at a known charger, after a stop (or the depot)."""

    charger: PlaceId = Field(description="id of one of the plan's chargers")
    after: PlaceId = Field(description="id of the stop it follows, or the depot's id")
    minutes: float = Field(gt=0, le=600, description="planned minutes at the charger")


class Plan(_Strict):
    bus: str | None = Field(default=None, description="the bus it is for; None = any")
    date: date
    version: int = Field(ge=1, description="must increase with every replacement")
    timezone: TimeZoneName = "Europe/Riga"
    depot: Depot
    stops: list[Stop] = Field(max_length=40)
    chargers: list[Charger] = Field(default_factory=list, max_length=20)
    charging: list[PlannedCharge] = Field(
        default_factory=list, max_length=1, description="a planned charging stop, if any"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        ids = [self.depot.id, *(s.id for s in self.stops), *(c.id for c in self.chargers)]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"ids used more than once: {', '.join(duplicates)}")
        if self.depot.return_by <= self.depot.leave_at:
            raise ValueError("depot.return_by is not after depot.leave_at")
        previous: Stop | None = None
        for stop in self.stops:
            if (
                stop.window is not None
                and previous is not None
                and previous.window is not None
                and stop.window.earliest < previous.window.latest
            ):
                raise ValueError(
                    f"arrival windows of {previous.id} and {stop.id} overlap or are out of order"
                )
            if stop.window is not None:
                previous = stop
        charger_ids = {c.id for c in self.chargers}
        place_ids = {self.depot.id, *(s.id for s in self.stops)}
        for k, planned in enumerate(self.charging):
            if planned.charger not in charger_ids:
                raise ValueError(f"charging.{k}: unknown charger {planned.charger!r}")
            if planned.after not in place_ids:
                raise ValueError(f"charging.{k}: unknown stop {planned.after!r}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def at(self, clock_time: time) -> float:
        """UTC epoch seconds of a local time of day on the plan's date."""
        return datetime.combine(self.date, clock_time, tzinfo=self.zone).timestamp()

    def local_date(self, ts: float) -> dt.date:  # dt.: the field ``date`` shadows the type
        return datetime.fromtimestamp(ts, self.zone).date()

    def stop(self, stop_id: str) -> Stop:
        for stop in self.stops:
            if stop.id == stop_id:
                return stop
        raise KeyError(stop_id)

    def places(self) -> list[Place]:
        return [self.depot, *self.stops, *self.chargers]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def plan_problems(err: ValidationError) -> list[tuple[str, str]]:
    return [
        (".".join(str(p) for p in e["loc"]) or "(plan)", e["msg"].removeprefix("Value error, "))
        for e in err.errors()
    ]


def parse_plan(data: object) -> Plan:
    """Validate a plan from decoded JSON/TOML; raises ConfigError naming each field."""
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        raise ConfigError(plan_problems(err)) from err


def load_plan(path: Path) -> Plan:
    """A plan file: TOML (``.toml``) or JSON."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise ConfigError([(str(path), "plan file not found")]) from None
    except (OSError, UnicodeDecodeError, ValueError) as err:  # TOMLDecodeError is a ValueError
        raise ConfigError([(str(path), f"cannot read plan: {err}")]) from err
    return parse_plan(data)


def day_bounds(plan: Plan) -> tuple[float, float]:
    """UTC epoch seconds of the local midnight starting and ending the plan's day."""
    start = datetime.combine(plan.date, time(0), tzinfo=plan.zone)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def day_problem(plan: Plan, today: date) -> str | None:
    """The one rule for the day a plan from the office may be for (None: acceptable).

    Today or a later day, in the plan's own time zone (``today =
    plan.local_date(now)``); a plan for a day that has passed is expired. Both the
    command dispatcher (``cmd/plan``) and the planner apply this one function, so
    they cannot disagree. The planner follows a plan for today at once and keeps
    one for a later day until that day (:func:`is_future`): the office may send a
    day's plan ahead, and a bus that is offline gets it when it reconnects.
    """
    if plan.date < today:
        return f"expired: plan is for {plan.date.isoformat()}, today is {today.isoformat()}"
    return None


def is_future(plan: Plan, today: date) -> bool:
    """A plan for a later day: kept until its day, not followed now."""
    return plan.date > today


def validate_for_bus(
    plan: Plan, bus_id: str, today: date, current_version: int | None
) -> list[tuple[str, str]]:
    """Problems with a valid plan that only the receiving bus can see (empty: acceptable).

    A plan from the office must be for this bus (or any bus), for today or a later
    day (see :func:`day_problem`: the plan's own time zone decides what "today" is,
    pass the local date), and newer than the plan the bus has for that day
    (``current_version``: None when it has none for the plan's day).
    """
    problems: list[tuple[str, str]] = []
    if plan.bus is not None and plan.bus != bus_id:
        problems.append(("bus", f"plan is for bus {plan.bus!r}, this is {bus_id!r}"))
    wrong_day = day_problem(plan, today)
    if wrong_day is not None:
        problems.append(("date", wrong_day))
    if current_version is not None and plan.version <= current_version:
        problems.append(
            ("version", f"version {plan.version} is not newer than the current {current_version}")
        )
    return problems
