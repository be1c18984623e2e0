"""Ten simulated days against the oracle (issue 17): safe days, and an oracle never beaten."""

from __future__ import annotations

import random

import pytest

from simulators.days.evaluation import BusDay, Figures, run
from simulators.days.world import Spread, base_scenario, draw_days


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


def test_the_noon_error_breaks_down_into_causes_that_add_up(
    ten_days: tuple[Figures, list[BusDay]],
) -> None:
    _, days = ten_days
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


@pytest.mark.parametrize("bad", [
    {"temp_min": 5.0, "temp_max": -5.0}, {"noise": 1.0}, {"detour_share": 1.5},
    {"charger_share": -0.1}, {"detour_max": 0.05},
])
def test_a_spread_that_makes_no_sense_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Spread(**bad)
