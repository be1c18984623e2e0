"""Scenario files: a simulated operating day, validated before anything starts.

A scenario names the day's plan file and adds what the plan does not know:
the roads between places (road km, or 1.3 x the straight line), the weather
through the day, the pack at the start, whether the chargers work, how fast
the day runs, and faults at given local times. ``load_scenario`` reads TOML;
unknown keys are errors, and every error names its key (as ``busd
check-config`` does).
"""

from __future__ import annotations

import tomllib
from datetime import datetime, time
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from busd.errors import ConfigError
from busd.plan import Plan, haversine_m, load_plan, plan_problems

FaultKind = Literal[
    "can_silence", "gps_outage", "gps_no_fix", "broker_down", "lift_fault", "charger_fault",
    "daemon_kill",
]
# Faults that last a while; a daemon kill is instantaneous (restart_after_min says when it is back).
DURATION_FAULTS = {"can_silence", "gps_outage", "gps_no_fix", "broker_down", "lift_fault",
                   "charger_fault"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # finite


class Waypoint(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Road(_Strict):
    """The road between two places (either direction)."""

    a: str = Field(description="a place id of the plan (depot, stop or charger)")
    b: str = Field(description="the other place id")
    km: float | None = Field(default=None, gt=0, le=500,
                             description="road distance; default road_factor x straight line")
    surface: Literal["asphalt", "gravel"] = "asphalt"
    via: list[Waypoint] = Field(default_factory=list,
                                description="points the road passes, from a to b (geometry)")


class Roads(_Strict):
    factor: float = Field(default=1.3, ge=1.0, le=3.0,
                          description="road km per straight-line km where no km is given")
    asphalt_kmh: float = Field(default=70.0, gt=10, le=110, description="cruise on main roads")
    gravel_kmh: float = Field(default=45.0, gt=10, le=90, description="cruise on gravel")
    leg: list[Road] = Field(default_factory=list, description="known roads between places")


class WeatherPoint(_Strict):
    at: time
    temp_c: float = Field(ge=-50, le=50)


class Weather(_Strict):
    """Outside temperature through the day, linear between points, flat beyond."""

    points: list[WeatherPoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Weather:
        times = [p.at for p in self.points]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("weather points must be in increasing time order")
        return self

    def temp_at(self, local: time) -> float:
        x = _seconds(local)
        pts = [(_seconds(p.at), p.temp_c) for p in self.points]
        if x <= pts[0][0]:
            return pts[0][1]
        for (x0, y0), (x1, y1) in pairwise(pts):
            if x <= x1:
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        return pts[-1][1]


class Fault(_Strict):
    kind: FaultKind
    at: time = Field(description="local time of the plan's day when it starts")
    duration_min: float = Field(default=0.0, ge=0, le=600,
                                description="how long it lasts (not for daemon_kill)")
    restart_after_min: float = Field(default=5.0, ge=0, le=600,
                                     description="daemon_kill: restarted this much later")

    @model_validator(mode="after")
    def _duration(self) -> Fault:
        if self.kind in DURATION_FAULTS and self.duration_min <= 0:
            raise ValueError(f"{self.kind} needs duration_min > 0")
        return self


class Chargers(_Strict):
    reachable: bool = Field(default=True,
                            description="the plan's public chargers work and are free today")
    power_kw: float | None = Field(default=None, gt=0, le=400,
                                   description="what a charger delivers (default: the plan's)")


class Driver(_Strict):
    accept_after_s: float = Field(default=120.0, ge=0, le=3600,
                                  description="simulated seconds before the driver accepts a "
                                  "proposed plan on the display")
    lift_cycles_per_visit: int = Field(default=2, ge=0, le=20)
    depart_after_min: float = Field(default=10.0, ge=0, le=120,
                                    description="minutes the bus warms up at the depot "
                                    "after the daemon is up, at the earliest")


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    plan: Path = Field(description="the day's plan file (relative to the scenario file)")
    bus_id: str = Field(default="lv-01", pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")
    start: time = Field(default=time(7, 0), description="local time the simulation starts")
    end: time | None = Field(default=None, description="local time it stops at the latest "
                             "(default: 90 minutes after the plan's return_by)")
    speed: float = Field(default=300.0, ge=1, le=2000, description="simulated s per real s")
    initial_soc: float = Field(ge=1, le=100)
    capacity_kwh: float = Field(default=110.0, gt=0, le=1000)
    reserve_pct: float = Field(default=15.0, ge=0, le=60,
                               description="SOC the bus must keep on arrival at the depot")
    seed: int = 1
    weather: Weather
    roads: Roads = Roads()
    chargers: Chargers = Chargers()
    driver: Driver = Driver()
    faults: list[Fault] = Field(default_factory=list, max_length=50)
    expect_plan_change: bool | None = Field(
        default=None, description="what the tests expect of the planner (None: not checked)")
    expect_charging: bool | None = None

    @model_validator(mode="after")
    def _times(self) -> Scenario:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end is not after start")
        return self


def _seconds(t: time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


class LoadedScenario:
    """A scenario with its plan, and the road between any two places."""

    def __init__(self, scenario: Scenario, plan: Plan, path: Path | None) -> None:
        self.scenario = scenario
        self.plan = plan
        self.path = path
        self.places = {p.id: p for p in plan.places()}
        self._roads = {}
        for road in scenario.roads.leg:
            self._roads[(road.a, road.b)] = road
            self._roads[(road.b, road.a)] = road

    def road(self, a: str, b: str) -> tuple[float, float, list[tuple[float, float]]]:
        """(road km, cruise km/h, polyline from a to b) between two place ids."""
        pa, pb = self.places[a], self.places[b]
        road = self._roads.get((a, b))
        via = []
        if road is not None:
            via = [(w.lat, w.lon) for w in road.via]
            if road.a != a:
                via.reverse()
        line = [(pa.lat, pa.lon), *via, (pb.lat, pb.lon)]
        straight = sum(haversine_m(*p, *q) for p, q in pairwise(line)) / 1000
        roads = self.scenario.roads
        km = road.km if road is not None and road.km is not None else straight * roads.factor
        gravel = road is not None and road.surface == "gravel"
        return km, roads.gravel_kmh if gravel else roads.asphalt_kmh, line

    def at(self, local: time) -> float:
        """UTC epoch seconds of a local time on the plan's day."""
        return datetime.combine(self.plan.date, local, tzinfo=self.plan.zone).timestamp()

    def local_time(self, ts: float) -> time:
        return datetime.fromtimestamp(ts, self.plan.zone).time()

    @property
    def start_ts(self) -> float:
        return self.at(self.scenario.start)

    @property
    def end_ts(self) -> float:
        if self.scenario.end is not None:
            return self.at(self.scenario.end)
        return self.plan.at(self.plan.depot.return_by) + 5400.0

    def temp_at(self, ts: float) -> float:
        return self.scenario.weather.temp_at(self.local_time(ts))


def _problems(err: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]) or "(top level)",
             e["msg"].removeprefix("Value error, ")) for e in err.errors()]


def parse_scenario(data: dict[str, object], *, base: Path | None = None) -> LoadedScenario:
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_problems(err)) from err
    plan_path = scenario.plan if base is None or scenario.plan.is_absolute() \
        else (base / scenario.plan).resolve()
    try:
        plan = load_plan(plan_path)
    except ConfigError as err:
        raise ConfigError([(f"plan ({plan_path}): {k}", r) for k, r in err.problems]) from err
    except ValidationError as err:
        raise ConfigError([(f"plan.{k}", r) for k, r in plan_problems(err)]) from err
    scenario = scenario.model_copy(update={"plan": plan_path})
    loaded = LoadedScenario(scenario, plan, None)
    ids = set(loaded.places)
    problems = []
    for i, road in enumerate(scenario.roads.leg):
        for key in ("a", "b"):
            if getattr(road, key) not in ids:
                problems.append((f"roads.leg.{i}.{key}",
                                 f"no place {getattr(road, key)!r} in the plan"))
    if problems:
        raise ConfigError(problems)
    return loaded


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read and validate a scenario file; ConfigError names every problem's key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([(str(path), "file not found")]) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([(str(path), f"not valid TOML: {err}")]) from err
    loaded = parse_scenario(data, base=path.resolve().parent)
    loaded.path = path
    return loaded
