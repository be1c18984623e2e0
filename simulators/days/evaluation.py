"""Many days, two buses, the oracle beside each: the planner's figures (issue 17).

Two buses run the same days: one starts with the seeded energy model, one with a model
that has learned over ``warmup_days`` earlier days (drawn from the same distribution with
another seed). Both go on learning from day to day. For each bus-day the oracle
(:mod:`simulators.days.oracle`) gives the best the day allowed; :class:`Figures` compares.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from busd.config import PlannerConfig
from busd.planner.energy import EnergyModel
from simulators.days.bus import DayOutcome, run_day
from simulators.days.noon import NoonBreakdown, noon_breakdown
from simulators.days.oracle import OracleDay, oracle_day, planner_key
from simulators.days.world import DaySpec, Spread, base_scenario, draw_days, scenario_of, vehicle_of
from simulators.scenario.model import LoadedScenario


@dataclass(frozen=True)
class BusDay:
    bus: str  # "seeded" | "learned"
    spec: DaySpec
    outcome: DayOutcome
    oracle: OracleDay
    reserve_pct: float
    noon: NoonBreakdown | None = None  # the noon projection's error, cause by cause

    @property
    def end_margin(self) -> float:
        return self.outcome.end_soc - self.reserve_pct

    @property
    def planner_skipped(self) -> int:
        return self.oracle.instance.n - len(self.outcome.served)

    def oracle_not_worse(self) -> bool:
        """The oracle's check: no itinerary the bus drove scores above the oracle's."""
        mine = planner_key(self.oracle, self.outcome)
        return not mine.safe or self.oracle.best.key >= mine.key


class Figures(BaseModel):
    """The benchmark's JSON (``days`` counts days; each day is run by both buses)."""

    model_config = ConfigDict(extra="forbid")
    days: int
    minutes_ratio: float  # minutes served / the oracle's, over all bus-days
    days_below_reserve: int  # bus-days ending more than 1 point below the reserve
    worst_end_margin_pct: float  # lowest end-of-day SOC minus the reserve
    skipped_vs_oracle: int  # stops skipped by the planner minus by the oracle, all bus-days
    noon_error_p50_pct: float  # |projected depot SOC at noon - actual|
    noon_error_p95_pct: float
    proposals_per_day: float  # per bus-day
    oracle_violations: int  # bus-days where the bus's own day scored above the oracle
    minutes_ratio_seeded: float
    minutes_ratio_learned: float


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _ratio(days: list[BusDay]) -> float:
    oracle = sum(d.oracle.minutes for d in days)
    return sum(d.outcome.minutes for d in days) / oracle if oracle > 0 else 1.0


def figures(days: list[BusDay], count: int) -> Figures:
    errors = [abs(d.outcome.noon_projection - d.outcome.end_soc) for d in days
              if d.outcome.noon_projection is not None]
    return Figures(
        days=count,
        minutes_ratio=round(_ratio(days), 4),
        days_below_reserve=sum(1 for d in days if d.end_margin < -1.0),
        worst_end_margin_pct=round(min(d.end_margin for d in days), 2),
        skipped_vs_oracle=sum(d.planner_skipped - d.oracle.skipped for d in days),
        noon_error_p50_pct=round(_quantile(errors, 0.5), 2),
        noon_error_p95_pct=round(_quantile(errors, 0.95), 2),
        proposals_per_day=round(sum(d.outcome.proposals for d in days) / len(days), 2),
        oracle_violations=sum(1 for d in days if not d.oracle_not_worse()),
        minutes_ratio_seeded=round(_ratio([d for d in days if d.bus == "seeded"]), 4),
        minutes_ratio_learned=round(_ratio([d for d in days if d.bus == "learned"]), 4),
    )


async def _day(bus: str, spec: DaySpec, base: LoadedScenario, energy: EnergyModel,
               config: PlannerConfig) -> BusDay:
    loaded = scenario_of(spec, base)
    outcome = await run_day(loaded, energy, config, vehicle=vehicle_of(spec))
    noon = None
    if outcome.noon_built is not None and outcome.truth is not None:
        noon = noon_breakdown(loaded, outcome.noon_built, outcome.truth, outcome.end_soc)
    return BusDay(bus, spec, outcome, oracle_day(loaded, outcome, config), config.reserve_pct,
                  noon)


async def evaluate_days(count: int, *, seed: int = 1, spread: Spread | None = None,
                        config: PlannerConfig | None = None,
                        warmup_days: int = 30) -> list[BusDay]:
    spread = spread or Spread()
    config = config or PlannerConfig()
    base = base_scenario()
    learned = EnergyModel(config)
    warmup = draw_days(random.Random(seed + 1_000_003), warmup_days, spread, base,
                       first=-warmup_days)
    for spec in warmup:
        await run_day(scenario_of(spec, base), learned, config, vehicle=vehicle_of(spec))
    seeded = EnergyModel(config)
    out: list[BusDay] = []
    # The days go on from the warm-up's roads: its road works are still there.
    for spec in draw_days(random.Random(seed), count, spread, base,
                          yesterday=warmup[-1] if warmup else None):
        out.append(await _day("seeded", spec, base, seeded, config))
        out.append(await _day("learned", spec, base, learned, config))
    return out


def run(count: int, *, seed: int = 1, spread: Spread | None = None,
        config: PlannerConfig | None = None, warmup_days: int = 30) -> tuple[Figures, list[BusDay]]:
    days = asyncio.run(evaluate_days(count, seed=seed, spread=spread, config=config,
                                     warmup_days=warmup_days))
    return figures(days, count), days
