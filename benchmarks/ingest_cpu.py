"""CPU per record of one ``busd office ingest`` worker, and of PostgreSQL behind it.

    python benchmarks/ingest_cpu.py [--buses 40] [--minutes 30]

A figure that contention on a shared machine does not move much (CPU time, not wall time):
the office_ingest benchmark's records per second depend on how many cores the worker, the
fleet, mosquitto and PostgreSQL get; this measures what each record costs.

The fleet simulator makes ``--buses`` backlogs of ``--minutes`` (the production outbox); their
records are packed as the uplink packs them (``build_messages``: batches of up to 1000 records
and 256 kB) and published to a private mosquitto on the backlog topics while one worker
(its two lanes) drains them into a private PostgreSQL. Last line, one JSON object:
``worker_us_per_record`` and ``postgresql_us_per_record`` (user + system CPU over the drain),
``records_per_s`` (wall time: depressed by whatever else runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulators.fleet.config import FleetConfig, OutageConfig, RatesConfig  # noqa: E402
from telemetry.mqtt import BrokerSettings, make_client  # noqa: E402
from telemetry.outbox import Row  # noqa: E402
from telemetry.uplink import build_messages  # noqa: E402
from tests.support.fleet import count, ingest_process, stop_process, tree_cpu_s  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.postgres import start_postgres, stop_postgres  # noqa: E402


def backlogs(work: Path, buses: int, minutes: float) -> list[tuple[str, list[Row]]]:
    config = FleetConfig(
        buses=buses, processes=2, broker_port=1883, speed=1.0, duration_s=24 * 3600, seed=14,
        data_dir=work / "outboxes", backlog_min=minutes, live=False,
        outages=OutageConfig(count=0),
        rates=RatesConfig(telemetry_moving_s=1, telemetry_parked_s=1, state_moving_s=1,
                          state_parked_s=30, commit_interval_s=0.5, tick_s=1),
        log_level="error")
    path = work / "fleet.json"
    path.write_text(config.model_dump_json())
    subprocess.run([sys.executable, "-m", "simulators.fleet", "--config", str(path)], cwd=REPO,
                   check=True, capture_output=True)
    out = []
    for folder in sorted((work / "outboxes").glob("*/")):
        with sqlite3.connect(folder / "outbox.sqlite") as db:
            rows = [Row(*r) for r in db.execute(
                "SELECT seq, stream, kind, ts, body FROM outbox ORDER BY seq")]
        out.append((folder.name, rows))
    return out


async def publish(port: int, fleet: list[tuple[str, list[Row]]], lane: str,
                  per_message: int) -> int:
    records = 0
    async with make_client(BrokerSettings(host="127.0.0.1", port=port), identifier="bench-bus",
                           protocol=aiomqtt.ProtocolVersion.V5) as client:
        for bus, rows in fleet:
            for message in build_messages(rows, prefix=f"multimobile/v1/{bus}{lane}", bus=bus,
                                          now=time.time(), max_records=per_message,
                                          max_bytes=256 * 1024):
                await client.publish(message.topic, message.payload, qos=1)
                records += len(message.seqs)
    return records


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="ingest-cpu-"))
    pg_folder = Path(tempfile.mkdtemp(prefix="busd-pg-"))  # chowned to PostgreSQL's account
    server = start_postgres(pg_folder)
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        fleet = await asyncio.to_thread(backlogs, work, args.buses, args.minutes)
        url = server.create_database("cpu")
        pg_pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
        worker = ingest_process(broker.port, url, "cpu-1", "--log-level", "warning",
                                log=work / "worker.log")
        # Migrated, connected and subscribed (its last filter in the broker's log).
        lane = "" if args.live_topics else "/backlog"
        while True:
            try:
                await asyncio.to_thread(count, url)
                if f"+{lane}/cmd/result" in broker.log_text():
                    break
            except Exception:  # no records table yet
                pass
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited: {worker.returncode}")
            await asyncio.sleep(0.2)
        worker0, pg0, t0 = tree_cpu_s(worker.pid), tree_cpu_s(pg_pid), time.time()
        total = await publish(broker.port, fleet, lane, args.per_message)
        while (done := await asyncio.to_thread(count, url)) < total:
            if time.time() - t0 > args.timeout:
                raise SystemExit(f"only {done} of {total} archived in {args.timeout} s")
            await asyncio.sleep(0.2)
        wall = time.time() - t0
        worker_s, pg_s = tree_cpu_s(worker.pid) - worker0, tree_cpu_s(pg_pid) - pg0
        return {"records": total, "records_per_s": round(total / wall),
                "worker_us_per_record": round(worker_s / total * 1e6, 1),
                "postgresql_us_per_record": round(pg_s / total * 1e6, 1),
                "worker_cpu_s": round(worker_s, 2), "postgresql_cpu_s": round(pg_s, 2)}
    finally:
        if worker is not None:
            stop_process(worker)
        broker.stop()
        stop_postgres(server)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pg_folder, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buses", type=int, default=40)
    p.add_argument("--minutes", type=float, default=30.0, help="backlog per bus")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--per-message", type=int, default=1000, metavar="N",
                   help="records per message at most (1: live traffic, one record a message)")
    p.add_argument("--live-topics", action="store_true",
                   help="publish on the live record topics (a worker without the backlog lane)")
    print(json.dumps(asyncio.run(main_async(p.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
