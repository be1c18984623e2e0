"""Residents already waiting: a visit under way is the last to give minutes up (issue 17).

The people at the stop where the bus stands are in the queue now; those of a later stop can
still be told. So when the battery cannot give every stop its planned minutes, the later
stops go down to their minimum first, whatever their priority, and only then the visit
under way.
"""

from __future__ import annotations

from datetime import time

from busd.config import PlannerConfig
from busd.plan import load_plan
from busd.planner.energy import EnergyModel
from busd.planner.model import Evaluation
from busd.planner.projection import Built, Progress, Situation, build, initial_itinerary
from busd.planner.search import best_plan
from tests.conftest import REPO

PLAN_FILE = REPO / "config" / "plans" / "livani-winter.toml"
CFG = PlannerConfig()


def at_rozupe(soc: float) -> tuple[Built, Evaluation]:
    """The bus 10 minutes into its first visit (Rožupe, priority 8; Rudzāti later is 9), no
    charger on the way (a charge would make the later stops' energy another question)."""
    plan = load_plan(PLAN_FILE).model_copy(update={"chargers": [], "charging": []})
    rozupe = plan.stop("rozupe")
    arrived = plan.at(time(8, 0))
    sit = Situation(arrived + 600.0, soc, -10.0, rozupe.lat, rozupe.lon)
    progress = Progress(frozenset(), "rozupe", arrived, "rozupe")
    built = build(plan, initial_itinerary(plan), progress, sit, EnergyModel(CFG), CFG)
    return built, best_plan(built.instance)


def test_later_stops_go_down_to_their_minimum_before_the_visit_under_way() -> None:
    higher_later_cut = 0
    for soc in range(95, 30, -1):
        built, best = at_rozupe(float(soc))
        if not best.safe:
            break
        inst = built.instance
        minutes = {built.node_ids[p.node]: p.minutes for p in best.points[:-1]
                   if not inst.is_charger(p.node)}
        here = inst.stops[0]
        assert here.id == "rozupe" and here.in_progress
        later = [s for s in inst.stops[1:] if s.id in minutes]
        if minutes["rozupe"] < here.planned_min - 1e-6:
            # the visit under way is cut only once every later stop is at its minimum
            assert all(minutes[s.id] <= s.min_min + 1e-6 for s in later), soc
        rudzati = inst.stops[built.node("rudzati") - 1]
        if minutes.get("rudzati", rudzati.planned_min) < rudzati.planned_min - 1e-6 \
                and minutes["rozupe"] >= here.planned_min - 1e-6:
            higher_later_cut += 1
    # a later stop of higher priority was shortened while the residents here kept theirs
    assert higher_later_cut > 0
