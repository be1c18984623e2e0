"""Commands from the office: the validation order and reasons, then through the real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from busd.clock import ManualClock
from busd.ports import CommandOutcome
from telemetry.commands import CommandDispatcher
from tests.support.uplink_env import bus_config, running_bus, running_office

TODAY = "2026-01-01"  # ManualClock starts at 2026-01-01T00:00Z, 02:00 in Riga


class Store:
    def __init__(self):
        self.meta = {}

    async def get_meta(self, key):
        return self.meta.get(key)

    async def set_meta(self, key, value):
        self.meta[key] = value


def plan(version, *, bus="bus-01", date=TODAY, **extra):
    return {"schema": "busd.cmd.plan/1", "bus": bus, "ts": "2026-01-01T00:00:00.000Z",
            "id": f"p{version}", "version": version, "date": date, "plan": {"stops": []},
            **extra}


@pytest.fixture
def dispatcher():
    d = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store(), max_bytes=4096)
    received = []

    async def handler(body):
        received.append(body)
        if body["plan"].get("refuse"):
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
    ("plan", json.dumps(plan(1, date="2025-12-30")).encode(), "is in the past"),
    ("plan", json.dumps(plan(0)).encode(), "version: Input should be greater than or equal"),
    ("plan", json.dumps(plan(1, evil=True)).encode(), "evil: Extra inputs are not permitted"),
    ("plan", b" " * 5000, "payload is 5000 bytes, the limit is 4096"),
    ("reboot", b"{}", "unknown command 'reboot'"),
])
async def test_bad_commands_are_rejected_with_the_reason(dispatcher, name, payload, reason):
    result = await dispatcher.handle(name, payload)
    assert not result.accepted
    assert reason in result.reason
    assert dispatcher.received == []


async def test_plan_version_must_increase_and_is_kept_only_when_accepted(dispatcher):
    assert (await dispatcher.handle("plan", json.dumps(plan(3)).encode())).accepted
    old = await dispatcher.handle("plan", json.dumps(plan(2)).encode())
    assert old.reason == "version 2 is not above the accepted version 3"
    assert old.id == "p2"
    refused = await dispatcher.handle("plan", json.dumps(plan(4, plan={"refuse": 1})).encode())
    assert refused.reason == "stop 'x' is not in the catalogue"
    # The refused version 4 was not remembered, so 4 can come again.
    assert (await dispatcher.handle("plan", json.dumps(plan(4)).encode())).accepted
    assert [b["version"] for b in dispatcher.received] == [3, 4, 4]


async def test_plan_without_handler_and_slow_handler(dispatcher):
    bare = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store())
    result = await bare.handle("plan", json.dumps(plan(1)).encode())
    assert result.reason == "no plan handler is registered on this bus"

    slow = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store(),
                             handler_timeout_s=0.05)

    async def never(body):
        await asyncio.Event().wait()

    slow.register("plan", never)
    result = await slow.handle("plan", json.dumps(plan(1)).encode())
    assert result.reason == "the plan handler did not answer within 0.05 s"


async def test_handler_crash_is_a_rejection(dispatcher):
    d = CommandDispatcher(bus_id="bus-01", clock=ManualClock(), store=Store())

    async def boom(body):
        raise KeyError("stops")

    d.register("plan", boom)
    result = await d.handle("plan", json.dumps(plan(1)).encode())
    assert result.reason == "internal error: KeyError"


async def test_hostile_commands_over_the_broker(mosquitto, tmp_path):
    config = bus_config(tmp_path, mosquitto.port)
    # Tomorrow's plan: never in the past, even when the test runs across midnight.
    today = (dt.datetime.now(ZoneInfo("Europe/Riga")).date() + dt.timedelta(days=1)).isoformat()
    async with running_office(mosquitto.port) as office, running_bus(config) as (parts, _):
        async def accept(body):
            assert body["plan"]["stops"] == []
            return CommandOutcome.accept()

        parts.commands.register("plan", accept)
        await office.wait_until(lambda: office.fleet.get("bus-01") and
                                office.fleet["bus-01"].online, timeout=10)
        sends = [
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
        assert results[2]["detail"] == {"bus_ts": None, "version": 5, "problems": None}
        assert results[3]["reason"] == "version 4 is not above the accepted version 5"
        assert results[4]["reason"].startswith("payload is 10485762 bytes")
        assert results[5]["id"] == "ping-1" and results[5]["detail"]["bus_ts"].endswith("Z")
        # Still alive and publishing after all that.
        assert parts.uplink.connected
