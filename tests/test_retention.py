from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from busd.clock import ManualClock
from busd.monitoring.retention import RetentionJob
from busd.supervisor import Supervisor
from telemetry.monitoring_store import MonitoringStore
from tests.support.wait import wait_until

JAN_1_2026_NOON = 1_767_268_800.0


async def run_once(store: MonitoringStore, clock: ManualClock, days: int) -> int:
    job = RetentionJob(clock=clock, purge_before=store.purge_before, days=days,
                       timezone="Europe/Riga")
    sup = Supervisor([job], clock=clock)
    runner = asyncio.create_task(sup.run())
    try:
        await wait_until(lambda: "deleted" in sup.health[job.name].counters, timeout=5,
                         what="the first purge")
        return int(sup.health[job.name].counters["deleted"])
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MonitoringStore]:
    store = MonitoringStore(tmp_path / "m.sqlite")
    for day in ("2025-01-01", "2025-12-01", "2026-01-01"):
        store.set_clients_served(visit_id=f"v-{day}", day=day, count=3, ts=0.0)
    yield store
    store.close()


async def test_days_past_retention_are_deleted_and_recent_ones_kept(store: MonitoringStore) -> None:
    clock = ManualClock(start=JAN_1_2026_NOON)
    assert await run_once(store, clock, days=60) == 1  # cutoff 2025-11-02
    assert store.clients_served("v-2025-01-01") == 0
    assert store.clients_served("v-2025-12-01") == 3
    assert store.clients_served("v-2026-01-01") == 3


async def test_the_job_runs_again_each_day(store: MonitoringStore) -> None:
    clock = ManualClock(start=JAN_1_2026_NOON)
    job = RetentionJob(clock=clock, purge_before=store.purge_before, days=31,
                       timezone="Europe/Riga")
    sup = Supervisor([job], clock=clock)
    runner = asyncio.create_task(sup.run())
    try:
        # 2025-01-01 goes, and the job waits for tomorrow.
        await wait_until(lambda: sup.health[job.name].counters.get("deleted") == 1
                         and clock.sleepers == 1, timeout=5, what="the first purge")
        await clock.advance(86_400)  # Jan 2: cutoff 2025-12-02, so 2025-12-01 goes
        await wait_until(lambda: sup.health[job.name].counters.get("deleted") == 2, timeout=5,
                         what="the second purge")
        assert store.clients_served("v-2026-01-01") == 3
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 5)
