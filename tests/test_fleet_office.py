"""The office against 50 simulated buses (simulators/fleet): two ``busd office ingest`` workers
archive every record of every bus exactly once, after each bus's own link outage.

Each bus runs the production outbox, uplink and sampler; its link to the broker is cut once
for 5-15 simulated minutes while it goes on recording, and drains its outbox afterwards. The
fleet reports every bus's last seq; the archive must hold 1..last_seq of each, once."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from simulators.fleet.config import (
    DayConfig,
    FleetConfig,
    MinutesRange,
    OutageConfig,
    RatesConfig,
)
from simulators.fleet.runner import FleetReport
from tests.support.fleet import check, ingest_process, kinds, stop_process
from tests.support.mosquitto import REPO, Mosquitto
from tests.support.wait import wait_until

BUSES = 50


def fleet_config(port: int, data_dir: Path) -> FleetConfig:
    # Two simulated hours at 600x (12 real seconds): a short day (one village) fits, so every
    # kind of record is made, the daily report included. Rates lower than a real bus's keep
    # the volume (about 25,000 records) within what two cores shared with others can carry.
    return FleetConfig(
        buses=BUSES, processes=2, broker_port=port, speed=600, duration_s=7200, seed=14,
        data_dir=data_dir, backlog_min=10,
        day=DayConfig(stops=1, depot_min=MinutesRange(low=2, high=5),
                      visit_min=MinutesRange(low=20, high=30),
                      charge_min=MinutesRange(low=10, high=20),
                      lift_every_min=MinutesRange(low=5, high=10), alert_probability=0.5),
        outages=OutageConfig(count=1, length_min=MinutesRange(low=5, high=15)),
        rates=RatesConfig(telemetry_moving_s=10, telemetry_parked_s=60, state_moving_s=30,
                          state_parked_s=120, commit_interval_s=10, tick_s=10),
        drain_timeout_s=60, log_level="error")


async def run_fleet(config: FleetConfig, tmp_path: Path) -> FleetReport:
    config_file = tmp_path / "fleet-config.json"
    config_file.write_text(config.model_dump_json())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.fleet",
        "--config", str(config_file), cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(120):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()[-2000:]
    lines = out.decode().splitlines()
    assert json.loads(lines[0])["event"] == "live"
    return FleetReport.model_validate_json(lines[-1])


async def test_fifty_buses_with_outages_are_archived_exactly_once(
        tmp_path: Path, mosquitto: Mosquitto, postgres_url: str) -> None:
    # One fleet run feeds both back ends: each archive has its own pair of workers in its
    # own shared-subscription group, so the broker gives every record to one worker of
    # each pair. (The fleet side, the same for both, used to run once per back end.)
    urls = {"sqlite": f"sqlite:///{tmp_path}/archive.db", "postgresql": postgres_url}
    workers = [ingest_process(mosquitto.port, url, f"ingest-{kind}-{n}", "--group", kind,
                              "--batch-linger", "0.1", "--log-level", "info",
                              log=tmp_path / f"ingest-{kind}-{n}.log")
               for kind, url in urls.items() for n in (1, 2)]
    try:
        report = await run_fleet(fleet_config(mosquitto.port, tmp_path / "fleet"), tmp_path)
        assert report.buses == BUSES and report.failed_processes == 0
        assert report.undelivered == 0  # every outbox drained before its bus stopped
        assert report.outages == BUSES  # each bus lost its link once
        assert all(b.backlog_seq > 0 for b in report.per_bus)
        assert all(b.last_seq > b.backlog_seq for b in report.per_bus)
        last_seqs = report.last_seqs()

        for kind, url in urls.items():
            def archived_all(url: str = url) -> bool:
                return check(url, last_seqs).archived >= report.records

            await wait_until(archived_all, timeout=60, interval=0.5,
                             what=f"{report.records} records archived in {kind}")
            result = check(url, last_seqs)
            assert (result.lost, result.duplicates, result.extra) == (0, 0, 0), (kind, result)
            assert result.archived == report.records, kind
    finally:
        for proc in workers:
            stop_process(proc)
    for kind, url in urls.items():
        # Both workers had a share (MQTT 5 shared subscription), and neither refused a record.
        shares = []
        for n in (1, 2):
            lines = [json.loads(line) for line
                     in (tmp_path / f"ingest-{kind}-{n}.log").read_text().splitlines()
                     if line.startswith("{")]
            assert not [x for x in lines if x.get("event") == "record_rejected"], kind
            # One line per lane (live and backlog), the worker's share is both.
            stopped = [x["inserted"] for x in lines if x.get("event") == "ingest_stopped"]
            assert len(stopped) == 2, (kind, n, stopped)
            shares.append(sum(stopped))
        assert all(n > 0 for n in shares), (kind, shares)
        assert sum(shares) == report.records, kind
        # A day's worth of every kind of record: telemetry, the tracker's events, the report.
        found = kinds(url)
        assert found >= {"sample", "plan_changed", "visit_started", "visit_ended",
                         "leg_completed", "lift_cycle", "alert_raised", "alert_cleared",
                         "charging_started", "charging_ended", "daily"}, (kind, found)
