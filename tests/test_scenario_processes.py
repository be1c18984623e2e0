"""The scenario's daemon process: held ahead of time, released by start(); the
scenario's outside processes never outlive the runner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from simulators.pty import PtyLink
from simulators.scenario.processes import DaemonProcess
from tests.conftest import REPO
from tests.support.wait import wait_until


async def test_a_held_daemon_runs_busd_only_when_started(tmp_path: Path) -> None:
    # A config that does not exist: busd refuses to start (exit 2) and says why,
    # which shows that start() let it run ``busd run`` with our arguments.
    daemon = DaemonProcess(tmp_path / "missing.toml", tmp_path)
    await daemon.prepare()
    spare = daemon._spare
    assert spare is not None and spare.returncode is None
    await daemon.prepare()  # one spare at a time
    assert daemon._spare is spare
    assert not daemon.running and daemon.starts == 0
    await daemon.start()
    assert daemon.proc is spare and daemon.starts == 1
    async with asyncio.timeout(30):
        assert await spare.wait() == 2
    assert "missing.toml" in (tmp_path / "busd.log").read_text(encoding="utf-8")


async def test_an_unused_spare_is_reaped_on_stop(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "missing.toml", tmp_path)
    await daemon.prepare()
    spare = daemon._spare
    assert spare is not None
    await daemon.stop()
    assert spare.returncode is not None
    assert (tmp_path / "busd.log").read_text(encoding="utf-8") == ""  # busd never ran


# A scenario runner cut down to its outside processes: it starts them as the
# real runner does, prints their pids and waits to be killed.
_RUNNER = """
import asyncio, json, sys
from pathlib import Path
from simulators.scenario.processes import Broker, DaemonProcess, Gpsd

async def main(workdir: Path, device: str, fake_python: str) -> None:
    broker = Broker(workdir / "broker")
    await broker.start()
    gpsd = Gpsd(Path(device), workdir)
    await gpsd.start()
    daemon = DaemonProcess(workdir / "busd.toml", workdir, python=fake_python)
    await daemon.start()
    print(json.dumps([p.pid for p in (broker.proc, gpsd.proc, daemon.proc) if p]), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a reaper (a container's pid 1 may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_killed_runner_takes_busd_gpsd_and_mosquitto_with_it(tmp_path: Path) -> None:
    """A scenario run killed by SIGKILL (or by ``timeout``, which signals only its own
    process group) must not leave its children behind: a left busd kept reopening the
    run's pty symlinks, whose /dev/pts numbers other tests' ptys get next, and stole
    their bytes (the replay test's "device reports readiness to read but returned no
    data (... multiple access on port?)")."""
    fake_python = tmp_path / "fake-python"  # stands in for busd: runs until signalled
    fake_python.write_text("#!/bin/sh\nexec sleep 600\n")
    fake_python.chmod(0o755)
    pids: list[int] = []
    with PtyLink(link=tmp_path / "gps.pty") as link, \
            (tmp_path / "runner.log").open("wb") as errors:
        runner = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _RUNNER, str(tmp_path), link.path, str(fake_python),
            stdout=subprocess.PIPE, stderr=errors, cwd=REPO)
        try:
            assert runner.stdout is not None
            async with asyncio.timeout(30):
                line = await runner.stdout.readline()
            assert line, (tmp_path / "runner.log").read_text(errors="replace")
            pids = json.loads(line)
            assert len(pids) == 3 and all(alive(pid) for pid in pids)
            runner.kill()  # no clean-up runs in the runner
            await runner.wait()
            await wait_until(lambda: not any(alive(pid) for pid in pids), timeout=10,
                             what="busd, gpsd and mosquitto to exit with their runner")
        finally:
            if runner.returncode is None:
                runner.kill()
                await runner.wait()
            for pid in pids:  # only what this test started, by pid
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
