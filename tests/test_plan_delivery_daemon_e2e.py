"""The real ``busd run`` killed (SIGKILL) while the office sends it plans: when it comes back
it takes each plan once, today's at once and tomorrow's kept for its day, and keeps today's
office plan across a further restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from busd.plan import parse_plan
from office.dispatch import command_statuses, send_plan
from office.records import DEFAULT_PREFIX
from telemetry.mqtt import BrokerSettings
from tests.conftest import REPO
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.uplink_env import running_office
from tests.test_plan_command_e2e import (
    BUS,
    OFFICE_NAME,
    eventually,
    plan_document,
    snapshot,
    stop_names,
    write_daemon,
)


async def start(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off",
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
async def test_plans_sent_while_the_daemon_was_killed_land_once(mosquitto: Mosquitto,
                                                                tmp_path: Path) -> None:
    display_port = free_port()
    config = write_daemon(tmp_path, mosquitto.port, display_port)  # its day: 2026-12-14
    settings = BrokerSettings(host="127.0.0.1", port=mosquitto.port)
    today = plan_document()
    today["version"] = 2
    next(s for s in today["stops"] if s["id"] == "turki")["name"] = OFFICE_NAME
    tomorrow = plan_document() | {"date": "2026-12-15", "version": 1}

    async with running_office(mosquitto.port) as office:
        proc = await start(config)
        try:
            await office.wait_until(lambda: office.fleet.get(BUS) and office.fleet[BUS].online,
                                    timeout=30)
            proc.kill()  # SIGKILL: no clean disconnect, the broker keeps the session
            await proc.wait()
            await office.wait_until(lambda: not office.fleet[BUS].online, timeout=10)

            for plan, command_id in ((today, "today"), (tomorrow, "tomorrow")):
                sent = await send_plan(parse_plan(plan), bus=BUS, settings=settings,
                                       archive=office.archive, prefix=DEFAULT_PREFIX,
                                       timeout_s=0.2, command_id=command_id)
                assert sent.state == "pending"

            proc = await start(config)

            async def states() -> dict[str, str]:
                return {s.sent.id: state for s, state in await command_statuses(office.archive)}

            await office.wait_until(
                lambda: _answered(states(), {"today": "accepted", "tomorrow": "accepted"}),
                timeout=30)
            rows = {s.sent.id: s for s, _ in await command_statuses(office.archive)}
            assert rows["tomorrow"].detail is not None
            assert rows["tomorrow"].detail.scheduled == dt.date(2026, 12, 15)
            assert rows["today"].detail is not None and rows["today"].detail.scheduled is None
            await eventually(lambda: snapshot(display_port),
                             lambda snap: OFFICE_NAME in stop_names(snap), timeout=20,
                             what="the office's plan on the display")

            # Stopped and started again: the office's plan for today is still the day's, and
            # nothing was delivered twice.
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
            proc = await start(config)
            await eventually(lambda: snapshot(display_port),
                             lambda snap: OFFICE_NAME in stop_names(snap), timeout=30,
                             what="the office's plan on the display after a restart")
            kinds = [(r.kind, r.data["id"]) for r in await office.archive.records(BUS)
                     if r.kind in ("cmd_received", "cmd_result")]
            assert sorted(kinds) == [("cmd_received", "today"), ("cmd_received", "tomorrow"),
                                     ("cmd_result", "today"), ("cmd_result", "tomorrow")]
            kept = tmp_path / "data" / "planner" / "plans"
            assert sorted(p.name for p in kept.glob("*.json")) == ["2026-12-14.json",
                                                                   "2026-12-15.json"]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.wait(), 15) == 0


async def _answered(states: object, wanted: dict[str, str]) -> bool:
    assert asyncio.iscoroutine(states)
    return bool(await states == wanted)
