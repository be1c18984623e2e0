"""The air conditioning of a hot day is in the planner's energy model (issue 17).

The vehicle cools its cabin above 24 °C (simulators/can/model.py, about 0.12 kW per kelvin,
standing or driving). A model that knew only heating projected a hot afternoon as if the
bus drew its base load alone, and came home a point or more below what noon said.
"""

from __future__ import annotations

from datetime import date, time

import pytest
from pydantic import ValidationError

from busd.config import PlannerConfig
from busd.plan import load_plan
from busd.planner.core import PlannerCore
from busd.planner.energy import EnergyModel
from busd.planner.projection import Progress, Situation, build, initial_itinerary
from busd.planner.proposal import Proposal
from tests.conftest import REPO
from tests.progress_helpers import serve

PLAN_FILE = REPO / "config" / "plans" / "livani-winter.toml"


def test_the_seeds_count_cooling_per_kelvin_above_its_line_on_site_and_driving() -> None:
    cfg = PlannerConfig()
    model = EnergyModel(cfg)
    assert cfg.cooling_above_c == 24.0
    # At the line and below it (down to the heating's references): no cooling.
    assert model.seed_site_kw(24.0) == pytest.approx(cfg.site_kw)
    assert model.seed_drive_kwh_per_km(20.0) == pytest.approx(cfg.drive_kwh_per_km)
    # Six kelvins above it: six times the seed's kW per kelvin, standing and driving.
    assert model.seed_site_kw(30.0) == pytest.approx(cfg.site_kw + 6 * cfg.site_cooling_kw_per_k)
    assert model.seed_drive_kwh_per_km(30.0) == pytest.approx(
        cfg.drive_kwh_per_km + 6 * cfg.drive_cooling_kwh_per_km_per_k)
    assert cfg.site_cooling_kw_per_k > 0 and cfg.drive_cooling_kwh_per_km_per_k > 0
    assert (model.climate(-5.0), model.climate(20.0), model.climate(30.0)) == (
        "heating", "neither", "cooling")


def test_a_mild_morning_does_not_hide_a_hot_afternoons_cooling_from_the_projection() -> None:
    """The day's visits at 22 °C (no cooling) said the bus draws what the seed says; at noon
    it is 29 °C. The projection's on-site kW has the cooling in it: five kelvins above the
    line. Without the seed's cooling, the morning's lesson (ratio 1) held for the hot
    afternoon too, and noon projected the base load alone."""
    cfg = PlannerConfig()
    model = EnergyModel(cfg)
    model.start_day(date(2026, 7, 1))
    for _ in range(2):
        assert model.learn_visit(60, model.seed_site_kw(22.0), 22.0)
        assert model.learn_leg(20, model.seed_drive_kwh_per_km(22.0) * 20, 22.0)
    plan = load_plan(PLAN_FILE)
    rudzati = plan.stop("rudzati")
    sit = Situation(plan.at(time(12, 0)), 60.0, 29.0, rudzati.lat, rudzati.lon)
    progress = Progress(frozenset({"rozupe"}), "rudzati", plan.at(time(10, 0)), "rudzati")
    built = build(plan, initial_itinerary(plan), progress, sit, model, cfg)
    assert built.site_kw == pytest.approx(cfg.site_kw + 5 * cfg.site_cooling_kw_per_k, rel=0.01)
    assert built.climate == "cooling"
    mild = build(plan, initial_itinerary(plan), progress,
                 Situation(sit.now, sit.soc, 22.0, sit.lat, sit.lon), model, cfg)
    assert built.project().depot_soc < mild.project().depot_soc - 1.0


def test_hot_days_of_every_heat_teach_a_model_that_projects_the_next_one() -> None:
    """A bus whose air conditioning draws a fifth more than the seed says, on days from 25 to
    31 °C: what the model learned from them projects a 32 °C afternoon within a few per cent.
    A model with no cooling in its seed (its factor the same at every heat) learns the mean
    of those days, and its 32 °C afternoon is a fifth short."""
    cfg = PlannerConfig()

    def site_truth(temp: float) -> float:
        return cfg.site_kw + 1.2 * cfg.site_cooling_kw_per_k * max(0.0, temp - 24.0)

    def drive_truth(temp: float) -> float:
        return cfg.drive_kwh_per_km + 1.2 * cfg.drive_cooling_kwh_per_km_per_k * max(
            0.0, temp - 24.0)

    def taught(config: PlannerConfig) -> EnergyModel:
        model = EnergyModel(config)
        for k in range(21):
            temp = 25.0 + k % 7
            assert model.learn_visit(60, site_truth(temp), temp)
            assert model.learn_leg(20, drive_truth(temp) * 20, temp)
        return model

    model = taught(cfg)
    assert model.site_kw(32.0) == pytest.approx(site_truth(32.0), rel=0.05)
    assert model.drive_kwh_per_km(32.0) == pytest.approx(drive_truth(32.0), rel=0.01)
    blind = taught(cfg.model_copy(update={"site_cooling_kw_per_k": 0.0,
                                          "drive_cooling_kwh_per_km_per_k": 0.0}))
    assert blind.site_kw(32.0) < site_truth(32.0) * 0.85


def test_the_cooling_on_the_road_is_not_made_dearer_by_what_makes_a_km_dear() -> None:
    """A bus whose km costs 40 % more than the seed's (its mass, its tyres: a mild morning's
    legs say so) has the same air conditioning: on a hot afternoon the road's kWh per km are
    its dearer km plus the cooling its visits taught, not the cooling 40 % dearer too (seed
    1: hot afternoons' driving then came home a point above what noon said)."""
    cfg = PlannerConfig()
    model = EnergyModel(cfg)
    model.start_day(date(2026, 7, 1))
    for _ in range(3):
        assert model.learn_leg(20, cfg.drive_kwh_per_km * 1.4 * 20, 22.0)
        assert model.learn_visit(60, cfg.site_kw, 22.0)
    mild = model.drive_kwh_per_km(22.0)
    assert mild > cfg.drive_kwh_per_km * 1.3  # the day's dearer km
    cooling = 6 * cfg.drive_cooling_kwh_per_km_per_k
    assert model.drive_kwh_per_km(30.0) == pytest.approx(mild + cooling)
    # A hot leg that draws just that teaches the drive factor nothing new.
    assert model.learn_leg(20, (mild + cooling) * 20, 30.0)
    assert model.drive_kwh_per_km(22.0) == pytest.approx(mild)


def proposal_at(temp_c: float) -> Proposal:
    """The proposal a bus at 30 % SOC makes at Rožupe at 09:00 with ``temp_c`` outside."""
    plan = load_plan(PLAN_FILE)
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, plan.at(plan.depot.leave_at))
    serve(core, "rozupe")
    rozupe = plan.stop("rozupe")
    core.observe(Situation(plan.at(time(9, 0)), 30.0, temp_c, rozupe.lat, rozupe.lon))
    assert core.pending is not None
    return core.pending


def test_a_proposal_on_a_hot_day_names_the_air_conditioning_not_the_heating() -> None:
    """The reasons say in plain words why: at 30 °C the bus cools, it does not heat."""
    pending = proposal_at(30.0)
    codes = [r.code for r in pending.reasons]
    assert "hot" in codes and "cold" not in codes
    hot = next(r for r in pending.reasons if r.code == "hot")
    assert "air conditioning" in hot.text["en"] and "heating" not in hot.text["en"]
    assert "kondicionēšana" in hot.text["lv"] and "kondicionavimas" in hot.text["lt"]


def test_a_proposal_on_a_mild_day_names_neither_heating_nor_cooling() -> None:
    pending = proposal_at(20.0)
    mild = next(r for r in pending.reasons if r.code == "mild")
    assert "heating" not in mild.text["en"] and "air conditioning" not in mild.text["en"]


def test_cooling_that_begins_below_the_heatings_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match="cooling_above_c"):
        PlannerConfig(cooling_above_c=16.0)
