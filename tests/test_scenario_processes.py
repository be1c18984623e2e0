"""The scenario's daemon process: held ahead of time, released by start()."""

from __future__ import annotations

import asyncio

from simulators.scenario.processes import DaemonProcess


async def test_a_held_daemon_runs_busd_only_when_started(tmp_path) -> None:
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


async def test_an_unused_spare_is_reaped_on_stop(tmp_path) -> None:
    daemon = DaemonProcess(tmp_path / "missing.toml", tmp_path)
    await daemon.prepare()
    spare = daemon._spare
    assert spare is not None
    await daemon.stop()
    assert spare.returncode is not None
    assert (tmp_path / "busd.log").read_text(encoding="utf-8") == ""  # busd never ran
