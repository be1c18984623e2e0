"""Soak and fault test (run by hand; figures go in the issue notes).

Runs the scenario runner (simulators, a private mosquitto, gpsd, the office
archiving everything, and ``busd run`` as its own process) for ``--minutes``
of wall time on an accelerated day full of faults: the daemon SIGKILLed at
random moments (at least 20 times), the broker down every few minutes, GPS
outages and lost fixes, CAN silences. Then it compares what the daemon
produced (its last seq) with what the office received (distinct seqs, after
dropping duplicates) and what still waits in the outbox.

Storage faults: the daemon's data folder is a small tmpfs of its own
(``--disk-mb``), mounted in a private mount namespace (the script re-runs itself
under ``unshare``; as a normal user, in a user namespace as well). It is filled
to the last byte at 35 % of the run, and remounted read-only at 60 %, each for
``--storage-fault-min`` minutes of wall time. The daemon must raise
``storage_unwritable``, keep running, clear the alert when it can write again,
and lose nothing it had stored. Where no namespace can be made, the soak runs
without these episodes and says so.

Usage: python benchmarks/soak.py [--minutes 30] [--seed 1] [--disk-mb 64]
       [--storage-fault-min 3] [--no-storage-faults] [--keep DIR]
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import sys
import tempfile
import threading
import time
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from storage_faults import (  # benchmarks/ is on sys.path: the script's own folder
    Episode,
    disk_full,
    in_mount_namespace,
    mount_small_fs,
    read_only,
    reexec_in_mount_namespace,
    unmount,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulators.scenario.model import parse_scenario  # noqa: E402
from simulators.scenario.runner import ScenarioRunner  # noqa: E402

BASE = REPO / "scenarios" / "summer-livani.toml"  # a full 10-hour day, nothing to re-plan


DAY_S = 9.5 * 3600  # 07:15 to 16:45: the faults fall in 5-95 % of it
SIM_DAY_S = 9.2 * 3600


def soak_scenario(minutes: float, rng: random.Random) -> tuple[dict[str, Any], float]:
    """A whole summer day at the speed that makes it last ``minutes``, full of faults."""
    data = tomllib.loads(BASE.read_text())
    # The summer day's report comes about 9.3 simulated hours after 07:15 (measured);
    # at this speed the run lasts at least ``minutes`` of wall time.
    speed = round(SIM_DAY_S / (minutes * 60), 2)
    data["name"] = "soak"
    data["speed"] = speed
    data.pop("expect_plan_change", None)
    data.pop("expect_charging", None)
    start = datetime.combine(datetime(2026, 1, 1),
                             datetime.strptime(data["start"], "%H:%M:%S").time())
    day_s = DAY_S
    faults = []

    def at(offset_s: float) -> str:
        return (start + timedelta(seconds=offset_s)).time().strftime("%H:%M:%S")

    def spread(kind: str, count: int, lasting: tuple[float, float], key: str) -> None:
        """``count`` faults of one kind, evenly spread with jitter, never overlapping
        (the runner handles one fault of a kind at a time)."""
        slot = 0.9 * day_s / count
        for k in range(count):
            minutes_on = round(rng.uniform(*lasting), 1)
            jitter = rng.uniform(0.0, max(0.0, slot - minutes_on * 60 - 60))
            faults.append({"kind": kind, "at": at(0.05 * day_s + k * slot + jitter),
                           key: minutes_on})

    spread("daemon_kill", max(20, int(minutes * 0.8)), (1.0, 4.0), "restart_after_min")
    spread("broker_down", max(3, int(minutes / 3)), (5.0, 20.0), "duration_min")
    for kind in ("gps_outage", "gps_no_fix", "can_silence"):
        spread(kind, max(2, int(minutes / 10)), (2.0, 8.0), "duration_min")
    data["faults"] = sorted(faults, key=lambda f: f["at"])
    return data, speed


class Sampler(threading.Thread):
    """Peak RSS and CPU time of every ``busd run`` process the soak starts."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self.alive_s = 0.0

    def run(self) -> None:
        me = psutil.Process()
        last = time.monotonic()
        while not self.stop.wait(0.5):
            now = time.monotonic()
            daemons = [p for p in me.children(recursive=True)
                       if "busd.cli" in " ".join(p.cmdline() or []) and "run" in p.cmdline()]
            if daemons:
                self.alive_s += now - last
            last = now
            for proc in daemons:
                try:
                    self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                except psutil.Error:
                    pass


def outbox_state(path: Path) -> tuple[int, set[int]]:
    con = sqlite3.connect(path)
    try:
        meta = con.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        pending = {int(r[0]) for r in con.execute("SELECT seq FROM outbox")}
    finally:
        con.close()
    return max(int(meta[0]) if meta else 0, max(pending, default=0)), pending


def storage_alerts(records: list[dict[str, Any]]) -> tuple[int, int, bool]:
    """storage_unwritable as the office saw it: raised, cleared, and whether it is left
    raised at the end (by kind, as an office keeps alerts: a raise of an active kind is
    the same situation)."""
    events = [r for r in records if r["schema"].startswith("busd.event")
              and r["kind"] in ("alert_raised", "alert_cleared")
              and (r.get("data") or {}).get("alert") == "storage_unwritable"]
    active = False
    for r in sorted(events, key=lambda r: r["seq"]):
        active = r["kind"] == "alert_raised"
    return (sum(r["kind"] == "alert_raised" for r in events),
            sum(r["kind"] == "alert_cleared" for r in events), active)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--disk-mb", type=int, default=64,
                        help="size of the daemon's own small file system")
    parser.add_argument("--storage-fault-min", type=float, default=None,
                        help="wall minutes the disk stays full, and then read-only "
                             "(default: a tenth of the run each)")
    parser.add_argument("--no-storage-faults", action="store_true")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this (new) folder and keep it: logs, databases, archive")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    rng = random.Random(args.seed)
    data, speed = soak_scenario(args.minutes, rng)
    kills = sum(1 for f in data["faults"] if f["kind"] == "daemon_kill")
    broker_restarts = sum(1 for f in data["faults"] if f["kind"] == "broker_down")
    loaded = parse_scenario(data, base=BASE.parent)
    sampler = Sampler()
    sampler.start()
    episodes: list[Episode] = []
    with (contextlib.nullcontext(str(args.keep)) if args.keep
          else tempfile.TemporaryDirectory()) as tmp:
        data_dir = Path(tmp) / "bus"
        if not args.no_storage_faults and in_mount_namespace():
            mount_small_fs(data_dir, args.disk_mb)
            lasting = (args.storage_fault_min if args.storage_fault_min is not None
                       else args.minutes / 10) * 60
            run_s = args.minutes * 60
            episodes = [disk_full(data_dir, start_after_s=0.35 * run_s, lasting_s=lasting),
                        read_only(data_dir, start_after_s=0.6 * run_s, lasting_s=lasting)]
        runner = ScenarioRunner(loaded, workdir=Path(tmp), speed=speed)
        started = time.monotonic()
        faults = [asyncio.create_task(e.run()) for e in episodes]
        try:
            result = await runner.run()
        finally:
            for task in faults:
                task.cancel()
            await asyncio.gather(*faults, return_exceptions=True)
        wall = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        produced, pending = outbox_state(result.workdir / "bus" / "outbox.sqlite")
        received = {r["seq"] for r in result.records}
        lost = sorted(set(range(1, produced + 1)) - received - pending)
        if episodes:
            unmount(data_dir)
    cpu_share = sum(sampler.cpu.values()) / max(sampler.alive_s, 1e-9)
    print(f"soak: {wall / 60:.1f} min wall, {result.daemon_starts} daemon starts, "
          f"{kills} kills, {broker_restarts} broker outages; produced {produced}, "
          f"received {len(received)}, still in the outbox {len(pending)}, lost {len(lost)}, "
          f"duplicates dropped by the office {result.duplicates}", flush=True)
    if not episodes:
        print("storage faults: none (" + (disk_skip or "--no-storage-faults") + ")", flush=True)
    for e in episodes:
        done = "" if e.ended_at else " (the day ended first)"
        print(f"{e.name}: {e.lasting_s / 60:.1f} min from {(e.began_at or started) - started:.0f}"
              f" s, topped up {e.top_ups} times{done}", flush=True)
    if episodes:
        raised, cleared, left = storage_alerts(result.records)
        print(f"storage_unwritable alerts at the office: raised {raised}, cleared {cleared}, "
              f"{'LEFT RAISED' if left else 'none left raised'}", flush=True)
    print(json.dumps({
        "minutes": round(wall / 60, 1), "kills": kills, "broker_restarts": broker_restarts,
        "produced": produced, "received": len(received), "lost": len(lost),
        "duplicates_after_dedup": len(result.records) - len(received),
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1), "cpu_share": round(cpu_share, 4),
    }))


disk_skip: str | None = None

if __name__ == "__main__":
    if "--no-storage-faults" not in sys.argv:
        disk_skip = reexec_in_mount_namespace()  # returns only where it cannot
    asyncio.run(main())
