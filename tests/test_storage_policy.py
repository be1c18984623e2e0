"""The one storage-failure policy (busd/storage.py), and the two bugs of its old copies:
the outbox starved the watchdog while it retried a full disk, and a command answered
on a full disk failed the uplink and lost its answer.

The full disk is SQLite's own refusal (``PRAGMA max_page_count``), as in
tests/test_disk_full.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from busd.clock import ManualClock, SystemClock
from busd.config import OutboxConfig
from busd.errors import StorageError
from busd.ports import JsonObject
from busd.state import VehicleState
from busd.storage import Backlog, StorageAlert, StoragePolicy, StorageStatus
from busd.supervisor import Backoff, ComponentContext, ComponentHealth, Phase, Supervisor
from busd.watchdog import Notifier, SystemdWatchdog
from telemetry.outbox import Outbox
from telemetry.wiring import build_uplink
from tests.support.mosquitto import Mosquitto
from tests.support.uplink_env import bus_config, running_office
from tests.support.wait import wait_until


async def pragma(outbox: Outbox, sql: str) -> list[Any]:
    def query() -> list[Any]:
        db = outbox._db
        assert db is not None  # the outbox is open
        return db.execute(sql).fetchall()

    return await outbox._call(query)


def phase(health: ComponentHealth) -> Phase:
    """``health.phase`` read through a call: mypy would keep what an earlier assert narrowed
    the attribute to, across the calls that change it."""
    return health.phase


async def fill_disk(outbox: Outbox) -> None:
    """SQLite may not grow the file by one more page."""
    await pragma(outbox, "PRAGMA wal_checkpoint(TRUNCATE)")
    [(pages,)] = await pragma(outbox, "PRAGMA page_count")
    await pragma(outbox, f"PRAGMA max_page_count = {pages}")
    # The last page may still have room for a small record: fill it.
    for _ in range(100):
        try:
            await outbox.append("event", "filler", {"pad": "x" * 500})
        except StorageError:
            return
    raise AssertionError("the disk would not fill")


async def free_disk(outbox: Outbox) -> None:
    await pragma(outbox, "PRAGMA max_page_count = 1073741823")


async def read_only(outbox: Outbox, on: bool) -> None:
    """As a file system remounted read-only refuses SQLite: every write, deletes too (a
    full disk may still take a delete that frees pages)."""
    await pragma(outbox, f"PRAGMA query_only = {'ON' if on else 'OFF'}")


# --- the policy itself ----------------------------------------------------------------


def context(
    clock: ManualClock, name: str = "writer"
) -> tuple[ComponentContext, ComponentHealth]:
    health = ComponentHealth(name, True, Phase.RUNNING)
    return ComponentContext(health, clock), health


def test_a_refused_write_degrades_reports_and_recovery_lifts_only_its_own_degradation() -> None:
    reports: list[str | None] = []
    clock = ManualClock()
    policy = StoragePolicy("notes", clock=clock, report=reports.append)
    ctx, health = context(clock)
    policy.refused(StorageError("cannot write the store: database or disk is full"), ctx)
    assert health.phase is Phase.DEGRADED and "disk is full" in health.reason
    assert reports == ["cannot write the store: database or disk is full"]
    failing = policy.failing  # a name: mypy would hold the property's narrowing across calls
    assert ctx.counters["storage_refused"] == 1 and failing
    policy.wrote(ctx)
    assert phase(health) is Phase.RUNNING and reports[-1:] == [None] and not policy.failing
    policy.wrote(ctx)  # writing again, again: no news
    assert reports.count(None) == 1

    # Degraded since for another reason (a broker that is down): not ours to lift.
    policy.refused(OSError(28, "No space left on device", "state.json"), ctx)
    assert reports[-1] == "state.json: No space left on device"
    ctx.degraded("broker unreachable")
    policy.wrote(ctx)
    assert health.phase is Phase.DEGRADED and health.reason == "broker unreachable"


async def test_the_wait_backs_off_on_the_clock_and_beats_all_the_while() -> None:
    clock = ManualClock()
    policy = StoragePolicy("x", clock=clock, backoff=Backoff(initial_s=8.0, max_s=8.0),
                           rng=random.Random(1))
    ctx, health = context(clock)
    policy.refused(StorageError("full"), ctx)
    delay = policy.delay()
    assert 4.0 <= delay <= 8.0
    waiter = asyncio.create_task(policy.wait(ctx, seconds=6.0))
    try:
        await wait_until(lambda: clock.sleepers == 1, timeout=2)
        for second in range(1, 6):
            await clock.advance(1.0)
            await wait_until(lambda: health.last_beat == second, timeout=2,  # noqa: B023
                             what="a beat a second")
            assert not waiter.done()
        await clock.advance(1.0)
        await asyncio.wait_for(waiter, 2)
    finally:
        waiter.cancel()


async def test_until_written_retries_until_the_disk_takes_it() -> None:
    clock = ManualClock()
    reports: list[str | None] = []
    policy = StoragePolicy("x", clock=clock, report=reports.append,
                           backoff=Backoff(initial_s=1.0, max_s=4.0))
    ctx, health = context(clock)
    tries = []

    async def write() -> int:
        tries.append(clock.monotonic())
        if len(tries) < 4:
            raise StorageError("read-only")
        return 7

    task = asyncio.create_task(policy.until_written(write, ctx))
    while not task.done():
        await clock.advance(0.5)
        await asyncio.sleep(0)
    assert task.result() == 7 and len(tries) == 4
    assert reports == ["read-only", None] and health.phase is Phase.RUNNING
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps[-1] > gaps[0]  # the back-off grew


def test_the_backlog_is_bounded_drops_the_oldest_and_counts_it() -> None:
    backlog: Backlog[int] = Backlog("outbox", capacity=3)
    backlog.extend(range(5))
    assert list(backlog) == [2, 3, 4] and backlog.dropped == 2
    assert backlog.take() == [2, 3, 4] and not backlog and len(backlog) == 0
    with pytest.raises(ValueError):
        Backlog("x", capacity=0)


class Board:
    def __init__(self) -> None:
        self.active: dict[str, str] = {}

    def raise_alert(self, kind: str, *, message: str, details: dict[str, object]) -> None:
        self.active.setdefault(kind, message)

    def clear_alert(self, kind: str, *, details: dict[str, object]) -> None:
        self.active.pop(kind, None)


async def test_one_storage_alert_from_the_first_failing_writer_to_the_last() -> None:
    status = StorageStatus()
    board = Board()
    alert = StorageAlert(status=status, alerts=board)
    task = asyncio.create_task(alert.run(context(ManualClock(), alert.name)[0]))
    try:
        status.report("outbox", "database or disk is full")
        await wait_until(lambda: "storage_unwritable" in board.active, timeout=2)
        assert board.active["storage_unwritable"] == "cannot write outbox: database or disk is full"
        status.report("planner", "state.json: Read-only file system")
        status.report("outbox", None)
        await asyncio.sleep(0)
        assert "storage_unwritable" in board.active  # the planner still cannot write
        status.report("planner", None)
        await wait_until(lambda: not board.active, timeout=2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- bug 6(a): the outbox starved the watchdog ----------------------------------------


class Datagrams(Notifier):
    def __init__(self) -> None:
        super().__init__(address="")
        self.enabled = True
        self.sent: list[str] = []

    def send(self, *fields: str) -> None:
        self.sent.append("\n".join(fields))


async def test_a_full_disk_longer_than_the_watchdog_limit_keeps_the_watchdog_fed(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    reports: list[str | None] = []
    outbox = Outbox(path=tmp_path / "outbox.sqlite", clock=clock,
                    config=OutboxConfig(commit_interval_s=0.5), on_storage=reports.append)
    sup = Supervisor([outbox], clock=clock)
    notifier = Datagrams()
    watchdog = SystemdWatchdog(health=lambda: sup.health, clock=clock, notifier=notifier,
                               period_s=4.0, stall_limit_s=10.0)
    sup.add(watchdog)
    runner = asyncio.create_task(sup.run())

    def both_asleep() -> bool:
        return clock.sleepers == 2  # the outbox's loop and the watchdog's

    try:
        await wait_until(lambda: sup.health["systemd"].phase is Phase.RUNNING and both_asleep(),
                         timeout=10)
        await fill_disk(outbox)
        for n in range(120):  # a minute of full disk: six times the watchdog's stall limit
            outbox.add_telemetry({"values": {"battery.soc": 50.0 + n / 100}}, full=False)
            await clock.advance(0.5)
            await wait_until(both_asleep, timeout=10, what="the outbox and the watchdog to wait")
        assert reports and reports[0] is not None and "full" in reports[0]
        assert sup.health["outbox"].phase is Phase.DEGRADED
        assert sup.health["outbox"].restarts == 0
        assert watchdog.withheld == 0, "the watchdog was starved by the retrying outbox"
        assert sum(1 for d in notifier.sent if d.startswith("WATCHDOG=1")) >= 25

        await free_disk(outbox)
        for _ in range(130):  # at most the longest back-off
            if phase(sup.health["outbox"]) is Phase.RUNNING:
                break
            await clock.advance(0.5)
            await wait_until(both_asleep, timeout=10)
        assert phase(sup.health["outbox"]) is Phase.RUNNING and reports[-1] is None
        rows = await outbox.peek(after_seq=0, limit=1000)
        assert sum(1 for r in rows if r.stream == "telemetry") == 120  # nothing lost
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 10)


# --- bug 6(b): a command on a full disk -----------------------------------------------


async def test_a_command_answered_while_the_disk_refuses_writes_is_kept_and_delivered(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = bus_config(tmp_path, mosquitto.port)
    clock = SystemClock()
    parts = build_uplink(config, state=VehicleState(clock), clock=clock)
    sup = Supervisor(parts.components, clock=clock, backoff=Backoff(initial_s=0.05, max_s=0.3))
    runner = asyncio.create_task(sup.run())
    try:
        async with running_office(mosquitto.port) as office:
            await office.wait_until(lambda: office.fleet.get("bus-01") and
                                    office.fleet["bus-01"].online, timeout=10)
            await read_only(parts.outbox, True)
            await office.send_command("bus-01", "ping", {
                "schema": "busd.cmd.ping/1", "bus": "bus-01",
                "ts": "2026-01-01T00:00:00.000Z", "id": "ping-on-a-full-disk"})
            await wait_until(lambda: parts.uplink.counters["commands"] == 1, timeout=10,
                             what="the command to be handled")
            await wait_until(lambda: sup.health["outbox"].phase is Phase.DEGRADED, timeout=10)
            # The receipt and the answer are kept in memory (the counter above moves before
            # they are handed over).
            await wait_until(lambda: parts.outbox.unwritten == 2, timeout=10,
                             what="the receipt and the answer kept in memory")
            # The uplink goes on: not failed, still connected.
            assert sup.health["uplink"].restarts == 0 and sup.health["uplink"].last_error == ""
            assert parts.uplink.connected

            await read_only(parts.outbox, False)
            await office.wait_until(lambda: len(office.fleet["bus-01"].cmd_results) == 1,
                                    timeout=20)
            [result] = office.fleet["bus-01"].cmd_results
            assert result["id"] == "ping-on-a-full-disk" and result["accepted"] is True
            assert sup.health["uplink"].restarts == 0 and parts.outbox.unwritten == 0
    finally:
        sup.request_stop()
        await asyncio.wait_for(runner, 10)


# --- an accepted plan on a full disk ----------------------------------------------------


async def test_a_plan_accepted_while_the_disk_refuses_writes_is_answered_accepted(
    tmp_path: Path,
) -> None:
    """The planner has taken the plan: its version is remembered in memory (the next
    command is checked against it) and written once the disk takes it."""
    from busd.ports import CommandOutcome
    from telemetry.commands import PLAN_VERSION_KEY, CommandDispatcher
    from tests.test_commands import plan

    clock = ManualClock()
    reports: list[str | None] = []
    outbox = Outbox(path=tmp_path / "outbox.sqlite", clock=clock, config=OutboxConfig(),
                    on_storage=reports.append)
    await outbox.open()
    taken: list[int] = []

    async def planner(body: JsonObject) -> CommandOutcome:
        taken.append(body["version"])
        return CommandOutcome.accept()

    commands = CommandDispatcher(bus_id="bus-01", clock=clock, store=outbox)
    commands.register("plan", planner)
    try:
        await read_only(outbox, True)
        result = await commands.handle("plan", json.dumps(plan(3)).encode())
        assert result.accepted, result.reason
        assert result.detail.version == 3 and taken == [3]
        assert reports and reports[-1] is not None  # degraded and reported, not failed
        older = await commands.handle("plan", json.dumps(plan(2)).encode())
        assert not older.accepted and "not above the version 3 accepted" in older.reason

        await read_only(outbox, False)
        await outbox.flush()  # the outbox's loop retries this after its back-off
    finally:
        await outbox.close()
    reopened = Outbox(path=tmp_path / "outbox.sqlite", clock=clock, config=OutboxConfig())
    await reopened.open()
    try:
        assert await reopened.get_meta(PLAN_VERSION_KEY) == "3"
    finally:
        await reopened.close()
