"""The daemon killed with SIGKILL mid-stream: the will says offline, and nothing is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.support.mosquitto import REPO
from tests.support.uplink_env import archived_seqs, running_office

BUS = "bus-01"


def write_config(tmp_path, port):
    path = tmp_path / "busd.toml"
    path.write_text(f"""
bus_id = "{BUS}"
data_dir = "data"
[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_initial_s = 0.05
reconnect_max_s = 0.3
keepalive_s = 5
[outbox]
commit_interval_s = 0.05
[uplink]
state_interval_moving_s = 0.2
telemetry_interval_moving_s = 0.02
""")
    return path


def start_daemon(config):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.uplink_daemon", str(config),
         "--event-every", "0.005"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def last_committed_seq(db_path):
    with sqlite3.connect(db_path) as db:
        return int(db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()[0])


@pytest.mark.slow
async def test_sigkill_mid_stream_loses_nothing_and_the_will_says_offline(mosquitto, tmp_path):
    config = write_config(tmp_path, mosquitto.port)
    procs = []
    try:
        async with running_office(mosquitto.port) as office:
            view = lambda: office.fleet.get(BUS)  # noqa: E731

            async def archived_at_least(n):
                return len(await archived_seqs(office, BUS)) >= n

            procs.append(start_daemon(config))
            await office.wait_until(lambda: view() and view().online, timeout=15)
            await office.wait_until(lambda: archived_at_least(300), timeout=15)
            procs[0].kill()  # SIGKILL, mid-stream: no shutdown code runs
            procs[0].wait(timeout=5)
            await office.wait_until(lambda: view().online is False, timeout=15)
            assert view().status["reason"] == "connection_lost"  # the broker's last will
            killed_at = last_committed_seq(tmp_path / "data" / "outbox.sqlite")

            procs.append(start_daemon(config))
            await office.wait_until(lambda: view().online, timeout=15)
            await office.wait_until(lambda: archived_at_least(killed_at + 300), timeout=20)
            procs[1].send_signal(signal.SIGTERM)
            assert procs[1].wait(timeout=10) == 0
            await office.wait_until(
                lambda: view().online is False and view().status["reason"] == "shutdown",
                timeout=10)
            db = tmp_path / "data" / "outbox.sqlite"
            last = last_committed_seq(db)
            assert last >= killed_at + 300
            # Every record ever committed arrived, or is still in the outbox for the next run
            # (telemetry flushed at shutdown, after the uplink stopped): seq 1..last, no gap.
            # A record resent after the kill (acked but not yet deleted) counts once.
            with sqlite3.connect(db) as conn:
                waiting = [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
            assert waiting == list(range(last - len(waiting) + 1, last + 1))  # only the tail

            async def all_accounted_for():
                archived = await archived_seqs(office, BUS)
                return sorted(set(archived) | set(waiting)) == list(range(1, last + 1))

            await office.wait_until(all_accounted_for, timeout=20)
            assert await office.archive.gaps(BUS) == []
            ticks = [r.data["i"] for r in await office.archive.records(BUS, kind="tick")]
            # Each run numbers its ticks from 0; within a run none is missing.
            runs = [i for i, t in enumerate(ticks) if t == 0]
            assert len(runs) == 2
            assert ticks[: runs[1]] == list(range(runs[1]))
            assert ticks[runs[1]:] == list(range(len(ticks) - runs[1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
