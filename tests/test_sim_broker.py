"""Bug 6(h): the simulation's private mosquitto never outlives ``busd run``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from busd.clock import SystemClock
from simulators.broker import BrokerSimulator, mosquitto_binary
from tests.can_helpers import write_config
from tests.conftest import REPO
from tests.support.components import running
from tests.support.mosquitto import free_port
from tests.support.uplink_env import running_office
from tests.support.wait import wait_until


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a reaper (a container's pid 1 may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def sim_config(tmp_path: Path, port: int) -> Path:
    return write_config(tmp_path, f"""bus_id = "lv-09"
[log]
format = "json"
[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_initial_s = 0.1
reconnect_max_s = 0.5
[simulators.broker]
port = {port}
""")


async def start_busd(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off",
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_a_killed_busd_leaves_no_broker_and_the_next_run_gets_its_own(tmp_path: Path) -> None:
    port = free_port()
    config = sim_config(tmp_path, port)
    pid_file = tmp_path / "data" / "broker" / "mosquitto.pid"
    first = await start_busd(config)
    try:
        await wait_until(lambda: pid_file.exists() and listening(port), timeout=30,
                         what="the private broker of the first run")
        broker_pid = int(pid_file.read_text())
        first.kill()  # SIGKILL: busd runs no clean-up at all
        await first.wait()
        await wait_until(lambda: not alive(broker_pid) and not listening(port), timeout=10,
                         what="the orphaned mosquitto to go")
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()

    second = await start_busd(config)
    try:
        async with running_office(port) as office:  # connects once the new broker is up
            await office.wait_until(
                lambda: office.fleet.get("lv-09") and office.fleet["lv-09"].online, timeout=30)
        assert int(pid_file.read_text()) != broker_pid
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 15) == 0
    await wait_until(lambda: not listening(port), timeout=10, what="a clean stop's broker to go")


async def test_a_stale_broker_of_this_workdir_is_stopped_before_starting(tmp_path: Path) -> None:
    """Where the kernel guard is missing, the pid file finds what an earlier busd left."""
    port = free_port()
    sim = BrokerSimulator(port=port, workdir=tmp_path / "broker")
    stale = await asyncio.create_subprocess_exec(
        mosquitto_binary(), "-c", str(sim._write_config()),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_until(lambda: listening(port), timeout=10, what="the stale broker")
        sim.pid_file.write_text(f"{stale.pid}\n")
        async with running(sim, SystemClock()) as run:
            async with asyncio.timeout(10):  # the stale broker is stopped
                await stale.wait()
            await wait_until(lambda: sim.pid_file.exists()
                             and int(sim.pid_file.read_text()) != stale.pid
                             and listening(port), timeout=10, what="the new broker")
            assert run.health.restarts == 0 and not run.task.done()
    finally:
        if stale.returncode is None:
            stale.kill()
            await asyncio.wait_for(stale.wait(), 5)


def test_a_pid_file_of_another_program_is_left_alone(tmp_path: Path) -> None:
    sim = BrokerSimulator(port=free_port(), workdir=tmp_path / "broker")
    sim._write_config()
    sim.pid_file.write_text(f"{os.getpid()}\n")  # this python, not a mosquitto
    assert sim.stale_pid() is None
