"""Each accepted plan's projected SOC curve is kept and drawn on the report's SOC plot."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from busd.clock import ManualClock, utc_iso
from busd.errors import StorageError
from busd.event_catalog import PlanAccepted, PlanDocument, PointDoc, ProjectionDoc, Proposal
from busd.monitoring.plan_projections import ProjectionRecorder
from busd.supervisor import ComponentContext, ComponentHealth
from telemetry import report_cli
from telemetry.monitoring_store import MonitoringStore
from tests.support.wait import wait_until
from tests.test_monitoring_report import DAY, fill

T0 = 1_767_250_800.0  # 2026-01-01 09:00 Riga


class PlanCapture:
    def __init__(self) -> None:
        self.plans: list[Any] = []

    async def publish_plan(self, plan: Any) -> None:
        self.plans.append(plan)


def projection(start: float, soc: float,
               stops: list[tuple[float, float, float, float]]) -> ProjectionDoc:
    return ProjectionDoc(
        ts=utc_iso(start), soc=soc, safe=True, reserve_pct=15.0, margin_pct=10.0,
        threshold_pct=25.0, depot_soc=stops[-1][3], depot_margin_pct=stops[-1][3] - 25.0,
        depot_eta=utc_iso(stops[-1][0]),
        points=[PointDoc(id=f"s{i}", kind="stop", eta=utc_iso(eta), etd=utc_iso(etd),
                         soc_arrive=arrive, soc_depart=depart, minutes=30, late_min=0)
                for i, (eta, arrive, etd, depart) in enumerate(stops)])


def pending(proposal_id: str, after: ProjectionDoc) -> PlanDocument:
    """A plan document whose proposal promises ``after``."""
    proposal = Proposal(id=proposal_id, plan_version=1, created=after.ts, kind="reduce",
                        emergency=False, changes=[], itinerary=[], before=after, after=after,
                        reasons=[])
    return PlanDocument(plan=None, itinerary=[], done=[], at=None, projection=after,
                        pending=proposal)


def accepted(proposal_id: str) -> PlanAccepted:
    return PlanAccepted(proposal_id=proposal_id, proposal_kind="reduce", changes=[],
                        itinerary=[], reasons=[])


async def test_an_accepted_plans_projection_is_stored_and_plotted(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    fill(store)
    plans = PlanCapture()
    recorder = ProjectionRecorder(plan_sink=plans, store=store, clock=ManualClock(start=T0 + 3600),
                                  timezone="Europe/Riga")
    after = projection(T0 + 3600, 70.0, [(T0 + 5400, 62.0, T0 + 7200, 55.0),
                                         (T0 + 9000, 40.0, T0 + 9000, 40.0)])
    rejected = projection(T0 + 3600, 70.0, [(T0 + 5400, 10.0, T0 + 7200, 5.0)])
    await recorder.publish_plan(pending("p-2", rejected))
    await recorder.publish_plan(pending("p-1", after))
    recorder.on_event(accepted("p-1"))
    assert [p.pending.id for p in plans.plans] == ["p-2", "p-1"]  # passed on unchanged
    task = asyncio.create_task(recorder.run(
        ComponentContext(ComponentHealth(recorder.name, False), ManualClock())))
    try:
        await wait_until(lambda: len(store.day_records_sync(DAY)["projections"]) == 5,
                         timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    points = store.day_records_sync(DAY)["projections"]
    assert [(p["ts"] - T0, p["soc"]) for p in points] == [
        (3600, 70.0), (5400, 62.0), (7200, 55.0), (9000, 40.0), (9000, 40.0)]
    assert {p["proposal_id"] for p in points} == {"p-1"}  # never the one not accepted
    labels = report_cli.plot_soc(tmp_path / "soc.png", DAY, store.day_records_sync(DAY),
                                 ZoneInfo("Europe/Riga"), reserve_pct=15.0)
    store.close()
    assert labels == ["SOC", "plan accepted 10:00 (projected)", "reserve 15 %"]


class RefusingStore:
    """Refuses every write until ``refuse`` is cleared, then keeps what it is given."""

    def __init__(self) -> None:
        self.refuse = True
        self.saved: list[str] = []

    def save_projection(self, day: str, proposal_id: str, accepted_ts: float,
                        points: list[tuple[float, float]]) -> None:
        if self.refuse:
            raise StorageError("database or disk is full")
        self.saved.append(proposal_id)


async def test_a_refusing_disk_degrades_the_recorder_and_the_curve_is_kept_until_written(
) -> None:
    clock = ManualClock(start=T0 + 3600)
    store, reports = RefusingStore(), list[str | None]()
    recorder = ProjectionRecorder(plan_sink=PlanCapture(), store=store, clock=clock,
                                  timezone="Europe/Riga", on_storage=reports.append)
    after = projection(T0 + 3600, 70.0, [(T0 + 5400, 62.0, T0 + 7200, 55.0)])
    await recorder.publish_plan(pending("p-1", after))
    recorder.on_event(accepted("p-1"))
    ctx = ComponentContext(ComponentHealth(recorder.name, False), clock)
    task = asyncio.create_task(recorder.run(ctx))
    try:
        await wait_until(lambda: reports == ["database or disk is full"], timeout=5,
                         what="the refusal reported")
        assert ctx.reason.startswith("storage:")  # degraded, not failed
        store.refuse = False
        await clock.advance(120.0)  # past any back-off
        await wait_until(lambda: store.saved == ["p-1"], timeout=5, what="the curve written")
        await wait_until(lambda: reports[-1] is None, timeout=5, what="the recovery reported")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
