from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from datetime import time
from typing import Any

import pytest

from busd.config import PlannerConfig
from busd.errors import ConfigError
from busd.plan import haversine_m, load_plan, parse_plan
from busd.planner.core import PlannerCore
from tests.conftest import REPO

PLAN_FILE = REPO / "config" / "plans" / "livani-winter.toml"

# A change to a plan document, in place.
Edit = Callable[[dict[str, Any]], object]


@pytest.fixture
def raw() -> dict[str, Any]:
    return tomllib.loads(PLAN_FILE.read_text())


def test_shipped_plan_loads() -> None:
    plan = load_plan(PLAN_FILE)
    assert [s.id for s in plan.stops] == ["rozupe", "rudzati", "turki", "jersika", "sutri"]
    assert plan.stop("rudzati").must_serve
    # 07:30 in Riga in December is 05:30 UTC
    assert plan.at(plan.depot.leave_at) % 86400 == 5.5 * 3600


def mutate(raw: dict[str, Any], edit: Edit) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (lambda d: d["stops"][0].update(planned_min=-5), "stops.0.planned_min", "greater than 0"),
        (lambda d: d["stops"][0].update(min_min=200), "stops.0", "min_min is longer"),
        (lambda d: d["stops"][1].update(window={"earliest": "08:10:00", "latest": "09:00:00"}),
         "(plan)", "overlap"),
        (lambda d: d["stops"][2].update(id="rozupe"), "(plan)", "more than once: rozupe"),
        (lambda d: d.update(version=0), "version", "greater than or equal to 1"),
        (lambda d: d["stops"][0].update(lat=123), "stops.0.lat", "less than or equal to 90"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone", "unknown time zone"),
        (lambda d: d.update(colour="red"), "colour", "Extra inputs"),
    ],
)
def test_bad_plans_are_rejected_with_the_field(raw: dict[str, Any], edit: Edit, key: str,
                                               reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_plan(mutate(raw, edit))
    assert any(k == key and reason in r for k, r in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_a_number_that_is_not_finite_is_refused(raw: dict[str, Any], number: str) -> None:
    """``leg_km: 1e400`` parses as infinity (json.loads reads NaN and Infinity too); the
    plan would then be published as ``Infinity``, which is not JSON."""
    text = json.dumps(mutate(raw, lambda d: d["stops"][1].update(leg_km=12.5)), default=str)
    text = text.replace('"leg_km": 12.5', f'"leg_km": {number}')
    with pytest.raises(ConfigError) as caught:
        parse_plan(json.loads(text))
    assert any(k == "stops.1.leg_km" and "finite number" in r
               for k, r in caught.value.problems), caught.value.problems


def test_a_plan_from_the_office_with_an_infinite_leg_is_rejected(raw: dict[str, Any]) -> None:
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    plan = load_plan(PLAN_FILE)
    text = json.dumps(mutate(raw, lambda d: d.update(version=plan.version + 1)), default=str)
    text = text.replace('"planned_min": 60', '"leg_km": 1e400, "planned_min": 60', 1)
    assert "1e400" in text
    result, out = core.replace_plan(json.loads(text), today=plan.date, now=plan.at(time(7)))
    assert not result.accepted and out == []
    assert any(key.endswith("leg_km") for key, _ in result.problems), result.problems


def test_haversine_livani_to_preili() -> None:
    # Līvāni → Preiļi is about 34 km as the crow flies.
    assert 33_000 < haversine_m(56.3543, 26.1758, 56.2944, 26.7246) < 35_000
