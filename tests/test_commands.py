"""Commands from the office: the validation order and reasons, then through the real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from busd.clock import ManualClock
from busd.ports import CommandOutcome, JsonObject
from telemetry.commands import CommandDispatcher
from tests.support.mosquitto import Mosquitto
from tests.support.uplink_env import bus_config, running_bus, running_office

TODAY = "2026-01-01"  # ManualClock starts at 2026-01-01T00:00Z, 02:00 in Riga


class Store:
    def __init__(self) -> None:
        self.meta: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    async def keep_meta(self, key: str, value: str) -> None:
        self.meta[key] = value


def plan_doc(version: int, date: str = TODAY, **extra: Any) -> dict[str, Any]:
    """A valid plan (the planner's model) with no stops."""
    return {"date": date, "version": version, "stops": [],
            "depot": {"id": "livani", "name": "Līvāni", "lat": 56.3543, "lon": 26.1758},
            **extra}


def plan(version: int, *, bus: str = "bus-01", date: str = TODAY,
         doc: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"schema": "busd.cmd.plan/1", "bus": bus, "ts": "2026-01-01T00:00:00.000Z",
            "id": f"p{version}", "version": version, "date": date,
            "plan": plan_doc(version, date) if doc is None else doc, **extra}


class RecordingDispatcher(CommandDispatcher):
    """The dispatcher, with the bodies its plan handler was given."""

    received: list[JsonObject]


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    d = RecordingDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store(), max_bytes=4096)
    received: list[JsonObject] = []

    async def handler(body: JsonObject) -> CommandOutcome:
        received.append(body)
        if body["stops"]:
            return CommandOutcome.reject("stop 'x' is not in the catalogue")
        return CommandOutcome.accept()

    d.register("plan", handler)
    d.received = received
    return d


@pytest.mark.parametrize(("name", "payload", "reason"), [
    ("plan", b"{not json", "not valid JSON"),
    ("plan", b"\xff\xfe", "not UTF-8"),
    ("plan", b"[1, 2]", "not a JSON object but a list"),
    ("plan", b"[" * 100_0 + b"]" * 100_0, "not acceptable JSON"),
    ("plan", json.dumps({"schema": "busd.cmd.ping/1"}).encode(), "schema must be"),
    ("plan", json.dumps(plan(1, bus="bus-02")).encode(), "addressed to bus 'bus-02'"),
    ("plan", json.dumps(plan(1, date="2025-12-31")).encode(),
     "date: expired: plan is for 2025-12-31, today is 2026-01-01"),
    ("plan", json.dumps(plan(2, doc=plan_doc(1))).encode(),
     "the command is for 2026-01-01 version 2, its plan for 2026-01-01 version 1"),
    ("plan", json.dumps(plan(1, doc={"stops": []})).encode(), "invalid plan: plan.date: Field"),
    ("plan", json.dumps(plan(1, date="2025-12-31",
                             doc=plan_doc(1, "2025-12-31", timezone="Asia/Tokyo"))).encode(),
     "date: expired: plan is for 2025-12-31, today is 2026-01-01"),  # 09:00 the day after there
    ("plan", json.dumps(plan(0)).encode(), "version: Input should be greater than or equal"),
    ("plan", json.dumps(plan(1, evil=True)).encode(), "evil: Extra inputs are not permitted"),
    ("plan", b" " * 5000, "payload is 5000 bytes, the limit is 4096"),
    ("reboot", b"{}", "unknown command 'reboot'"),
])
async def test_bad_commands_are_rejected_with_the_reason(
    dispatcher: RecordingDispatcher, name: str, payload: bytes, reason: str,
) -> None:
    result = await dispatcher.handle(name, payload)
    assert not result.accepted
    assert reason in result.reason
    assert dispatcher.received == []


async def test_plan_version_must_increase_and_is_kept_only_when_accepted(
    dispatcher: RecordingDispatcher,
) -> None:
    assert (await dispatcher.handle("plan", json.dumps(plan(3)).encode())).accepted
    old = await dispatcher.handle("plan", json.dumps(plan(2)).encode())
    assert old.reason == "version 2 is not above the version 3 accepted for 2026-01-01"
    assert old.id == "p2"
    with_stop = plan_doc(4, stops=[{"id": "x", "name": "X", "lat": 56.0, "lon": 26.0,
                                    "planned_min": 60, "min_min": 30, "priority": 5}])
    refused = await dispatcher.handle("plan", json.dumps(plan(4, doc=with_stop)).encode())
    assert refused.reason == "stop 'x' is not in the catalogue"
    # The refused version 4 was not remembered as the day's, so 4 can come again (a new
    # command: the same one again gets the same answer).
    again = await dispatcher.handle("plan", json.dumps(plan(4, doc=with_stop)).encode())
    assert again == refused
    corrected = plan(4) | {"id": "p4-corrected"}
    assert (await dispatcher.handle("plan", json.dumps(corrected).encode())).accepted
    assert [b["version"] for b in dispatcher.received] == [3, 4, 4]


async def test_a_command_delivered_twice_runs_once_and_gets_the_same_answer(
    dispatcher: RecordingDispatcher,
) -> None:
    first = await dispatcher.handle("plan", json.dumps(plan(3)).encode())
    assert first.accepted and first.detail.version == 3
    # The broker delivers it again (QoS 1 after a lost connection): the same answer.
    assert await dispatcher.handle("plan", json.dumps(plan(3)).encode()) == first
    # The office sends the same plan version again under a new id: the same answer, its id.
    resent = await dispatcher.handle("plan", json.dumps(plan(3) | {"id": "again"}).encode())
    assert resent == first.model_copy(update={"id": "again"})
    assert [b["version"] for b in dispatcher.received] == [3]
    assert dispatcher.counters["duplicates"] == 2


async def test_answers_survive_a_restart_and_stay_bounded() -> None:
    from telemetry.command_answers import ANSWERS_KEY

    store = Store()
    first = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=store)
    ping = {"schema": "busd.cmd.ping/1", "bus": "bus-01", "ts": "2026-01-01T00:00:00.000Z"}
    answer = await first.handle("ping", json.dumps(ping | {"id": "ping-0"}).encode())
    restarted = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=store)
    assert await restarted.handle("ping", json.dumps(ping | {"id": "ping-0"}).encode()) == answer
    for n in range(1, 260):
        await restarted.handle("ping", json.dumps(ping | {"id": f"ping-{n}"}).encode())
    assert len(json.loads(store.meta[ANSWERS_KEY])) == 200  # the oldest went


async def test_plan_without_handler_and_slow_handler(dispatcher: RecordingDispatcher) -> None:
    bare = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store())
    result = await bare.handle("plan", json.dumps(plan(1)).encode())
    assert result.reason == "no plan handler is registered on this bus"

    slow = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store(),
                             handler_timeout_s=0.05)

    async def never(body: JsonObject) -> CommandOutcome:
        await asyncio.Event().wait()
        raise AssertionError("the dispatcher's timeout cancels the handler before this")

    slow.register("plan", never)
    result = await slow.handle("plan", json.dumps(plan(1)).encode())
    assert result.reason == "the plan handler did not answer within 0.05 s"


async def test_handler_crash_is_a_rejection(dispatcher: RecordingDispatcher) -> None:
    d = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store())

    async def boom(body: JsonObject) -> CommandOutcome:
        raise KeyError("stops")

    d.register("plan", boom)
    result = await d.handle("plan", json.dumps(plan(1)).encode())
    assert result.reason == "internal error: KeyError"


async def test_a_lone_surrogate_id_is_answered_and_no_sample_is_lost(
    dispatcher: RecordingDispatcher, tmp_path: Path,
) -> None:
    """Bug 6(g): the answer to a command whose id holds "\\ud800" is stored, and so are the
    telemetry samples committed with it."""
    from busd.config import OutboxConfig
    from telemetry.outbox import Outbox

    async with Outbox(path=tmp_path / "outbox.sqlite", clock=ManualClock(),
                      config=OutboxConfig()) as box:
        box.add_telemetry({"values": {"battery.soc": 90.0}}, full=True)
        payload = json.dumps(plan(1) | {"id": "\ud800"}).encode()
        result = await dispatcher.handle("plan", payload)
        assert not result.accepted and "lone surrogate" in result.reason
        await box.emit_result(result)
        rows = await box.peek(after_seq=0, limit=10)
        assert [(r.seq, r.stream) for r in rows] == [(1, "telemetry"), (2, "cmd_result")]
        assert json.loads(rows[1].body.encode("utf-8"))["id"] == "\\ud800"


async def test_the_outbox_refuses_text_that_is_not_unicode_and_keeps_its_samples(
    tmp_path: Path,
) -> None:
    from busd.config import OutboxConfig
    from telemetry.outbox import Outbox

    async with Outbox(path=tmp_path / "outbox.sqlite", clock=ManualClock(),
                      config=OutboxConfig()) as box:
        box.add_telemetry({"values": {"battery.soc": 90.0}}, full=True)
        with pytest.raises(UnicodeEncodeError):
            await box.append("event", "x", {"id": "\ud800"})
        assert await box.append("event", "y", {}) == 2  # the sample went with the next record
        rows = await box.peek(after_seq=0, limit=10)
        assert [(r.seq, r.stream) for r in rows] == [(1, "telemetry"), (2, "event")]


async def test_hostile_commands_over_the_broker(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    # Today's plan, as the plan's time zone (Riga) reckons it.
    today = dt.datetime.now(ZoneInfo("Europe/Riga")).date().isoformat()
    async with running_office(mosquitto.port) as office, running_bus(config) as (parts, _):
        async def accept(body: JsonObject) -> CommandOutcome:
            assert body["stops"] == []  # the plan inside the command, not its envelope
            return CommandOutcome.accept()

        parts.commands.register("plan", accept)
        await office.wait_until(lambda: office.fleet.get("bus-01") and
                                office.fleet["bus-01"].online, timeout=10)
        sends: list[tuple[str, bytes | dict[str, Any]]] = [
            ("plan", b"{\"schema\": "),
            ("plan", plan(5, bus="bus-02", date=today)),
            ("plan", plan(5, date=today)),
            ("plan", plan(4, date=today)),
            ("plan", b"{" + b" " * (10 * 1024 * 1024) + b"}"),
            ("ping", {"schema": "busd.cmd.ping/1", "bus": "bus-01",
                      "ts": "2026-01-01T00:00:00.000Z", "id": "ping-1"}),
        ]
        for name, payload in sends:
            await office.send_command("bus-01", name, payload)
        await office.wait_until(lambda: len(office.fleet["bus-01"].cmd_results) >= len(sends),
                                timeout=20)
        results = list(office.fleet["bus-01"].cmd_results)
        assert [r["accepted"] for r in results] == [False, False, True, False, False, True]
        assert results[0]["reason"].startswith("not valid JSON")
        assert results[1]["reason"] == "addressed to bus 'bus-02', this is 'bus-01'"
        assert results[2]["detail"] == {"bus_ts": None, "version": 5, "scheduled": None,
                                        "problems": None,
                                        "resent": None, "pending": None, "missing": None,
                                        "missing_records": None}
        assert results[3]["reason"] == f"version 4 is not above the version 5 accepted for {today}"
        assert results[4]["reason"].startswith("payload is 10485762 bytes")
        assert results[5]["id"] == "ping-1" and results[5]["detail"]["bus_ts"].endswith("Z")
        # Still alive and publishing after all that.
        assert parts.uplink.connected


@pytest.mark.parametrize(("date", "zone"), [
    ("2025-12-31", "Europe/Riga"), ("2026-01-01", "Europe/Riga"), ("2026-01-02", "Europe/Riga"),
    ("2025-12-31", "America/New_York"), ("2026-01-01", "America/New_York"),
    ("2026-01-01", "Asia/Tokyo"), ("2026-01-01", "Pacific/Kiritimati"),
])
async def test_the_dispatcher_and_the_planner_accept_the_same_days(date: str, zone: str) -> None:
    """At 2026-01-01T00:00Z: 02:00 in Riga, 19:00 the day before in New York, 14:00 on
    1 January in Kiritimati (UTC+14). Both ends take "today" in the plan's time zone."""
    from busd.config import PlannerConfig
    from busd.planner.core import PlannerCore

    clock = ManualClock()
    doc = plan_doc(1, date, timezone=zone)
    d = CommandDispatcher(bus_id="bus-01", clock=clock, store=Store())
    core = PlannerCore(PlannerConfig(), bus_id="bus-01")

    async def planner(body: JsonObject) -> CommandOutcome:
        result, _ = core.replace_plan(body, now=clock.now())
        return CommandOutcome(result.accepted, "; ".join(r for _, r in result.problems))

    d.register("plan", planner)
    by_dispatcher = await d.handle("plan", json.dumps(plan(1, date=date, doc=doc)).encode())
    by_planner, _ = PlannerCore(PlannerConfig(), bus_id="bus-01").replace_plan(
        doc, now=clock.now())
    assert by_dispatcher.accepted == by_planner.accepted
    local = dt.datetime.fromtimestamp(clock.now(), ZoneInfo(zone)).date().isoformat()
    # Today is followed, a later day kept for its day, a day passed expired.
    assert by_planner.accepted == (date >= local)
    assert by_planner.scheduled == (dt.date.fromisoformat(date) if date > local else None)
