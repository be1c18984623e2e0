"""The office side: retained plan and state expiry seen by a subscriber, CLI archive and CSV."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
from pathlib import Path

import aiomqtt

from busd.event_catalog import PlanDocument
from busd.plan import load_plan
from busd.planner.projection import initial_itinerary
from office.archive import open_archive
from simulators.scenario.progress import plan_version
from telemetry.models import PlanMessage
from telemetry.mqtt import BrokerSettings, make_client
from tests.support.mosquitto import REPO, Mosquitto
from tests.support.uplink_env import archived_seqs, bus_config, running_bus, running_office


async def test_plan_is_retained_and_state_expires_under_mqtt5(mosquitto: Mosquitto,
                                                              tmp_path: Path) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    async with running_office(mosquitto.port) as office, running_bus(config) as (parts, state):
        state.update("battery.soc", 50.0, source="test")
        plan = load_plan(REPO / "config" / "plans" / "livani-winter.toml")
        document = PlanDocument(plan=plan, itinerary=list(initial_itinerary(plan)), done=[],
                                at=None, projection=None, pending=None)
        await parts.uplink.publish_plan(document)
        await office.wait_until(lambda: office.fleet.get("bus-01") and
                                plan_version(office.fleet["bus-01"].plan) == plan.version,
                                timeout=10)
        # A late subscriber gets the retained plan and state, the state with its expiry.
        late = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
        async with make_client(late, identifier="late", protocol=aiomqtt.ProtocolVersion.V5) as c:
            await c.subscribe("multimobile/v1/bus-01/+", qos=1)
            seen: dict[str, aiomqtt.Message] = {}
            async with asyncio.timeout(10):
                async for msg in c.messages:
                    seen[str(msg.topic).rsplit("/", 1)[1]] = msg
                    if {"plan", "state", "status"} <= seen.keys():
                        break
        assert seen["plan"].retain
        retained = json.loads(seen["plan"].payload)
        # One envelope: bus, ts, schema beside the document's fields; the plan is the plan.
        assert retained["bus"] == "bus-01" and retained["schema"] == "busd.plan/1"
        assert retained["plan"]["stops"][0]["id"] == plan.stops[0].id
        assert "plan" not in retained["plan"] and retained["itinerary"][0]["id"] == plan.stops[0].id
        assert PlanMessage.model_validate(retained).plan == plan
        properties = seen["state"].properties
        assert properties is not None  # MQTT 5
        # paho sets the properties present as attributes, which its types do not declare.
        expiry = vars(properties)["MessageExpiryInterval"]
        assert 0 < expiry <= config.uplink.state_expiry_s


async def test_office_cli_archives_and_exports_csv(mosquitto: Mosquitto, tmp_path: Path) -> None:
    archive = tmp_path / "fleet.sqlite"
    office = subprocess.Popen(  # noqa: ASYNC220 (starting it does not block)
        [sys.executable, "-m", "busd.cli", "office", "--host", "127.0.0.1",
         "--port", str(mosquitto.port), "--archive", str(archive), "--no-live",
         "--duration", "20", "--client-id", "cli-office"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        stdout = office.stdout
        assert stdout is not None  # a pipe

        async def connected() -> None:
            while True:
                line = await asyncio.to_thread(stdout.readline)
                assert line, "busd office exited before connecting"
                if b"office_connected" in line:
                    return

        await asyncio.wait_for(connected(), 15)  # records sent before it subscribed are not its
        config = bus_config(tmp_path, mosquitto.port)
        async with running_office(mosquitto.port) as watcher, running_bus(config) as (parts, _):
            for i in range(5):
                await parts.outbox.append("event", "tick", {"i": i})

            async def both_have_five() -> bool:
                if len(await archived_seqs(watcher, "bus-01")) < 5 or not archive.exists():
                    return False
                async with open_archive(f"sqlite:///{archive}") as probe:
                    return await probe.count("bus-01") >= 5

            await watcher.wait_until(both_have_five, timeout=15)
    finally:
        office.terminate()
        office.wait(timeout=10)
    out = tmp_path / "fleet.csv"
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "busd.cli", "office",
                         "--archive", str(archive), "--export-csv", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = list(csv.DictReader(out.open()))
    ticks = [r for r in rows if r["kind"] == "tick"]
    assert [r["seq"] for r in ticks][:5] == [str(i) for i in range(1, 6)]
    assert ticks[0]["topic"] == "event/tick" and ticks[0]["bus"] == "bus-01"


def test_the_fleet_table_reads_current_and_next_stop_from_the_planners_document() -> None:
    from datetime import time

    from busd.config import PlannerConfig
    from busd.plan import load_plan
    from busd.planner.core import PlannerCore
    from busd.planner.energy import EnergyModel
    from office.live import current_and_next
    from tests.progress_helpers import serve

    plan = load_plan(REPO / "config" / "plans" / "livani-winter.toml")
    core = PlannerCore(PlannerConfig(), bus_id="sim-01", energy=EnergyModel(PlannerConfig()))
    now = plan.at(time(9, 0))
    core.load(plan, now)
    serve(core, plan.stops[0].id)  # the tracker's word: the first stop served,
    core.visit_started(plan.stops[1].id, "stop", now)  # the bus at the second
    document = json.loads(core.document(now).model_dump_json())  # as the office receives it
    assert current_and_next(document) == (plan.stops[1].name, plan.stops[2].name)
    core.visit_ended(plan.stops[1].id)
    serve(core, *(s.id for s in plan.stops[2:]))
    assert current_and_next(json.loads(core.document(now).model_dump_json())) == (
        "-", plan.depot.name)
    assert current_and_next({"version": 3}) == ("-", "-")
