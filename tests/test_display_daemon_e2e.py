"""The driver's page on the real daemon: a real planner proposal, accepted in the
browser, ends up accepted in the planner's state and on MQTT."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import signal
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.can_helpers import OWN_DBC, write_config
from tests.conftest import REPO
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.uplink_env import running_office

if TYPE_CHECKING:
    from playwright.async_api import Browser


def write_daemon(tmp_path: Path, broker_port: int, display_port: int) -> Path:
    # The daemon's clock is anchored at 18:00 on the plan's own day: a run started just
    # before midnight must not find the plan dated yesterday when the daemon starts.
    evening = datetime.datetime(2026, 12, 14, 18, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Riga"))
    plan = (REPO / "config" / "plans" / "livani-winter.toml").read_text()
    assert 'date = "2026-12-14"' in plan
    plan = plan.replace('bus = "sim-01"', 'bus = "lv-05"')
    plan = re.sub(r"window = \{[^}]*\}\n", "", plan)  # windows would lie in the past
    plan = plan.replace('leave_at = "07:30:00"', 'leave_at = "00:01:00"')
    plan = plan.replace('return_by = "17:00:00"', 'return_by = "23:59:00"')
    (tmp_path / "plan.toml").write_text(plan)
    mapping = (REPO / "config" / "sim.toml").read_text().split("# --- Mapping")[1]
    # Turki on a cold evening with 22 % left: the depot is out of reach.
    return write_config(tmp_path, f"""bus_id = "lv-05"
[log]
format = "json"
[display]
port = {display_port}
[mqtt]
host = "127.0.0.1"
port = {broker_port}
[planner]
plan_file = "{tmp_path / 'plan.toml'}"
[gps]
source = "nmea"
device = "{tmp_path / 'gps.pty'}"
[can]
interface = "virtual"
channel = "e2e-display"
dbc = "{OWN_DBC}"
[simulators.can]
interface = "virtual"
channel = "e2e-display"
dbc = "{OWN_DBC}"
initial_soc = 22.0
outside_temp_c = -15.0
[simulators.gps]
link = "{tmp_path / 'gps.pty'}"
start = {{ lat = 56.4555, lon = 26.2740 }}
[simulators.clock_anchor]
sim_epoch = {evening.timestamp()}
real_epoch = {time.time()}
# --- Mapping{mapping}""")


@pytest.mark.slow
async def test_accepting_a_real_proposal_on_the_page(browser: Browser, mosquitto: Mosquitto,
                                                     tmp_path: Path) -> None:
    display_port = free_port()
    config = write_daemon(tmp_path, mosquitto.port, display_port)
    state_file = tmp_path / "data" / "planner" / "state.json"
    async with running_office(mosquitto.port) as office:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off",
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 480})
            url = f"http://127.0.0.1:{display_port}/"
            async with asyncio.timeout(30):
                while True:
                    try:
                        await page.goto(url)
                        break
                    except Exception:  # the daemon is still starting
                        await asyncio.sleep(0.2)
            await page.wait_for_selector("#proposal:not([hidden])", timeout=30_000)
            assert await page.locator("#proposal-reasons li").count() > 0

            def pending() -> dict[str, Any] | None:
                proposal: dict[str, Any] | None = json.loads(state_file.read_text()).get("pending")
                return proposal

            # The first GPS fixes (and an emergency's SOC, falling while the bus stands in
            # the cold) may refine the proposal after an acceptance: accept each one the
            # page shows, until none is pending and the page shows none.
            from playwright.async_api import TimeoutError as ClickTimeout

            async with asyncio.timeout(45):
                while pending() is not None or await page.locator("#proposal").is_visible():
                    if await page.locator("#accept").is_visible():
                        # A refined proposal may replace this one between the look and the
                        # click: a click that finds no button in 2 s looks again.
                        with contextlib.suppress(ClickTimeout):
                            await page.click("#accept", timeout=2_000)
                    await asyncio.sleep(0.3)

            async def accepted_on_mqtt() -> list[dict[str, Any]]:
                rows = await office.archive.records("lv-05", kind="plan_accepted")
                return [r.data for r in rows]

            await office.wait_until(accepted_on_mqtt, timeout=20)
            accepted = await accepted_on_mqtt()
            assert accepted and all(event["proposal_id"] for event in accepted)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
