"""The real daemon (``busd run``) killed with SIGKILL mid-stream: the will says offline,
and no record is lost or duplicated across the kill."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from office.live import BusView
from tests.can_helpers import OWN_DBC, write_config
from tests.conftest import REPO
from tests.support.mosquitto import Mosquitto
from tests.support.uplink_env import archived_seqs, running_office

BUS = "lv-07"
# Records archived before each stop: ~3 s of the stream at ~50 a second; the kill lands
# mid-stream with commits and publishes in flight (it was 300, ~6 s each, for no more
# coverage: the stream's state at the kill is the same after 3 s as after 6).
STREAMED = 150


def daemon_config(tmp_path: Path, port: int) -> Path:
    # The CAN simulator feeds the daemon; telemetry is sampled every 20 ms, moving or
    # parked, each sample a keyframe (so never skipped as unchanged): about 50 records a
    # second stream while the daemon is killed.
    mapping = (REPO / "config" / "sim.toml").read_text().split("# --- Mapping")[1]
    return write_config(tmp_path, f"""bus_id = "{BUS}"
[log]
format = "json"
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
state_interval_parked_s = 0.2
telemetry_interval_moving_s = 0.02
telemetry_interval_parked_s = 0.02
telemetry_keyframe_s = 0.01
[can]
interface = "virtual"
channel = "uplink-crash"
dbc = "{OWN_DBC}"
[simulators.can]
interface = "virtual"
channel = "uplink-crash"
dbc = "{OWN_DBC}"
# --- Mapping{mapping}""")


async def start_daemon(config: Path, run: int) -> asyncio.subprocess.Process:
    # Its log goes beside the config, for a failure to be read.
    log = await asyncio.to_thread((config.parent / f"busd-run{run}.log").open, "wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off",
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=log,
        )
    finally:
        log.close()  # the daemon has its own copy of the descriptor


def last_committed_seq(db_path: Path) -> int:
    """As the outbox reckons it when it opens: the stored mark, or the newest row if higher
    (telemetry rows get their seq as they are committed, before the mark is written)."""
    with sqlite3.connect(db_path) as db:
        mark = int(db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()[0])
        top = db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
    return max(mark, top or 0)


@pytest.mark.slow
async def test_sigkill_mid_stream_loses_nothing_and_the_will_says_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = daemon_config(tmp_path, mosquitto.port)
    db = tmp_path / "data" / "outbox.sqlite"
    procs: list[asyncio.subprocess.Process] = []
    try:
        async with running_office(mosquitto.port) as office:
            def view() -> BusView:
                return office.fleet[BUS]

            async def archived_at_least(n: int) -> bool:
                return len(await archived_seqs(office, BUS)) >= n

            procs.append(await start_daemon(config, 1))
            await office.wait_until(lambda: BUS in office.fleet and view().online, timeout=30)
            await office.wait_until(lambda: archived_at_least(STREAMED), timeout=30)
            procs[0].kill()  # SIGKILL, mid-stream: no shutdown code runs
            assert await asyncio.wait_for(procs[0].wait(), 10) == -signal.SIGKILL
            await office.wait_until(lambda: view().online is False, timeout=15)
            assert view().status["reason"] == "connection_lost"  # the broker's last will
            killed_at = max(last_committed_seq(db), max(await archived_seqs(office, BUS)))

            procs.append(await start_daemon(config, 2))
            await office.wait_until(lambda: view().online, timeout=30)
            await office.wait_until(lambda: archived_at_least(killed_at + STREAMED), timeout=30)
            procs[1].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(procs[1].wait(), 15) == 0
            await office.wait_until(
                lambda: view().online is False and view().status["reason"] == "shutdown",
                timeout=10)
            last = last_committed_seq(db)
            assert last >= killed_at + STREAMED
            # Every record ever committed arrived, or is still in the outbox for the next run
            # (telemetry flushed at shutdown, after the uplink stopped): seq 1..last, no gap.
            # A record resent after the kill (acked but not yet deleted) counts once.
            with sqlite3.connect(db) as conn:
                waiting = [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
            assert waiting == list(range(last - len(waiting) + 1, last + 1))  # only the tail

            async def all_accounted_for() -> bool:
                archived = await archived_seqs(office, BUS)
                return sorted(set(archived) | set(waiting)) == list(range(1, last + 1))

            await office.wait_until(all_accounted_for, timeout=20)
            assert await office.archive.gaps(BUS) == []
            # Nothing was committed twice under two seqs: each telemetry sample is taken
            # once, so their times rise strictly in seq order, across the kill too (the
            # second run samples after the first one died).
            samples = [r.ts for r in await office.archive.records(BUS)
                       if r.schema_.startswith("busd.telemetry")]
            assert len(samples) >= 2 * STREAMED
            assert all(a < b for a, b in itertools.pairwise(samples))
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
