"""The office archive: the same tests against SQLite and a private PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from busd.clock import ManualClock
from office.archive import (
    ArchivedRecord,
    ArchiveError,
    Gap,
    InsertResult,
    migrations,
    open_archive,
)
from office.archive.base import Archive, sqlite_path
from office.archive.derived.tables import TABLES
from office.archive.postgres import PostgresArchive
from office.archive.sqlite import SqliteArchive
from telemetry.outbox import Outbox
from telemetry.uplink import _record_json

# The office's clock: 10 March 2026, so the archive makes March and April ahead.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def rec(bus: str, seq: int, ts: datetime, **data: object) -> ArchivedRecord:
    # Telemetry: these tests are about records, not the derived tables (test_office_derived).
    return ArchivedRecord(bus=bus, seq=seq, ts=ts, schema="busd.telemetry/1", kind="sample",
                          topic="telemetry", received=ts + timedelta(seconds=2),
                          data=data or {"stop": f"s{seq}", "soc": 80.5})


@pytest.fixture
async def archive(archive_url: str) -> AsyncIterator[Archive]:
    async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as opened:
        yield opened


async def test_batches_drop_duplicates_inside_and_across_batches(archive: Archive) -> None:
    t = NOW - timedelta(hours=1)
    first = [rec("lv-01", 1, t), rec("lv-01", 2, t + timedelta(seconds=1)),
             rec("lv-01", 2, t + timedelta(seconds=1)), rec("lv-02", 1, t)]
    assert await archive.insert_batch(first) == InsertResult(inserted=3, duplicates=1)
    second = [rec("lv-01", 2, t + timedelta(seconds=1)), rec("lv-01", 3, t + timedelta(seconds=2))]
    assert await archive.insert_batch(second) == InsertResult(inserted=1, duplicates=1)
    assert await archive.insert_batch([]) == InsertResult(0, 0)
    assert await archive.count() == 4
    assert await archive.count("lv-01") == 3
    stored = await archive.records("lv-01")
    assert [r.seq for r in stored] == [1, 2, 3]
    # Typed out as they went in: timestamps, the payload, every field.
    assert stored[0] == first[0]
    assert stored[0].data == {"stop": "s1", "soc": 80.5}


async def test_a_resend_is_a_duplicate_in_any_month(archive: Archive) -> None:
    """A record resent weeks later (a bus back from a long outage) still carries its own ts,
    so it lands on its own key, in its own month's partition, as a duplicate."""
    old = rec("lv-01", 7, datetime(2026, 1, 31, 23, 59, 59, 999000, tzinfo=UTC))
    assert await archive.insert_batch([old]) == InsertResult(1, 0)
    resent = old.model_copy(update={"received": NOW})
    assert await archive.insert_batch([resent]) == InsertResult(0, 1)
    assert await archive.count() == 1


def test_the_bus_resends_a_record_with_the_ts_it_was_made_with(tmp_path: Path) -> None:
    """The assumption the PostgreSQL key rests on: ts is stamped once, when the record is made,
    and every later send of that seq (here after a restart, an hour on) carries the same ts."""

    async def scenario() -> tuple[str, str]:
        clock = ManualClock(NOW.timestamp())
        outbox = Outbox(path=tmp_path / "outbox.sqlite", clock=clock)
        await outbox.open()
        seq = await outbox.append("event", "visit_started", {"stop": "rozupe"})
        (row,) = await outbox.peek(after_seq=seq - 1, limit=1)
        first = json.loads(_record_json('"lv-01"', row))["ts"]
        await outbox.close()
        await clock.advance(3600)
        outbox = Outbox(path=tmp_path / "outbox.sqlite", clock=clock)
        await outbox.open()
        (row,) = await outbox.peek(after_seq=seq - 1, limit=1)
        again = json.loads(_record_json('"lv-01"', row))["ts"]
        await outbox.close()
        return first, again

    first, again = asyncio.run(scenario())
    assert first == again == "2026-03-10T12:00:00.000Z"


async def test_a_month_without_a_partition_is_made_on_demand(archive: Archive) -> None:
    # The office opened in March 2026: November 2025 and January 2027 have no partition yet.
    late = rec("lv-01", 1, datetime(2025, 11, 30, 22, 0, tzinfo=UTC))
    early = rec("lv-01", 2, datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    assert await archive.insert_batch([late, early]) == InsertResult(2, 0)
    assert [r.ts for r in await archive.records("lv-01")] == [late.ts, early.ts]
    if isinstance(archive, PostgresArchive):
        assert await archive.partitions() == [date(2025, 11, 1), date(2026, 3, 1),
                                              date(2026, 4, 1), date(2027, 1, 1)]


async def test_gaps_per_bus_and_local_day(archive: Archive) -> None:
    day = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    # 00:30 on 10 March in Riga, but still 9 March in UTC.
    after_midnight_riga = datetime(2026, 3, 9, 22, 30, tzinfo=UTC)
    await archive.insert_batch([
        rec("lv-01", 3, day),  # 1..2 missing before the first record: not reported
        rec("lv-01", 4, day + timedelta(minutes=1)),
        rec("lv-01", 8, day + timedelta(minutes=2)),  # 5..7 lost on 9 March
        rec("lv-01", 9, after_midnight_riga),
        rec("lv-01", 12, after_midnight_riga + timedelta(minutes=5)),  # 10..11 lost on 10 March
        # 13..14 lost on 10 March; the next record came two days later.
        rec("lv-01", 15, after_midnight_riga + timedelta(days=2)),
        rec("lv-02", 1, day),
        rec("lv-02", 3, day + timedelta(hours=1)),  # 2 lost on 9 March
        # The bus's clock was put back (GPS time after a boot without RTC): seq 2 carries the
        # day before. Within 9 March alone 1 → 3 looks like a gap; it is not one.
        rec("lv-03", 1, day),
        rec("lv-03", 2, day - timedelta(days=1)),
        rec("lv-03", 3, day + timedelta(minutes=1)),
    ])
    all_gaps = await archive.gaps()
    assert [(g.bus, g.first, g.last, g.day) for g in all_gaps] == [
        ("lv-01", 5, 7, date(2026, 3, 9)),
        ("lv-01", 10, 11, date(2026, 3, 10)),
        ("lv-01", 13, 14, date(2026, 3, 10)),
        ("lv-02", 2, 2, date(2026, 3, 9)),
    ]
    assert all_gaps[0] == Gap(bus="lv-01", first=5, last=7, after=day + timedelta(minutes=1),
                              before=day + timedelta(minutes=2), day=date(2026, 3, 9))
    assert all_gaps[0].missing == 3
    assert [(g.first, g.last) for g in await archive.gaps(bus="lv-01")] == [
        (5, 7), (10, 11), (13, 14)]
    assert [(g.bus, g.first) for g in await archive.gaps(day=date(2026, 3, 9))] == [
        ("lv-01", 5), ("lv-02", 2)]
    tenth = await archive.gaps(day=date(2026, 3, 10))
    assert [(g.bus, g.first, g.last) for g in tenth] == [("lv-01", 10, 11), ("lv-01", 13, 14)]
    assert tenth[1].before == after_midnight_riga + timedelta(days=2)
    assert await archive.gaps(bus="lv-03", day=date(2026, 3, 9)) == []
    assert await archive.gaps(bus="lv-02", day=date(2026, 3, 10)) == []
    # The resent records fill the gap, and it is gone.
    await archive.insert_batch([rec("lv-02", 2, day + timedelta(minutes=30))])
    assert await archive.gaps(bus="lv-02") == []


async def test_retention_removes_whole_old_months(archive: Archive) -> None:
    await archive.insert_batch([
        rec("lv-01", 1, datetime(2026, 1, 15, tzinfo=UTC)),
        rec("lv-01", 2, datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)),
        rec("lv-01", 3, datetime(2026, 3, 1, tzinfo=UTC)),
        rec("lv-01", 4, datetime(2026, 3, 9, tzinfo=UTC)),
    ])
    # Everything older than 5 March: January and February end before it; March does not.
    assert await archive.retention(datetime(2026, 3, 5, tzinfo=UTC)) == [
        date(2026, 1, 1), date(2026, 2, 1)]
    assert [r.seq for r in await archive.records("lv-01")] == [3, 4]
    assert await archive.retention(datetime(2026, 3, 5, tzinfo=UTC)) == []
    if isinstance(archive, PostgresArchive):
        assert await archive.partitions() == [date(2026, 3, 1), date(2026, 4, 1)]
    # A straggler for a dropped month is still archived (its month is made again).
    assert await archive.insert_batch([rec("lv-01", 0, datetime(2026, 1, 2, tzinfo=UTC))]) \
        == InsertResult(1, 0)


async def test_migrations_are_applied_once(archive_url: str) -> None:
    clock = ManualClock(NOW.timestamp())
    every = [m.version for m in migrations.load("sqlite")]
    async with open_archive(archive_url, clock=clock) as first:
        assert await first.applied_migrations() == every
        assert await first.migrate() == []
        await first.insert_batch([rec("lv-01", 1, NOW)])
    async with open_archive(archive_url, clock=clock) as second:
        assert await second.migrate() == []
        assert await second.applied_migrations() == every
        assert await second.count() == 1


async def test_two_writers_inserting_the_same_records_store_each_once(archive_url: str) -> None:
    """Two ingest workers got the same records (a redelivery after one of them died) and insert
    them at the same moment, in opposite orders: each record is stored once, and neither fails.

    Each writer runs on its own thread and event loop, as a worker process would: on one loop
    the first batch's Python side finished before the second began, and the inserts never
    overlapped in the server. Large batches, so they do."""
    batch = [rec(f"lv-{b:02d}", seq, NOW - timedelta(seconds=seq))
             for b in range(1, 5) for seq in range(1, 5001)]
    start = threading.Barrier(2, timeout=30)

    def writer(records: list[ArchivedRecord]) -> InsertResult:
        async def write() -> InsertResult:
            async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as mine:
                start.wait()
                return await mine.insert_batch(records)

        return asyncio.run(write())

    outcomes = await asyncio.gather(asyncio.to_thread(writer, batch),
                                    asyncio.to_thread(writer, batch[::-1]),
                                    return_exceptions=True)
    results = [r for r in outcomes if isinstance(r, InsertResult)]
    assert len(results) == 2, outcomes  # e.g. "deadlock detected"
    assert sum(r.inserted for r in results) == len(batch)
    assert sum(r.duplicates for r in results) == len(batch)
    async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as archive:
        assert await archive.count() == len(batch)
        assert await archive.gaps() == []


async def test_a_record_that_skipped_validation_is_refused_by_the_database(
        archive: Archive) -> None:
    bad = rec("lv-01", 1, NOW).model_copy(update={"seq": -1})  # model_copy does not validate
    with pytest.raises(ArchiveError):
        await archive.insert_batch([bad])
    assert await archive.count() == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"seq": -1}, "seq"),
    ({"data": {"when": {1, 2}}}, "payload is not JSON"),
    ({"data": {"soc": math.nan}}, "payload is not JSON"),
    ({"data": {"id": "\ud800"}}, "not valid Unicode"),
    ({"data": {"note": "a\x00b"}}, "NUL"),
    ({"bus": "lv/01"}, "bus"),
    ({"ts": datetime(2026, 3, 10, 12, 0)}, "ts"),  # no time zone: which instant?
])
def test_bad_records_are_refused_with_a_clear_error(change: dict[str, object],
                                                     message: str) -> None:
    fields: dict[str, object] = {"bus": "lv-01", "seq": 1, "ts": NOW, "schema": "busd.event/1",
                                 "kind": "visit_started", "topic": "event/visit_started",
                                 "received": NOW, "data": {"stop": "turki"}}
    with pytest.raises(ValidationError, match=message):
        ArchivedRecord.model_validate(fields | change)


def test_archive_urls() -> None:
    def sqlite_path(url: str) -> str:
        archive = open_archive(url)
        assert isinstance(archive, SqliteArchive)
        return archive.path

    assert sqlite_path("sqlite:///office.db") == "office.db"
    assert sqlite_path("sqlite:////var/lib/busd/office.db") == "/var/lib/busd/office.db"
    assert sqlite_path("sqlite://") == ":memory:"
    assert isinstance(open_archive("postgresql://office@db/busd"), PostgresArchive)
    with pytest.raises(ArchiveError, match="unknown archive URL"):
        open_archive("mysql://office")


async def test_an_unreachable_postgresql_is_a_clear_error() -> None:
    from tests.support.mosquitto import free_port

    archive = PostgresArchive(f"postgresql://busd@127.0.0.1:{free_port()}/x",
                              connect_timeout_s=1.0)
    with pytest.raises(ArchiveError, match="cannot connect"):
        await archive.open()


async def test_a_month_dropped_by_another_worker_is_made_again(archive_url: str) -> None:
    """Worker one knows January's partition; retention in worker two drops it; worker one's
    next January record must still be archived."""
    clock = ManualClock(NOW.timestamp())
    january = datetime(2026, 1, 10, tzinfo=UTC)
    async with open_archive(archive_url, clock=clock) as one, \
            open_archive(archive_url, clock=clock) as two:
        await one.insert_batch([rec("lv-01", 1, january)])
        assert await two.retention(datetime(2026, 2, 1, tzinfo=UTC)) == [date(2026, 1, 1)]
        assert await one.insert_batch([rec("lv-01", 2, january)]) == InsertResult(1, 0)
        assert [r.seq for r in await two.records("lv-01")] == [2]


async def test_workers_migrating_together_apply_each_migration_once(archive_url: str) -> None:
    clock = ManualClock(NOW.timestamp())
    archives = [open_archive(archive_url, clock=clock) for _ in range(3)]
    try:
        for archive in archives:
            await archive.open()
        # Back to an empty database, with three workers connected and ready to migrate at once
        # (opening them together left them connecting one after the other, never overlapping).
        await _drop_schema(archive_url)
        applied = await asyncio.gather(*(a.migrate() for a in archives), return_exceptions=True)
        every = [m.version for m in migrations.load("sqlite")]
        # Each migration once, by whichever worker came first (one transaction per migration,
        # so the workers may take turns), and each worker's in ascending order.
        assert all(isinstance(a, list) for a in applied), applied
        done = [v for a in applied if isinstance(a, list) for v in a]
        assert sorted(done) == every, applied
        assert all(a == sorted(a) for a in applied if isinstance(a, list)), applied
        assert [await a.applied_migrations() for a in archives] == [every] * 3
        assert await archives[0].insert_batch([rec("lv-01", 1, NOW)]) == InsertResult(1, 0)
    finally:
        for archive in archives:
            await archive.close()


async def _drop_schema(url: str) -> None:
    """Every table the migrations made (whichever they are: each new migration adds its own)."""
    if url.startswith("sqlite:"):
        db = sqlite3.connect(sqlite_path(url))
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        db.executescript("".join(f"DROP TABLE {name};" for name in names))
        db.close()
        assert {t.name for t in TABLES} <= set(names)
        return
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def test_both_back_ends_have_the_same_migrations() -> None:
    """A derived table is added to both (002_visits.sql next to 002_visits.sql), or the two
    back ends drift apart."""
    assert [(m.version, m.name) for m in migrations.load("postgresql")] == \
        [(m.version, m.name) for m in migrations.load("sqlite")]


def test_migrations_must_be_numbered_without_holes(tmp_path: Path) -> None:
    (tmp_path / "001_records.sql").write_text("SELECT 1;")
    (tmp_path / "003_visits.sql").write_text("SELECT 1;")
    with pytest.raises(ArchiveError, match="without holes"):
        migrations.load("sqlite", tmp_path)
    (tmp_path / "003_visits.sql").rename(tmp_path / "2_visits.sql")
    with pytest.raises(ArchiveError, match=r"NNN_name\.sql"):
        migrations.load("sqlite", tmp_path)


async def test_the_next_month_is_made_ahead_as_the_clock_moves_on(postgres_url: str) -> None:
    clock = ManualClock(NOW.timestamp())
    async with PostgresArchive(postgres_url, clock=clock) as archive:
        assert await archive.partitions() == [date(2026, 3, 1), date(2026, 4, 1)]
        await clock.advance(timedelta(days=25).total_seconds())  # 4 April
        await archive.insert_batch([rec("lv-01", 1, NOW + timedelta(days=25))])
        assert await archive.partitions() == [date(2026, 3, 1), date(2026, 4, 1),
                                              date(2026, 5, 1)]


@contextlib.contextmanager
def another_writer(path: Path, take: Sequence[str], release: str,
                   hold_s: float) -> Iterator[None]:
    """Another connection to ``path`` runs ``take`` (taking a lock) and then ``release``
    after ``hold_s`` at most, or as soon as the block ends."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for statement in take:
        holder.execute(statement)
    done = threading.Event()

    def release_later() -> None:
        done.wait(hold_s)
        holder.execute(release)
        holder.close()

    releaser = threading.Thread(target=release_later)
    releaser.start()
    try:
        yield
    finally:
        done.set()
        releaser.join()


async def test_a_writer_opening_a_locked_sqlite_archive_waits_its_turn(tmp_path: Path) -> None:
    """A second worker opening the file while another holds its write lock longer than
    sqlite3's own 5 s default (a loaded machine, a long migration) waits, and opens."""
    path = tmp_path / "archive.db"
    # Released after 6 s at most: past the 5 s default.
    with another_writer(path, ["BEGIN EXCLUSIVE"], "ROLLBACK", hold_s=6.0):
        async with open_archive(f"sqlite:///{path}",
                                clock=ManualClock(NOW.timestamp())) as archive:
            assert await archive.count() == 0


async def test_a_worker_turning_a_new_archive_to_wal_waits_for_another_writer(
        tmp_path: Path) -> None:
    """Two workers starting on a new file: while one writes (here, holds the write lock of the
    file still in its first journal mode), the other's switch to WAL meets SQLite's deadlock
    rule, which answers "locked" at once instead of waiting. The second waits, and opens."""
    path = tmp_path / "archive.db"
    take = ["CREATE TABLE other_writer (x)", "BEGIN IMMEDIATE",
            "INSERT INTO other_writer VALUES (1)"]
    with another_writer(path, take, "COMMIT", hold_s=0.5):
        async with open_archive(f"sqlite:///{path}",
                                clock=ManualClock(NOW.timestamp())) as archive:
            assert await archive.count() == 0
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        reader.close()
