"""Services by type and time by activity (busd/services): the config, the pure tally, and
the counter against a real SQLite monitoring store on a manual clock.

Counts only, never who; counts outside a visit at a site are refused; every change is
durable before it is acknowledged and survives a restart (a power cut) with the visit's
running activity; every event the counter publishes is valid against its JSON schema.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from pydantic import ValidationError

from busd.clock import ManualClock, utc_iso
from busd.config import BusdConfig, ServicesConfig
from busd.display.ports import NoVisit, UnknownChoice
from busd.event_catalog import VisitStarted, parse_event
from busd.services.counter import CountNotStored, ServiceCounter
from busd.services.tally import VisitTally
from telemetry.monitoring_store import MonitoringStore
from tests.monitoring_helpers import CaptureSink, span, visit_ended
from tests.support.components import running
from tests.support.wait import wait_until

RIGA = ZoneInfo("Europe/Riga")
T0 = datetime(2026, 1, 14, 9, 0, tzinfo=RIGA).timestamp()
SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schema"


def visit_started(visit_id: str, start: float, *, kind: str = "stop") -> VisitStarted:
    day = datetime.fromtimestamp(start, RIGA).date().isoformat()
    return VisitStarted.model_validate(span(
        id=visit_id, day=day, status="open", start=utc_iso(start), end=None,
        place_id="rudzati" if kind == "stop" else "livani",
        place_name="Rudzāti" if kind == "stop" else "Līvāni", place_kind=kind,
        lat=56.44, lon=26.46, radius_m=150.0, soc_min=80.0))


def counter_on(store: MonitoringStore, clock: ManualClock, sink: CaptureSink,
               **config: Any) -> ServiceCounter:
    return ServiceCounter(config=ServicesConfig(**config), store=store, clock=clock, sink=sink,
                          timezone="Europe/Riga")


def schema_valid(kind: str, data: dict[str, Any]) -> None:
    """``data`` in its record envelope, against docs/schema/event-{kind}.json."""
    schema = json.loads((SCHEMAS / f"event-{kind}.json").read_text(encoding="utf-8"))
    record = {"bus": "bus-01", "ts": "2026-01-14T07:00:00.000Z", "schema": "busd.event/1",
              "seq": 1, "kind": kind, "data": data}
    jsonschema.Draft202012Validator(schema).validate(record)


# --- the config ----------------------------------------------------------------------------


def test_the_config_names_the_key_of_each_problem() -> None:
    assert BusdConfig(bus_id="bus-1").services.types[0] == "municipal"
    with pytest.raises(ValidationError, match=r"services\.types"):
        BusdConfig(bus_id="bus-1", services={"types": ["Notary Public"]})
    with pytest.raises(ValidationError, match="unique"):
        ServicesConfig(types=["notary", "notary"])
    with pytest.raises(ValidationError, match="no lv/lt/en labels for passports"):
        ServicesConfig(types=["notary", "passports"])
    with pytest.raises(ValidationError, match="start_activity"):
        ServicesConfig(start_activity="lunch")
    with pytest.raises(ValidationError, match="lt"):
        ServicesConfig(types=["passports"],
                       labels={"passports": {"lv": "Pases", "en": "Passports"}})
    own = ServicesConfig(types=["passports", "other"], activities=[],
                         labels={"passports": {"lv": "Pases", "lt": "Pasai", "en": "Passports"}})
    assert own.label("passports").lt == "Pasai" and own.label("other").lv == "Citi"


# --- the tally --------------------------------------------------------------------------------


def test_a_tally_counts_never_below_zero_and_splits_time_between_activities() -> None:
    tally = VisitTally("v-1", "2026-01-14", "rudzati", activity="setup", since_ts=0.0)
    tally = tally.counted("notary", 1).counted("notary", 1).counted("social", -1)
    assert (dict(tally.counts), tally.total) == ({"notary": 2, "social": 0}, 2)
    tally = tally.switched("serving", 300.0).switched("waiting", 900.0)
    assert tally.activity_min(960.0) == {"setup": 5.0, "serving": 10.0, "waiting": 1.0}
    closed = tally.closed(1200.0)
    assert closed.activity is None and closed.activity_min(9999.0)["waiting"] == 5.0


# --- the counter ---------------------------------------------------------------------------------


async def test_counts_outside_a_visit_are_refused_and_the_depot_is_no_visit(
    tmp_path: Path,
) -> None:
    clock, sink = ManualClock(start=T0), CaptureSink()
    store = MonitoringStore(tmp_path / "m.sqlite")
    counter = counter_on(store, clock, sink)
    with pytest.raises(NoVisit):
        await counter.increment(1, "notary")
    counter.on_event(visit_started("visit-depot", T0, kind="depot"))
    with pytest.raises(NoVisit):
        await counter.switch("serving")
    counter.on_event(visit_started("visit-1", T0))
    with pytest.raises(UnknownChoice):
        await counter.increment(1, "haircut")
    with pytest.raises(UnknownChoice):
        await counter.switch("lunch")
    assert await counter.increment(1, "notary") == 1
    counter.on_event(visit_ended(id="visit-1", day="2026-01-14", start=utc_iso(T0),
                                 end=utc_iso(T0 + 600), place_id="rudzati",
                                 place_kind="stop"))
    with pytest.raises(NoVisit):
        await counter.increment(1, "notary")
    assert sink.kinds() == ["service_counted"]  # nothing published for the refused ones
    store.close()


async def test_counts_and_activity_time_survive_a_restart_and_every_event_is_valid(
    tmp_path: Path,
) -> None:
    clock, sink = ManualClock(start=T0), CaptureSink()
    path = tmp_path / "m.sqlite"
    store = MonitoringStore(path)
    counter = counter_on(store, clock, sink, start_activity="setup")
    async with running(counter, clock) as run:
        await wait_until(lambda: run.health.phase.value == "running", timeout=5, what="ready")
        counter.on_event(visit_started("visit-1", T0))  # arrived at 09:00, setting up
        await clock.advance(300.0)
        assert await counter.switch("serving") == "serving"
        for service in ("notary", "notary", "social", "library"):
            await counter.increment(1, service)
        assert await counter.increment(-1, "library") == 0
        await clock.advance(600.0)
        assert counter.day_total() == 3
    store.close()  # the power goes: nothing is flushed on the way down

    await clock.advance(120.0)  # two minutes later it is back, still at the stop
    store = MonitoringStore(path)
    again = counter_on(store, clock, sink, start_activity="setup")
    async with running(again, clock) as run:
        await wait_until(lambda: run.health.phase.value == "running", timeout=5, what="ready")
        # The tracker tells its resumed visit again: the counts and the activity go on.
        again.on_event(visit_started("visit-1", T0))
        now = again.current()
        assert now is not None and now.visit_id == "visit-1"
        assert (now.count, dict(now.counts)) == (3, {"notary": 2, "social": 1, "library": 0})
        assert now.activity == "serving"
        assert now.activities_min == {"setup": 5.0, "serving": 12.0}
        assert again.day_total() == 3
        assert again.at_end("visit-1", T0 + 1320.0) == (
            {"municipal": 0, "social": 1, "notary": 2, "orphans_court": 0, "library": 0,
             "other": 0},
            {"setup": 5.0, "serving": 17.0})
        again.on_event(visit_ended(id="visit-1", day="2026-01-14", start=utc_iso(T0),
                                   end=utc_iso(T0 + 1320.0), place_id="rudzati",
                                   place_kind="stop"))
        await wait_until(lambda: not again._unsaved, timeout=5, what="the visit's end stored")
    records = store.day_records_sync("2026-01-14")
    assert {r["service"]: r["count"] for r in records["services"]} == {
        "notary": 2, "social": 1, "library": 0}
    assert {r["activity"]: r["seconds"] for r in records["activities"]} == {
        "setup": 300.0, "serving": 1020.0}
    assert [c["count"] for c in records["clients"]] == [3]  # the total, for compatibility
    store.close()

    assert sink.kinds() == ["activity_changed", *["service_counted"] * 5, "activity_changed"]
    ended = sink.of("activity_changed")[-1]
    assert (ended["activity"], ended["previous"]) == (None, "serving")
    for kind, data in sink.events:
        schema_valid(kind, data)
        assert parse_event(data).kind == kind
    # Counts only: nothing in any event could name a person.
    assert {k for _, d in sink.events for k in d} <= {
        "kind", "visit_id", "day", "place_id", "service", "delta", "count", "visit_total",
        "activity", "previous", "activities_min"}


async def test_a_count_the_disk_refuses_is_not_counted(tmp_path: Path) -> None:
    clock, sink = ManualClock(start=T0), CaptureSink()
    store = MonitoringStore(tmp_path / "m.sqlite")
    reports: list[str | None] = []
    counter = ServiceCounter(config=ServicesConfig(), store=store, clock=clock, sink=sink,
                             timezone="Europe/Riga", on_storage=reports.append)
    counter.on_event(visit_started("visit-1", T0))
    assert await counter.increment(1, "social") == 1
    store.db.execute("PRAGMA query_only = ON")  # the disk refuses writes from here
    with pytest.raises(CountNotStored):
        await counter.increment(1, "social")
    now = counter.current()
    assert now is not None and now.count == 1 and reports and reports[-1] is not None
    store.db.execute("PRAGMA query_only = OFF")
    assert await counter.increment(1, "social") == 2
    assert reports[-1:] == [None]  # written again: the storage alert is cleared
    assert [e["count"] for e in sink.of("service_counted")] == [1, 2]
    store.close()


def test_the_daily_report_carries_counts_per_type_and_minutes_per_activity(
    tmp_path: Path,
) -> None:
    from busd.event_catalog import DailyReport
    from busd.monitoring.summary import daily_summary

    store = MonitoringStore(tmp_path / "m.sqlite")
    for visit_id, counts, seconds in (
        ("v-1", {"notary": 2, "social": 1}, {"setup": 300.0, "serving": 1800.0}),
        ("v-2", {"social": 4}, {"serving": 600.0, "waiting": 90.0}),
    ):
        store.save_tally(VisitTally(visit_id, "2026-01-14", "rudzati", counts=counts,
                                    activity_s=seconds), ts=T0)
    summary = daily_summary("2026-01-14", store.day_records_sync("2026-01-14"))
    assert summary["clients_served"] == 7
    assert summary["services"] == {"notary": 2, "social": 5}
    assert summary["activities_min"] == {"serving": 40.0, "setup": 5.0, "waiting": 1.5}
    report = DailyReport.model_validate({**summary, "created": "2026-01-14T19:00:00.000Z"})
    assert report.services == {"notary": 2, "social": 5} and report.day == date(2026, 1, 14)
    store.close()
