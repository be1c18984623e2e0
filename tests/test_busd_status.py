"""``busd status`` against a real running daemon: health, office contact, exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from busd import __version__
from busd.app import build_daemon, prepare
from busd.clock import SystemClock
from busd.config import load_config
from busd.status import DaemonStatus, socket_path
from busd.supervisor import ComponentContext
from tests.can_helpers import write_config
from tests.conftest import REPO
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_until


def config_file(tmp_path: Path, broker_port: int) -> Path:
    return write_config(tmp_path, f"""bus_id = "lv-11"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
reconnect_initial_s = 0.05
reconnect_max_s = 0.3
[outbox]
commit_interval_s = 0.1
[supervisor]
backoff_initial_s = 0.05
backoff_max_s = 0.2
""")


class Broken:
    """A critical part that cannot start (a CAN interface that is not there)."""

    name = "broken"
    critical = True

    async def run(self, ctx: ComponentContext) -> None:
        raise OSError(19, "No such device: can7")


@contextlib.asynccontextmanager
async def daemon(path: Path, *extra: Any) -> AsyncIterator[Any]:
    """The real daemon (build_daemon: every part the config names) under its supervisor."""
    built = build_daemon(prepare(load_config(path)), SystemClock(), extra_components=list(extra))
    task = asyncio.create_task(built.supervisor.run(), name="test:daemon")
    try:
        yield built
    finally:
        built.supervisor.request_stop()
        async with asyncio.timeout(15):
            await task
        await asyncio.to_thread(built.store.close)


async def busd_status(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "busd.cli", "status", *args, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_status_of_a_running_daemon_connected_to_the_office(mosquitto: Mosquitto,
                                                                  tmp_path: Path) -> None:
    path = config_file(tmp_path, mosquitto.port)
    sock = socket_path(tmp_path / "data")
    async with daemon(path) as d:
        await wait_until(sock.exists, timeout=20, what="the status socket")
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        await wait_until(lambda: d.uplink.uplink.connected, timeout=20, what="the uplink")
        await d.uplink.outbox.append("event", "tick", {"n": 1})
        await wait_until(lambda: d.uplink.uplink.last_ack is not None, timeout=20,
                         what="a PUBACK")

        code, out, err = await busd_status("--config", str(path), "--json")
        assert code == 0, err
        status = DaemonStatus.model_validate_json(out)
        assert status.ok and status.critical_down == [] and status.bus == "lv-11"
        assert status.version == __version__
        parts = {p.name: p for p in status.parts}
        assert {"outbox", "uplink", "status"} <= set(parts)
        assert parts["outbox"].critical and parts["outbox"].phase == "running"
        assert "appended" in parts["outbox"].counters
        assert status.office is not None and status.office.connected
        assert status.office.connected_since is not None and status.office.last_ack is not None

        code, text, _ = await busd_status("--socket", str(sock))
        assert code == 0
        assert f"busd {__version__}, bus lv-11" in text and ": OK" in text
        assert "office: connected since" in text and "last PUBACK 20" in text
        assert any(line.split()[:2] == ["outbox", "running"] for line in text.splitlines())


async def test_a_critical_part_down_exits_1_and_says_which(tmp_path: Path) -> None:
    path = config_file(tmp_path, free_port())  # no broker there: the uplink degrades only
    sock = socket_path(tmp_path / "data")
    async with daemon(path, Broken()) as d:
        await d.uplink.outbox.append("event", "tick", {"n": 1})  # waits: no broker to take it
        await wait_until(lambda: sock.exists() and d.supervisor.health["broken"].restarts > 0,
                         timeout=20, what="the status socket and a failed part")
        code, out, _ = await busd_status("--config", str(path), "--json")
        assert code == 1
        status = DaemonStatus.model_validate_json(out)
        assert not status.ok and status.critical_down == ["broken"]
        broken = next(p for p in status.parts if p.name == "broken")
        assert "No such device: can7" in broken.last_error and not broken.up
        assert status.office is not None and not status.office.connected
        assert status.office.last_ack is None and status.office.backlog >= 1
        code, text, _ = await busd_status("--config", str(path))
        assert code == 1 and "CRITICAL PART DOWN: broken" in text
        assert "No such device: can7" in text


async def test_not_running_exits_3_with_a_clear_message(tmp_path: Path) -> None:
    path = config_file(tmp_path, free_port())
    code, out, err = await busd_status("--config", str(path))
    assert (code, out) == (3, "")
    assert "busd is not running (no status socket at" in err
    # A socket file a killed daemon left behind: nothing answers.
    sock = socket_path(tmp_path / "data")
    sock.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as left:
        left.bind(str(sock))
    code, _, err = await busd_status("--socket", str(sock))
    assert code == 3 and "nothing answers" in err


async def test_a_daemon_takes_over_a_left_socket_but_not_a_live_one(tmp_path: Path) -> None:
    path = config_file(tmp_path, free_port())
    sock = socket_path(tmp_path / "data")
    sock.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as left:
        left.bind(str(sock))  # a killed daemon's
    async with daemon(path) as first:
        await wait_until(lambda: first.supervisor.health["status"].phase == "running",
                         timeout=20, what="the first daemon's status socket")
        async with daemon(path) as second:  # the same data_dir: must not steal the socket
            await wait_until(lambda: second.supervisor.health["status"].restarts > 0,
                             timeout=20, what="the second daemon's refusal")
            assert "another busd is running" in second.supervisor.health["status"].last_error
        code, out, _ = await busd_status("--socket", str(sock), "--json")
        assert code == 0 and json.loads(out)["pid"] > 0


async def test_the_json_schema_is_printed(tmp_path: Path) -> None:
    code, out, _ = await busd_status("--schema")
    assert code == 0 and json.loads(out)["properties"]["schema"]["const"] == \
        "busd.daemon_status/1"


@pytest.mark.parametrize("phase", ["starting", "backoff", "stopped"])
def test_render_flags_a_down_critical_part(phase: str) -> None:
    from busd.status_cli import render

    status = DaemonStatus(
        bus="b", version="v", pid=1, boot="2026-01-01T00:00:00.000Z",
        ts="2026-01-01T01:00:00.000Z", ok=False, critical_down=["can"], office=None,
        parts=[{"name": "can", "critical": True, "phase": phase, "up": False, "reason": "",
                "restarts": 2, "last_error": "OSError: gone", "beat_age_s": None,
                "counters": {}}])
    text = render(status)
    assert "up since 2026-01-01T00:00:00.000Z (60 min ago)" in text
    assert "! can" in text and "last error: OSError: gone" in text


def test_connected_since_counts_only_while_connected(tmp_path: Path) -> None:
    from busd.clock import ManualClock
    from busd.state import VehicleState
    from telemetry.status_adapter import UplinkContact
    from telemetry.wiring import build_uplink

    clock = ManualClock()
    parts = build_uplink(load_config(config_file(tmp_path, free_port())),
                         state=VehicleState(clock), clock=clock)
    contact = UplinkContact(uplink=parts.uplink, outbox=parts.outbox)
    parts.uplink.connected, parts.uplink.connected_since = True, clock.now()
    assert contact.contact().connected_since == "2026-01-01T00:00:00.000Z"
    parts.uplink.connected = False  # the link dropped
    assert contact.contact().connected_since is None
