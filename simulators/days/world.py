"""The days to simulate: a seeded distribution of weather, consumption, roads and chargers.

Every day is a variation of the demo's winter scenario (scenarios/winter-livani-charger.toml:
the Līvāni plan, its roads and its charger): the outside temperature through the day is the
scenario's curve moved to a base temperature drawn from ``temp_min..temp_max``; the bus
consumes more or less than its nominal physics on the road (rolling and air resistance)
and on site (heating), each by a factor drawn from ``1 ± noise``; some roads carry a detour;
the public charger works or not. The planner knows none of this beforehand: it has its
seeded or learned energy model, the plan's leg lengths and the temperature it reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from simulators.can.model import VehicleParams
from simulators.scenario.model import LoadedScenario, Road, Weather, WeatherPoint, load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASE_SCENARIO = ROOT / "scenarios" / "winter-livani-charger.toml"
DETOUR_MIN = 0.1  # a detour makes a road at least this much longer


@dataclass(frozen=True)
class Spread:
    """The distribution of days (the benchmark's options)."""

    temp_min: float = -25.0
    temp_max: float = 25.0
    noise: float = 0.15  # consumption and heating: factor within 1 ± noise
    detour_share: float = 0.2  # share of roads with a detour on a given day
    detour_max: float = 0.4  # a detour makes a road up to this much longer
    # A road's state (its detour, or none) lasts this many days on average: road works stay
    # for weeks. 1: every day is drawn afresh, no detour says anything of tomorrow's.
    detour_days: float = 14.0
    charger_share: float = 0.5  # share of days the public charger works

    def __post_init__(self) -> None:
        if self.temp_max < self.temp_min:
            raise ValueError("temp_min must not exceed temp_max")
        if not 0 <= self.noise < 1:
            raise ValueError("noise must be in 0..1 (a share, below 1)")
        if not 0 <= self.detour_share <= 1 or not 0 <= self.charger_share <= 1:
            raise ValueError("detour_share and charger_share must be in 0..1")
        if self.detour_max < DETOUR_MIN:
            raise ValueError(f"detour_max must be at least {DETOUR_MIN} (the shortest detour)")
        if not self.detour_days >= 1:
            raise ValueError("detour_days must be at least 1 (a new draw every day)")

    @property
    def detour_keep(self) -> float:
        """The chance that a road stays as it was yesterday; else it is drawn again (a
        detour with the share ``detour_share``), so that a state lasts ``detour_days``."""
        return 1.0 - 1.0 / self.detour_days


@dataclass(frozen=True)
class DaySpec:
    """One day's truth, which the planner has to find out as the day goes."""

    index: int
    temp_c: float  # at the start of the day; the curve follows the scenario's shape
    drive_factor: float  # road consumption against the nominal physics
    heat_factor: float  # heating against the nominal heater
    detours: tuple[tuple[str, str, float], ...]  # (a, b, factor) roads made longer
    charger: bool  # the public charger works

    def label(self) -> str:
        return (f"day {self.index}: {self.temp_c:+.1f} °C, road x{self.drive_factor:.2f}, "
                f"heating x{self.heat_factor:.2f}, {len(self.detours)} detour(s), "
                f"charger {'works' if self.charger else 'out'}")


def base_scenario() -> LoadedScenario:
    return load_scenario(BASE_SCENARIO)


def draw_days(rng: random.Random, count: int, spread: Spread,
              base: LoadedScenario | None = None, *, first: int = 0,
              yesterday: DaySpec | None = None) -> list[DaySpec]:
    """``count`` days numbered from ``first`` (the day's date: the plan's plus its number),
    the roads going on from ``yesterday``'s (None: the first day's roads all drawn)."""
    base = base or base_scenario()
    roads = [(r.a, r.b) for r in base.scenario.roads.leg]
    before = None if yesterday is None else {(a, b): f for a, b, f in yesterday.detours}
    days = []
    for index in range(first, first + count):
        before = _roads_today(rng, roads, spread, before)
        days.append(DaySpec(
            index=index,
            temp_c=rng.uniform(spread.temp_min, spread.temp_max),
            drive_factor=1.0 + rng.uniform(-spread.noise, spread.noise),
            heat_factor=1.0 + rng.uniform(-spread.noise, spread.noise),
            detours=tuple((a, b, f) for (a, b), f in before.items()),
            charger=rng.random() < spread.charger_share,
        ))
    return days


def _roads_today(rng: random.Random, roads: list[tuple[str, str]], spread: Spread,
                 before: dict[tuple[str, str], float] | None) -> dict[tuple[str, str], float]:
    """Today's detours (road -> length factor): each road as it was yesterday with the
    chance ``detour_keep``, else drawn again. With ``detour_days`` 1 nothing is kept, and
    the draws are exactly those of a harness whose every day was independent."""
    keep = spread.detour_keep
    today = {}
    for road in roads:
        if before is not None and keep > 0 and rng.random() < keep:
            if road in before:
                today[road] = before[road]
        elif rng.random() < spread.detour_share:
            today[road] = 1.0 + rng.uniform(DETOUR_MIN, spread.detour_max)
    return today


def scenario_of(spec: DaySpec, base: LoadedScenario) -> LoadedScenario:
    """The base scenario as this day is: weather, roads, charger (the plan loses a charger
    that does not work today, as the scenario runner's plan file does)."""
    sc = base.scenario
    first = sc.weather.points[0].temp_c
    weather = Weather(points=[WeatherPoint(at=p.at, temp_c=spec.temp_c + p.temp_c - first)
                              for p in sc.weather.points])
    factors = {(a, b): f for a, b, f in spec.detours}
    legs = []
    for road in sc.roads.leg:
        f = factors.get((road.a, road.b))
        if f is not None:
            km, _, _ = base.road(road.a, road.b)
            road = Road(a=road.a, b=road.b, km=round(km * f, 2), surface=road.surface,
                        via=road.via)
        legs.append(road)
    scenario = sc.model_copy(update={
        "weather": weather,
        "roads": sc.roads.model_copy(update={"leg": legs}),
        "chargers": sc.chargers.model_copy(update={"reachable": spec.charger}),
        "faults": [],
    })
    plan = base.plan.model_copy(update={"date": base.plan.date + timedelta(days=spec.index)})
    if not spec.charger:
        plan = plan.model_copy(update={"chargers": []})
    loaded = LoadedScenario(scenario, plan, base.path)
    loaded.places = base.places  # the roads to the charger stay known, worked or not
    return loaded


def vehicle_of(spec: DaySpec) -> VehicleParams:
    """The bus as it consumes today: resistances and heater scaled by the day's factors."""
    nominal = VehicleParams()
    return replace(
        nominal,
        crr=nominal.crr * spec.drive_factor,
        cda_m2=nominal.cda_m2 * spec.drive_factor,
        hvac_kw_per_k=nominal.hvac_kw_per_k * spec.heat_factor,
        hvac_max_kw=nominal.hvac_max_kw * spec.heat_factor,
        cooling_kw_per_k=nominal.cooling_kw_per_k * spec.heat_factor,
    )
