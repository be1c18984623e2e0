"""The planner keeps an office plan for a later day until its day, versions count per day,
and a plan for a day that has passed is expired."""

from __future__ import annotations

from datetime import date
from typing import Any

from busd.config import PlannerConfig
from busd.planner.core import PlannerCore

TODAY = date(2026, 12, 14)


def doc(day: date, version: int) -> dict[str, Any]:
    return {"date": day.isoformat(), "version": version, "stops": [],
            "depot": {"id": "livani", "name": "Līvāni", "lat": 56.3543, "lon": 26.1758}}


def test_a_later_days_plan_is_kept_until_its_day() -> None:
    core = PlannerCore(PlannerConfig(), bus_id="lv-07")
    today, _ = core.replace_plan(doc(TODAY, 3), now=0, today=TODAY)
    assert today.accepted and today.scheduled is None
    assert core.plan is not None and core.plan.version == 3

    later, out = core.replace_plan(doc(date(2026, 12, 16), 1), now=0, today=TODAY)
    assert later.accepted and later.scheduled == date(2026, 12, 16) and out == []
    assert core.plan.date == TODAY  # today's plan is still followed
    # Versions count per day: version 1 for the 16th was above nothing; not again.
    again, _ = core.replace_plan(doc(date(2026, 12, 16), 1), now=0, today=TODAY)
    assert not again.accepted and again.problems[0][0] == "version"
    newer, _ = core.replace_plan(doc(date(2026, 12, 16), 2), now=0, today=TODAY)
    assert newer.accepted

    assert core.take_scheduled(date(2026, 12, 15)) is None
    kept = core.take_scheduled(date(2026, 12, 16))
    assert kept is not None and kept.version == 2
    assert core.scheduled == {}


def test_plans_kept_for_days_that_passed_are_dropped() -> None:
    core = PlannerCore(PlannerConfig(), bus_id="lv-07")
    core.replace_plan(doc(date(2026, 12, 15), 1), now=0, today=TODAY)
    assert core.take_scheduled(date(2026, 12, 17)) is None
    assert core.scheduled == {}


def test_a_plan_for_a_day_that_passed_is_expired() -> None:
    core = PlannerCore(PlannerConfig(), bus_id="lv-07")
    result, out = core.replace_plan(doc(date(2026, 12, 13), 9), now=0, today=TODAY)
    assert not result.accepted and out == []
    assert result.problems == [("date", "expired: plan is for 2026-12-13, today is 2026-12-14")]
