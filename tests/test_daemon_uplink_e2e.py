"""The real daemon end to end: CAN simulator → driver → state → MQTT → the office."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from busd.clock import utc_iso
from office.archive.models import ArchivedRecord
from tests.can_helpers import OWN_DBC, write_config
from tests.conftest import REPO
from tests.support.mosquitto import Mosquitto
from tests.support.uplink_env import archived_seqs, running_office


def daemon_config(tmp_path: Path, port: int) -> Path:
    mapping = (REPO / "config" / "sim.toml").read_text().split("# --- Mapping")[1]
    return write_config(tmp_path, f"""bus_id = "lv-03"
[log]
format = "json"
[mqtt]
host = "127.0.0.1"
port = {port}
[can]
interface = "virtual"
channel = "e2e-uplink"
dbc = "{OWN_DBC}"
[simulators.can]
interface = "virtual"
channel = "e2e-uplink"
dbc = "{OWN_DBC}"
initial_soc = 71.0
outside_temp_c = -12.0
# --- Mapping{mapping}""")


@pytest.mark.slow
async def test_can_state_reaches_the_office_and_commands_are_answered(mosquitto: Mosquitto,
                                                                      tmp_path: Path) -> None:
    config = daemon_config(tmp_path, mosquitto.port)
    async with running_office(mosquitto.port) as office:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off",
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            def soc_on_state() -> bool:
                # SOC and the pack's voltage and current come in different frames: the
                # first state may hold SOC before power can be derived.
                view = office.fleet.get("lv-03")
                values = view.state.get("values", {}) if view is not None else {}
                return bool(values.get("battery.soc")) and "battery.power" in values

            await office.wait_until(soc_on_state, timeout=30)
            view = office.fleet["lv-03"]
            assert view.online
            assert abs(view.state["values"]["battery.soc"] - 71.0) < 1.0
            assert "battery.power" in view.state["values"]  # derived from CAN voltage × current

            async def telemetry_has_soc() -> bool:
                rows = await office.archive.records("lv-03")
                return any(r.schema_.startswith("busd.telemetry")
                           and "battery.soc" in r.data.get("values", {}) for r in rows)

            await office.wait_until(telemetry_has_soc, timeout=30)

            await office.send_command("lv-03", "ping", {"id": "p-0"})  # no envelope: refused
            await office.send_command("lv-03", "ping", {
                "schema": "busd.cmd.ping/1", "bus": "lv-03", "ts": utc_iso(time.time()),
                "id": "p-1"})

            async def pong() -> list[ArchivedRecord]:
                rows = await office.archive.records("lv-03", kind="cmd_result")
                return [r for r in rows if r.data.get("id") == "p-1"]

            await office.wait_until(pong, timeout=15)
            (answer,) = await pong()
            assert answer.data["accepted"] is True, answer.data
            rows = await office.archive.records("lv-03", kind="cmd_result")
            (refused,) = [r.data for r in rows if r.data.get("id") == "p-0"]
            assert not refused["accepted"] and "schema must be" in refused["reason"]
            seqs = await archived_seqs(office, "lv-03")
            assert seqs == sorted(set(seqs))
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        await office.wait_until(lambda: not office.fleet["lv-03"].online, timeout=10)
