"""Power cuts: the daemon SIGKILLed at random moments leaves its databases whole.

The real daemon (``busd run``) with the CAN simulator and no reachable broker,
so its outbox keeps growing; killed repeatedly while it writes, then the
databases are checked: SQLite integrity, and a seq that never goes back and
never repeats across restarts.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.can_helpers import OWN_DBC, write_config
from tests.conftest import REPO


def daemon_config(tmp_path: Path) -> Path:
    mapping = (REPO / "config" / "sim.toml").read_text().split("# --- Mapping")[1]
    return write_config(tmp_path, f"""bus_id = "lv-09"
[log]
format = "json"
[outbox]
commit_interval_s = 0.5
[monitoring]
soc_sample_s = 0.5
checkpoint_s = 1
[uplink]
telemetry_interval_moving_s = 0.2
telemetry_interval_parked_s = 0.2
[can]
interface = "virtual"
channel = "crash-test"
dbc = "{OWN_DBC}"
[simulators.can]
interface = "virtual"
channel = "crash-test"
dbc = "{OWN_DBC}"
drive_s = 20
stop_s = 10
# --- Mapping{mapping}""")


def outbox_state(path: Path) -> tuple[list[int], int]:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seqs = [row[0] for row in db.execute("SELECT seq FROM outbox ORDER BY seq")]
        meta = db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
    return seqs, int(meta[0]) if meta else 0


def wait_for_rows(path: Path, more_than: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with sqlite3.connect(path, timeout=1) as db:
                    count: int = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
                if count > more_than:
                    return count
            except sqlite3.OperationalError:
                pass  # not created yet
        time.sleep(0.05)
    raise TimeoutError(f"outbox did not grow past {more_than} rows")


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_databases_whole(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    outbox = tmp_path / "data" / "outbox.sqlite"
    rng = random.Random(7)
    seen_max = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            rows_before = outbox_state(outbox)[0] if outbox.exists() else []
            wait_for_rows(outbox, len(rows_before))
            time.sleep(rng.uniform(0.0, 0.5))  # the kill lands at a random point of the writing
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        seqs, last_seq = outbox_state(outbox)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a repeat in seq"
        assert seqs[-1] > seen_max, "seq went back after a restart"
        assert last_seq <= seqs[-1]
        seen_max = seqs[-1]
    with sqlite3.connect(tmp_path / "data" / "monitoring.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # And the daemon runs on what the kills left: a clean run stores its SOC samples there.
    proc = subprocess.Popen(
        [sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    monitoring = tmp_path / "data" / "monitoring.sqlite"
    try:
        # The outbox grows before the tracker's first sample (the uplink's records come
        # first), so wait for what this run must show: SOC samples it stored itself.
        wait_for_soc_samples(monitoring, more_than=soc_sample_count(monitoring))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
        proc.wait()
    with sqlite3.connect(monitoring) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def soc_sample_count(path: Path) -> int:
    with sqlite3.connect(path, timeout=1) as db:
        count: int = db.execute("SELECT count(*) FROM soc_samples").fetchone()[0]
    return count


def wait_for_soc_samples(path: Path, more_than: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if soc_sample_count(path) > more_than:
                return
        except sqlite3.OperationalError:
            pass  # locked for a moment
        time.sleep(0.05)
    raise TimeoutError(f"the daemon stored no SOC sample after the kills (still {more_than})")
