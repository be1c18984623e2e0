"""The event catalogue (busd/event_catalog.py): one frozen, typed model per event kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from busd import event_catalog as cat
from busd import signals as sig
from busd.clock import ManualClock
from busd.config import MonitoringConfig
from busd.monitoring.tracker import Tracker
from busd.state import VehicleState
from telemetry.models import EVENT_RECORDS, REPORT_RECORDS, EventRecord
from tests.monitoring_helpers import CaptureSink, leg_event, make_plan, span, visit_ended

ALL: tuple[type[cat.EventModel], ...] = (*cat.EVENT_MODELS, *cat.REPORT_MODELS,
                                         cat.CommandResult)


def test_every_kind_is_a_frozen_strict_model_with_its_own_kind() -> None:
    kinds = [cat.kind_of(m) for m in ALL]
    assert len(set(kinds)) == len(kinds)
    assert {"visit_started", "visit_ended", "leg_completed", "charging_started",
            "charging_ended", "plan_changed", "plan_accepted", "alert_raised", "alert_cleared",
            "lift_cycle", "data_dropped", "cmd_result", "daily", "service_counted",
            "activity_changed"} == set(kinds)
    for model in ALL:
        config = model.model_config
        assert config.get("frozen") and config.get("extra") == "forbid", model
        assert config.get("allow_inf_nan") is False, model
    assert set(EVENT_RECORDS) == {cat.kind_of(m) for m in cat.EVENT_MODELS}
    assert set(REPORT_RECORDS) == {"daily"}


def _untyped(schema: Any, where: str = "") -> list[str]:
    """Places in a JSON Schema that accept anything (a ``dict[str, Any]`` or ``Any``)."""
    found: list[str] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" not in schema and \
                schema.get("additionalProperties") in (None, True, {}):
            found.append(where or "(top)")
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    if sub == {}:
                        found.append(f"{where}/{name}")
                    found += _untyped(sub, f"{where}/{name}")
            elif key in ("items", "additionalProperties") and value == {}:
                found.append(f"{where}/{key}")
            else:
                found += _untyped(value, where)
    elif isinstance(schema, list):
        for item in schema:
            found += _untyped(item, where)
    return found


@pytest.mark.parametrize("kind", sorted({**EVENT_RECORDS, **REPORT_RECORDS}))
def test_each_kinds_schema_types_every_field(kind: str) -> None:
    model = {**EVENT_RECORDS, **REPORT_RECORDS}[kind]
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    assert _untyped(schema) == []
    assert schema["properties"]["kind"]["const"] == kind


def test_the_untyped_check_finds_a_free_form_dict() -> None:
    # The check above would pass on anything if it could not see dict[str, Any].
    assert _untyped({"type": "object", "properties": {"data": {"type": "object"}}}) == ["/data"]
    assert _untyped({"type": "object", "properties": {"x": {}}}) == ["/x"]


def test_a_record_parses_as_its_model_and_back() -> None:
    leg = leg_event(km=12.5, out_kwh=4.0, temp_c=-12.0)
    data = json.loads(leg.to_json())
    assert "bus" not in data and "ts" not in data and "schema" not in data
    assert cat.parse_event(data) == leg
    assert cat.parse_event(leg.to_json()) == leg
    record = {"bus": "b", "ts": "2026-12-14T08:00:00.000Z", "schema": "busd.event/1", "seq": 1,
              "kind": "leg_completed", "data": data}
    assert EventRecord.model_validate(record).data == leg
    with pytest.raises(ValidationError, match="record kind"):
        EventRecord.model_validate({**record, "kind": "visit_ended"})


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_events_refuse_numbers_that_are_not_json(bad: float) -> None:
    with pytest.raises(ValidationError):
        leg_event(km=bad)
    with pytest.raises(ValidationError):
        cat.LegCompleted.model_validate_json(
            leg_event(km=1.0).to_json().replace('"km":1.0', '"km":1e400'))


def test_unknown_fields_and_kinds_are_refused() -> None:
    with pytest.raises(ValidationError):
        visit_ended(bus="bus-01")  # the envelope's, not the event's
    with pytest.raises(ValidationError):
        cat.parse_event({**span(), "kind": "visit_teleported"})
    event = visit_ended()
    with pytest.raises(ValidationError):
        event.status = "open"  # type: ignore[misc]  # frozen


async def test_the_tracker_emits_one_lift_cycle_per_cycle_at_the_place_it_is() -> None:
    clock = ManualClock(start=1_767_225_600.0)
    state = VehicleState(clock)
    sink = CaptureSink()
    plan = make_plan()
    stop = plan.stops[0]

    class NoStore:
        async def open_records(self) -> dict[str, Any]:
            return {}

        async def write(self, rows: object, samples: object) -> None: ...

        async def save_plan(self, plan: object) -> None: ...

    tracker = Tracker(state=state, clock=clock, plan=plan, store=NoStore(), sink=sink,
                      config=MonitoringConfig(min_visit_min=1.0))
    state.update(sig.VEHICLE_SPEED, 0.0, source="t")
    state.update(sig.GPS_LAT, stop.lat, source="t")
    state.update(sig.GPS_LON, stop.lon, source="t")
    state.update(sig.LIFT_CYCLES, 40, source="t")
    for _ in range(90):  # stopped at the stop long enough to be a visit
        await clock.advance(1.0)
        for name, value in ((sig.VEHICLE_SPEED, 0.0), (sig.GPS_LAT, stop.lat),
                            (sig.GPS_LON, stop.lon), (sig.LIFT_CYCLES, 40)):
            state.update(name, value, source="t")
        tracker.process()
    assert "visit_started" in sink.kinds() and "lift_cycle" not in sink.kinds()
    state.update(sig.LIFT_CYCLES, 41, source="t")
    tracker.process()
    tracker.process()
    state.update(sig.LIFT_CYCLES, 43, source="t")
    tracker.process()
    cycles = [m for m in sink.models if isinstance(m, cat.LiftCycle)]
    assert [(c.cycles, c.day_cycles, c.counter, c.place_id) for c in cycles] == [
        (1, 1, 41, stop.id), (2, 3, 43, stop.id)]


async def test_an_event_reaches_the_wire_as_its_model_serialised(tmp_path: Path) -> None:
    """Forwarder → outbox (pydantic's JSON at its edge) → the MQTT message → the same model."""
    from busd.config import OutboxConfig
    from busd.events import EventForwarder
    from telemetry.outbox import Outbox
    from telemetry.uplink import build_messages

    clock = ManualClock(start=1_767_225_600.0)
    outbox = Outbox(path=tmp_path / "outbox.sqlite", clock=clock, config=OutboxConfig())
    await outbox.open()
    try:
        leg = leg_event(km=12.5, out_kwh=4.0, temp_c=-12.0)
        forwarder = EventForwarder(sink=outbox, clock=clock)
        await forwarder._send(leg)
        (row,) = await outbox.peek(after_seq=0, limit=10)
        (message,) = build_messages([row], prefix="multimobile/v1/bus-01", bus="bus-01",
                                    now=clock.now(), max_records=10, max_bytes=100_000)
        assert message.topic == "multimobile/v1/bus-01/event/leg_completed"
        record = EventRecord.model_validate_json(message.payload)
        assert record.data == leg and record.bus == "bus-01" and record.seq == 1
    finally:
        await outbox.close()
