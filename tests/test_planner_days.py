"""Ten simulated days against the oracle (issue 17): safe days, and an oracle never beaten."""

from __future__ import annotations

import itertools
import random

import pytest

from simulators.days.evaluation import BusDay, Figures, run
from simulators.days.world import DaySpec, Spread, base_scenario, draw_days


@pytest.fixture(scope="module")
def ten_days() -> tuple[Figures, list[BusDay]]:
    return run(10, seed=3, warmup_days=5)


def test_ten_days_end_above_the_reserve_and_the_oracle_is_never_beaten(
    ten_days: tuple[Figures, list[BusDay]],
) -> None:
    figures, days = ten_days
    assert len(days) == 20 and figures.days == 10
    for day in days:
        label = f"{day.bus} {day.spec.label()}"
        assert day.end_margin >= -1.0, label
        assert day.oracle.best.safe, label
        assert day.oracle_not_worse(), label
        # what the bus served fits the day: never more than planned, never an unknown stop
        assert set(day.outcome.served) <= {s.id for s in day.oracle.instance.stops}, label
    assert figures.days_below_reserve == 0 and figures.oracle_violations == 0
    assert 0 < figures.minutes_ratio <= 1.2


@pytest.fixture(scope="module")
def ten_changing_days() -> tuple[Figures, list[BusDay]]:
    """Ten days whose detours are drawn afresh each day: each is news at noon."""
    return run(10, seed=3, warmup_days=5, spread=Spread(detour_days=1.0))


def test_the_noon_error_breaks_down_into_causes_that_add_up(
    ten_changing_days: tuple[Figures, list[BusDay]],
) -> None:
    _, days = ten_changing_days
    for day in days:
        label = f"{day.bus} {day.spec.label()}"
        noon, projected = day.noon, day.outcome.noon_projection
        assert noon is not None and projected is not None, label
        # the breakdown starts from the projection the planner showed (rounded to 0.01)
        assert noon.error == pytest.approx(projected - day.outcome.end_soc, abs=0.02), label
        parts = noon.roads + noon.drive + noon.site + noon.plan
        assert parts == pytest.approx(noon.error, abs=1e-9), label
        if not day.spec.detours:  # no detour today: the roads are the planner's own error
            assert abs(noon.roads) < 2.0, label
    # a day with a detour on the afternoon's roads shows it as a cost of the roads
    assert any(d.noon is not None and d.noon.roads > 0.5 for d in days if d.spec.detours)


def test_the_days_detours_follow_the_options() -> None:
    none = draw_days(random.Random(1), 20, Spread(detour_share=0.0))
    assert all(not day.detours for day in none)
    every = draw_days(random.Random(1), 20, Spread(detour_share=1.0, detour_max=0.2))
    roads = len(base_scenario().scenario.roads.leg)
    for day in every:
        assert len(day.detours) == roads
        assert all(1.1 <= factor <= 1.2 for _, _, factor in day.detours)


def _road_days(days: list[DaySpec]) -> tuple[float, float]:
    """The share of roads with a detour over ``days``, and of a road's days that are as the
    day before (the same detour, or none)."""
    roads = len(base_scenario().scenario.roads.leg)
    states = [{(a, b): f for a, b, f in day.detours} for day in days]
    detoured = sum(len(s) for s in states) / (roads * len(states))
    pairs = list(itertools.pairwise(states))
    same = sum(sum(1 for road in {*before, *after} if before.get(road) == after.get(road))
               + roads - len({*before, *after}) for before, after in pairs)
    return detoured, same / (roads * len(pairs))


def test_road_works_last_for_days_and_keep_the_share_of_roads_detoured() -> None:
    lasting = draw_days(random.Random(5), 400, Spread(detour_days=14.0))
    share, same = _road_days(lasting)
    assert share == pytest.approx(0.2, abs=0.05)
    assert same > 0.9  # a state lasts 14 days: 13 of 14 days are as the day before
    daily = draw_days(random.Random(5), 400, Spread(detour_days=1.0))
    share, same = _road_days(daily)
    assert share == pytest.approx(0.2, abs=0.05)
    assert same < 0.75  # drawn afresh: a road is as the day before when it is clear twice
    # the days go on from a day before them (the warm-up's), its works still there
    after = draw_days(random.Random(6), 1, Spread(detour_days=1000.0), yesterday=lasting[-1])
    assert after[0].detours == lasting[-1].detours


@pytest.mark.parametrize("bad", [
    {"temp_min": 5.0, "temp_max": -5.0}, {"noise": 1.0}, {"detour_share": 1.5},
    {"charger_share": -0.1}, {"detour_max": 0.05}, {"detour_days": 0.5},
])
def test_a_spread_that_makes_no_sense_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Spread(**bad)
