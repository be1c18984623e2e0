"""The planner seen through the display's port: stops, projection, proposal, Accept."""

from __future__ import annotations

from pathlib import Path

from busd.display.ports import StopStatus
from busd.plan import load_plan
from busd.planner.display_view import PlannerDisplayView
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
    feed(state, 50, turki.lat, turki.lon)
    await run_until(planner, plan_loaded(planner), what="the plan loaded")
    at_third_stop(planner, _clock)
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
