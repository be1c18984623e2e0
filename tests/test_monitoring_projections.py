"""Each accepted plan's projected SOC curve is kept and drawn on the report's SOC plot."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from busd.clock import ManualClock, utc_iso
from busd.monitoring.plan_projections import ProjectionRecorder
from busd.supervisor import ComponentContext, ComponentHealth
from telemetry import report_cli
from telemetry.monitoring_store import MonitoringStore
from tests.monitoring_helpers import CaptureSink
from tests.support.wait import wait_until
from tests.test_monitoring_report import DAY, fill

T0 = 1_767_250_800.0  # 2026-01-01 09:00 Riga


class PlanCapture:
    def __init__(self) -> None:
        self.plans: list[Any] = []

    async def publish_plan(self, plan: Any) -> None:
        self.plans.append(plan)


def projection(start: float, soc: float, stops: list[tuple[float, float, float, float]]) -> dict:
    return {"ts": utc_iso(start), "soc": soc, "reserve_pct": 15.0,
            "points": [{"id": f"s{i}", "kind": "stop", "eta": utc_iso(eta), "etd": utc_iso(etd),
                        "soc_arrive": arrive, "soc_depart": depart, "minutes": 30,
                        "late_min": 0}
                       for i, (eta, arrive, etd, depart) in enumerate(stops)]}


async def test_an_accepted_plans_projection_is_stored_and_plotted(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    fill(store)
    plans, events = PlanCapture(), CaptureSink()
    recorder = ProjectionRecorder(plan_sink=plans, events=events, store=store,
                                  clock_now=lambda: T0 + 3600, timezone="Europe/Riga")
    after = projection(T0 + 3600, 70.0, [(T0 + 5400, 62.0, T0 + 7200, 55.0),
                                         (T0 + 9000, 40.0, T0 + 9000, 40.0)])
    rejected = projection(T0 + 3600, 70.0, [(T0 + 5400, 10.0, T0 + 7200, 5.0)])
    await recorder.publish_plan({"pending": {"id": "p-2", "after": rejected}})
    await recorder.publish_plan({"pending": {"id": "p-1", "after": after}})
    recorder.emit("plan_accepted", {"proposal_id": "p-1", "kind": "reduce"})
    assert [p["pending"]["id"] for p in plans.plans] == ["p-2", "p-1"]  # passed on unchanged
    assert events.kinds() == ["plan_accepted"]
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
