"""Bug 6(f) end to end: the office sends a plan on ``cmd/plan`` to the real ``busd run``;
the bus accepts it, the driver's display shows it, and the retained ``plan`` carries it."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import signal
import subprocess
import sys
import time
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from busd.clock import utc_iso
from tests.can_helpers import write_config
from tests.conftest import REPO
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.uplink_env import running_office

BUS = "lv-07"
OFFICE_NAME = "Turki (office plan)"


def plan_document() -> dict[str, Any]:
    text = (REPO / "config" / "plans" / "livani-winter.toml").read_text()
    assert 'date = "2026-12-14"' in text
    text = text.replace('bus = "sim-01"', f'bus = "{BUS}"')
    text = re.sub(r"window = \{[^}]*\}\n", "", text)  # windows would lie in the past
    text = text.replace('leave_at = "07:30:00"', 'leave_at = "00:01:00"')
    text = text.replace('return_by = "17:00:00"', 'return_by = "23:59:00"')
    return tomllib.loads(text)


def write_daemon(tmp_path: Path, broker_port: int, display_port: int) -> Path:
    # The daemon's clock runs from 18:00 on the plan's own day, whenever the test runs.
    evening = datetime.datetime(2026, 12, 14, 18, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Riga"))
    (tmp_path / "plan.json").write_text(json.dumps(plan_document()))
    return write_config(tmp_path, f"""bus_id = "{BUS}"
[log]
format = "json"
[display]
port = {display_port}
[mqtt]
host = "127.0.0.1"
port = {broker_port}
reconnect_initial_s = 0.1
[planner]
plan_file = "{tmp_path / 'plan.json'}"
[simulators.clock_anchor]
sim_epoch = {evening.timestamp()}
real_epoch = {time.time()}
""")


async def snapshot(port: int) -> dict[str, Any] | None:
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/api/snapshot") as response:
            return dict(await response.json())
    except aiohttp.ClientError:
        return None  # still starting


def stop_names(snap: dict[str, Any] | None) -> list[str]:
    plan = (snap or {}).get("plan") or {}
    return [s["name"] for s in plan.get("stops") or []]


async def eventually(fetch: Any, ok: Any, *, timeout: float, what: str) -> Any:
    """Fetch until ``ok(value)``; fail after ``timeout`` s (the value comes over HTTP/MQTT)."""
    try:
        async with asyncio.timeout(timeout):
            while not ok(value := await fetch()):  # noqa: ASYNC110 - polled over the network
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
    return value


async def retained_plan(port: int) -> str:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"reader-{time.time()}") as client:
        await client.subscribe(f"multimobile/v1/{BUS}/plan", qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert message.retain
                return bytes(message.payload).decode()
    raise AssertionError("no retained plan")


@pytest.mark.slow
async def test_a_plan_from_the_office_is_accepted_shown_and_retained(mosquitto: Mosquitto,
                                                                     tmp_path: Path) -> None:
    display_port = free_port()
    config = write_daemon(tmp_path, mosquitto.port, display_port)
    async with running_office(mosquitto.port) as office:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off",
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            await office.wait_until(lambda: office.fleet.get(BUS) and office.fleet[BUS].online,
                                    timeout=30)
            await eventually(lambda: snapshot(display_port),
                             lambda snap: "Turki" in stop_names(snap), timeout=30,
                             what="the file's plan on the display")

            plan = plan_document()
            plan["version"] = 2
            turki = next(s for s in plan["stops"] if s["id"] == "turki")
            turki["name"] = OFFICE_NAME
            await office.send_command(BUS, "plan", {
                "schema": "busd.cmd.plan/1", "bus": BUS, "ts": utc_iso(time.time()),
                "id": "office-1", "version": 2, "date": "2026-12-14", "plan": plan})

            await office.wait_until(lambda: office.fleet[BUS].cmd_results, timeout=20)
            result = office.fleet[BUS].cmd_results[0]
            assert result["id"] == "office-1"
            assert result["accepted"], result["reason"]
            assert result["detail"]["version"] == 2

            await eventually(lambda: snapshot(display_port),
                             lambda snap: OFFICE_NAME in stop_names(snap), timeout=20,
                             what="the office's plan on the display")
            text = await eventually(lambda: retained_plan(mosquitto.port),
                                    lambda text: OFFICE_NAME in text, timeout=20,
                                    what="the office's plan retained on .../plan")
            assert '"version": 2' in text or '"version":2' in text
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
