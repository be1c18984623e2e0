"""The planner seen through the display's port: stops, projection, proposal, Accept."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from busd.display.ports import StopStatus
from busd.plan import load_plan
from busd.planner.display_view import PlannerDisplayView
from tests.progress_helpers import ended, started
from tests.test_planner_component import (
    PLAN_FILE,
    at_third_stop,
    feed,
    make,
    plan_loaded,
    run_until,
)


async def test_view_shows_the_day_the_proposal_and_accepting_it(tmp_path: Path) -> None:
    planner, state, _clock, _sink = make(tmp_path)
    view = PlannerDisplayView(planner)
    assert view.view() is None  # no plan loaded yet
    plan = load_plan(PLAN_FILE)
    turki = plan.stop("turki")
    await run_until(planner, plan_loaded(planner), what="the plan loaded")  # no SOC: no race
    at_third_stop(planner, _clock)
    feed(state, 50, turki.lat, turki.lon)
    assert await planner.tick(force=True)

    shown = view.view()
    assert shown is not None and shown.reserve_soc == planner.config.reserve_pct
    status = {line.id: line.status for line in shown.stops}
    assert status["rozupe"] is StopStatus.DONE and status["rudzati"] is StopStatus.DONE
    assert status["turki"] is StopStatus.NOW
    assert [line.status for line in shown.stops][:2] == [StopStatus.DONE, StopStatus.DONE]
    assert sum(1 for s in status.values() if s is StopStatus.NEXT) == 1
    assert shown.depot_soc is not None
    proposal = shown.proposal
    assert proposal is not None and set(proposal.reasons) == {"lv", "lt", "en"}
    assert all(proposal.reasons[lang] for lang in ("lv", "lt", "en"))

    assert not await view.acknowledge("not-the-id")
    assert await view.acknowledge(proposal.id)
    after = view.view()
    assert after is not None and after.proposal is None


async def test_on_the_road_the_view_names_the_place_where_a_change_of_plan_comes(
    tmp_path: Path,
) -> None:
    """Half-way to Rožupe the day no longer fits: the change waits for the arrival, and the
    view says where it comes, so a red band with no proposal is not a silence."""
    planner, state, clock, _sink = make(tmp_path, start=time(7, 40))
    view = PlannerDisplayView(planner)
    plan = load_plan(PLAN_FILE)
    await run_until(planner, plan_loaded(planner), what="the plan loaded")
    depot, rozupe = plan.depot, plan.stop("rozupe")
    planner.on_event(started(depot.id, clock.now() - 1800, kind="depot"))
    planner.on_event(ended(depot.id, clock.now() - 1800, clock.now() - 600, kind="depot"))
    feed(state, 70, (depot.lat + rozupe.lat) / 2, (depot.lon + rozupe.lon) / 2)
    assert await planner.tick(force=True)
    shown = view.view()
    assert shown is not None and shown.margin is not None and shown.proposal is None
    assert shown.proposal_at == "Rožupe"
    planner.on_event(started("rozupe", clock.now()))
    feed(state, 69, rozupe.lat, rozupe.lon)
    assert await planner.tick(force=True)
    arrived = view.view()
    assert arrived is not None and arrived.proposal is not None and arrived.proposal_at is None
