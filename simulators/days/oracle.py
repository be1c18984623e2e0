"""The oracle: the best plan of a day for a planner that knew the day's true consumption.

At the moment the bus leaves the depot, with the SOC it leaves with, the planner's own
problem (:func:`busd.planner.projection.build`: reserve, arrival windows, must-serve stops,
minimum minutes, the chargers that work today) is solved by the planner's exact search
(:func:`busd.planner.search.best_plan`) with the truth in place of the model: the day's
measured kWh per km and on-site kW, the real road km (detours included), and no safety
margin above the reserve (perfect knowledge needs none).

Judged by the same objective, no plan the bus really drove that day can beat it: the check
:func:`planner_key` gives the bus's own day as the oracle's instance scores it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from busd.config import PlannerConfig
from busd.planner.energy import EnergyModel
from busd.planner.model import Evaluation, Instance, evaluate
from busd.planner.projection import Progress, Situation, build, initial_itinerary
from busd.planner.search import best_plan
from simulators.days.bus import DayOutcome
from simulators.scenario.model import LoadedScenario


class TrueRates(EnergyModel):
    """The day's real consumption, known in advance, with no margin for error."""

    def __init__(self, config: PlannerConfig, drive_kwh_per_km: float, site_kw: float) -> None:
        super().__init__(config)
        self._true_drive, self._true_site = drive_kwh_per_km, site_kw

    def drive_kwh_per_km(self, outside_temp: float) -> float:
        return self._true_drive

    def site_kw(self, outside_temp: float) -> float:
        return self._true_site

    def margin_pct(self, remaining_kwh: float) -> float:
        return 0.0


@dataclass(frozen=True)
class OracleDay:
    best: Evaluation
    instance: Instance
    node_ids: tuple[str, ...]

    @property
    def minutes(self) -> float:
        return sum(self.best.minutes.values())

    @property
    def skipped(self) -> int:
        return self.instance.n - sum(1 for v in self.best.seq if not self.instance.is_charger(v))


def oracle_day(loaded: LoadedScenario, day: DayOutcome, config: PlannerConfig) -> OracleDay:
    plan = loaded.plan
    depot = plan.depot
    truth = TrueRates(config, day.drive_kwh_per_km, day.site_kw)
    sit = Situation(day.departure_ts, day.departure_soc, loaded.temp_at(day.departure_ts),
                    depot.lat, depot.lon)
    built = build(plan, initial_itinerary(plan), Progress(place=depot.id), sit, truth, config)
    ids = built.node_ids
    here = [depot.id, *ids[1:]]
    dist = tuple(
        tuple(0.0 if i == j or j == 0 else loaded.road(a, b)[0] for j, b in enumerate(here))
        for i, a in enumerate(here)
    )
    inst = replace(built.instance, dist=dist)
    return OracleDay(best_plan(inst, exact_max_stops=config.exact_max_stops), inst, ids)


def planner_key(oracle: OracleDay, day: DayOutcome) -> Evaluation:
    """The bus's day (stops and charger in the order it left them, the minutes it served,
    in whole visit steps) as the oracle's instance judges it."""
    inst = oracle.instance
    seq = tuple(oracle.node_ids.index(p) for p in day.order if p in oracle.node_ids)
    minutes = {
        v: math.floor(day.served.get(oracle.node_ids[v], 0.0) / inst.step_min + 1e-6)
        * inst.step_min
        for v in seq if not inst.is_charger(v)
    }
    return evaluate(inst, seq, minutes)
