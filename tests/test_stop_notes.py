"""Why a stop was shortened or skipped: the planner's reason, from the driver's acceptance
to the daily summary."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from busd.clock import ManualClock
from busd.event_catalog import Change, PlanAccepted, PlanChanged
from busd.monitoring.stop_notes import StopNotes, notes_of
from busd.monitoring.summary import daily_summary
from busd.supervisor import ComponentContext, ComponentHealth
from telemetry.monitoring_store import MonitoringStore
from tests.support.wait import wait_until

RIGA = ZoneInfo("Europe/Riga")
NOON = datetime(2026, 12, 14, 12, 0, tzinfo=RIGA).timestamp()
ACCEPTED = PlanAccepted.model_validate({
    "proposal_id": "abc", "proposal_kind": "reduce",
    "changes": [{"kind": "shorten", "stop": "sutri", "before_min": 60, "after_min": 30},
                {"kind": "skip", "stop": "jersika"},
                {"kind": "charge", "charger": "preili"}],
    "itinerary": [{"kind": "stop", "id": "sutri", "minutes": 30}],
    "reasons": [{"code": "unsafe", "params": {}, "text": {"en": "Depot SOC 9 % < 18 %",
                                                          "lv": "…"}},
                {"code": "cold", "params": {}, "text": {"en": "Heating at -12 °C"}}],
})


def test_an_acceptance_notes_its_shortened_and_skipped_stops_with_the_reason() -> None:
    notes = notes_of(ACCEPTED, ts=NOON, zone=RIGA)
    assert notes == [
        ("2026-12-14", "sutri", "shortened", "Depot SOC 9 % < 18 % Heating at -12 °C", NOON),
        ("2026-12-14", "jersika", "skipped", "Depot SOC 9 % < 18 % Heating at -12 °C", NOON),
    ]
    reorder = ACCEPTED.model_copy(update={"changes": [Change(kind="reorder")]})
    assert notes_of(reorder, ts=NOON, zone=RIGA) == []


async def test_the_reason_reaches_the_daily_summary(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "m.sqlite")
    clock = ManualClock(start=NOON)
    notes = StopNotes(store=store, clock=clock, timezone="Europe/Riga")
    task = asyncio.create_task(notes.run(ComponentContext(ComponentHealth("n", False), clock)))
    try:
        notes.on_event(PlanChanged(cause="withdrawn", proposal_id="abc"))
        notes.on_event(ACCEPTED)
        await wait_until(lambda: len(store.day_records_sync("2026-12-14")["notes"]) == 2,
                         timeout=5, what="both notes stored")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    records = store.day_records_sync("2026-12-14")
    records["plan_stops"] = [
        {"stop_id": "sutri", "name": "Sutri", "planned_min": 60},
        {"stop_id": "jersika", "name": "Jersika", "planned_min": 60}]
    records["visit"] = [{"place_id": "sutri", "duration_min": 30.0, "start_ts": NOON}]
    summary = daily_summary("2026-12-14", records)
    by_stop = {s["stop_id"]: s for s in summary["stops"]}
    assert by_stop["sutri"]["status"] == "shortened"
    assert by_stop["sutri"]["reason"].startswith("Depot SOC 9 %")
    assert by_stop["jersika"]["status"] == "skipped"
    assert by_stop["jersika"]["reason"].startswith("Depot SOC 9 %")
    store.close()
