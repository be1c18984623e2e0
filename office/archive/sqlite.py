"""The embedded archive: one SQLite file (a laptop, one municipality, the demo).

The connection lives on one dedicated thread (a one-worker executor, which is what
``asyncio.to_thread`` would be if it kept to one thread: sqlite3 connections belong to the
thread that uses them), so the office's event loop never waits on the disk. Deduplication is
the ``UNIQUE (bus, seq)`` constraint with ``INSERT OR IGNORE``; gaps are a window query. WAL
and a busy timeout let several processes (ingest workers) write the same file in turn.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo

import structlog

from busd.clock import Clock, SystemClock
from office.archive import migrations
from office.archive.base import DEFAULT_TZ
from office.archive.commands import CommandTable
from office.archive.derived import sqlite_ops
from office.archive.derived.reads import DerivedReads, RebuildResult
from office.archive.derived.tables import SQLITE
from office.archive.gaps_sql import day_bounds, gaps_query
from office.archive.models import ArchivedRecord, ArchiveError, Gap, InsertResult
from office.archive.months import retention_boundary

T = TypeVar("T")
log = structlog.get_logger("office.archive")

# How long a writer waits for another's write lock (several workers may share the file).
_BUSY_S = 30.0
_COLUMNS = "bus, seq, ts, schema, kind, topic, received, data"

def _text_ts(ts: datetime) -> str:
    # Fixed width and UTC, so text order is time order and retention compares as text.
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _turn_to_wal(db: sqlite3.Connection) -> None:
    """Set WAL, waiting out another connection's write as the busy timeout would.

    The switch reads the file, then asks for the write lock. If another connection holds that
    lock (a second worker turning a new file to WAL, or migrating it), SQLite answers "locked"
    at once instead of calling the busy handler, since waiting while holding a read lock could
    deadlock. So the wait is here: short, jittered retries until the busy timeout."""
    deadline = time.monotonic() + _BUSY_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


class SqliteArchive(DerivedReads, CommandTable):
    _derived_dialect = SQLITE

    def __init__(self, path: Path | str = ":memory:", *, tz: str = DEFAULT_TZ,
                 clock: Clock | None = None) -> None:
        self._path = str(path)
        self._tz = ZoneInfo(tz)
        self._clock = clock or SystemClock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="office-archive")
        self._db: sqlite3.Connection | None = None
        self._log = log.bind(component="archive", backend="sqlite")

    @property
    def path(self) -> str:
        return self._path

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ArchiveError("the archive is not open")
        return self._db

    # --- lifecycle -------------------------------------------------------------------------

    async def open(self) -> Self:
        await self._call(self._open_sync)
        await self.migrate()
        return self

    def _open_sync(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE takes the write lock
        # up front, so two writers queue on busy_timeout instead of failing mid-transaction).
        # The busy timeout from the start: a second worker opening a new archive while the
        # first turns it to WAL and migrates it waits its turn (sqlite3's default is 5 s, and
        # a loaded machine once took longer).
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None,
                             timeout=_BUSY_S)
        db.execute(f"PRAGMA busy_timeout={int(_BUSY_S * 1000)}")
        _turn_to_wal(db)
        # The broker redelivers what a worker had not acknowledged, so NORMAL (crash-safe,
        # not power-loss-safe) is enough.
        db.execute("PRAGMA synchronous=NORMAL")
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # --- migrations ------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        applied = await self._call(self._migrate_sync)
        if migrations.derives("sqlite", applied):
            await self.rebuild_derived()
        return applied

    def _migrate_sync(self) -> list[int]:
        db = self._conn()
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                   "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        applied: list[int] = []
        for migration in migrations.load("sqlite"):
            db.execute("BEGIN IMMEDIATE")
            try:
                done = db.execute("SELECT 1 FROM schema_migrations WHERE version=?",
                                  (migration.version,)).fetchone()
                if done is None:
                    for statement in _statements(migration.sql):
                        db.execute(statement)
                    db.execute("INSERT INTO schema_migrations VALUES (?,?,?)",
                               (migration.version, migration.name,
                                _text_ts(datetime.fromtimestamp(self._clock.now(), UTC))))
                    applied.append(migration.version)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if applied:
            self._log.info("archive_migrated", versions=applied)
        return applied

    async def applied_migrations(self) -> list[int]:
        rows = await self._call(self._query, "SELECT version FROM schema_migrations ORDER BY 1",
                                {})
        return [int(r[0]) for r in rows]

    # --- writing ---------------------------------------------------------------------------

    async def insert_batch(self, records: Sequence[ArchivedRecord]) -> InsertResult:
        if not records:
            return InsertResult(0, 0)
        rows = [(r.bus, r.seq, _text_ts(r.ts), r.schema_, r.kind, r.topic,
                 _text_ts(r.received), r.data_json()) for r in records]
        inserted, unfit, reason = await self._call(self._insert_sync, rows)
        if unfit:
            self._log.warning("records_not_derived", records=unfit, reason=reason)
        return InsertResult(inserted, len(rows) - inserted, unfit)

    def _insert_sync(self, rows: list[tuple[Any, ...]]) -> tuple[int, int, str]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            before = db.total_changes
            arrival = sqlite_ops.last_arrival(db)
            # Not INSERT OR IGNORE: that also swallows CHECK and NOT NULL failures, so a
            # broken record would pass as a "duplicate". Only the (bus, seq) conflict is one.
            db.executemany(f"INSERT INTO records ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) "
                           "ON CONFLICT (bus, seq) DO NOTHING", rows)
            inserted = db.total_changes - before
            # The derived rows of the records inserted now, in the same transaction: a worker
            # killed mid-batch leaves both or neither.
            done = sqlite_ops.derive_since(db, arrival, self._tz)
            db.execute("COMMIT")
        except sqlite3.Error as err:
            db.execute("ROLLBACK")
            raise ArchiveError(f"archive insert failed: {err}") from err
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return inserted, done.unfit, done.reason

    async def rebuild_derived(self, bus: str | None = None) -> RebuildResult:
        read, unfit = await self._call(self._rebuild_sync, bus)
        self._log.info("derived_rebuilt", bus=bus, records=read, unfit=unfit)
        return RebuildResult(read, unfit)

    def _rebuild_sync(self, bus: str | None) -> tuple[int, int]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = sqlite_ops.rebuild(db, bus, self._tz)
            db.execute("COMMIT")
        except sqlite3.Error as err:
            db.execute("ROLLBACK")
            raise ArchiveError(f"rebuilding the derived tables failed: {err}") from err
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return result

    async def retention(self, older_than: datetime) -> list[date]:
        months = await self._call(self._retention_sync, _text_ts(retention_boundary(older_than)))
        if months:
            self._log.info("archive_retention", months=[m.isoformat()[:7] for m in months])
        return months

    def _retention_sync(self, boundary: str) -> list[date]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            months = [date.fromisoformat(r[0] + "-01") for r in db.execute(
                "SELECT DISTINCT substr(ts, 1, 7) FROM records WHERE ts < ? ORDER BY 1",
                (boundary,))]
            db.execute("DELETE FROM records WHERE ts < ?", (boundary,))
            sqlite_ops.retention(db, boundary)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return months

    # --- reading ---------------------------------------------------------------------------

    def _query(self, sql: str, args: dict[str, Any] | tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return list(self._conn().execute(sql, args))

    async def _derived_fetch(self, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self._call(self._query, query, args)

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite"

    async def fetch(self, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return await self._call(self._query, query, args)
        except sqlite3.Error as err:
            raise ArchiveError(f"archive query failed: {err}") from err

    async def gaps(self, bus: str | None = None, day: date | None = None) -> list[Gap]:
        query = gaps_query(by_bus=bus is not None, by_day=day is not None,
                           param=lambda name: f":{name}")
        args: dict[str, Any] = {"bus": bus}
        if day is not None:
            start, end = day_bounds(day, self._tz)
            args |= {"start": _text_ts(start), "end": _text_ts(end)}
        rows = await self._call(self._query, query, args)
        return [Gap(bus=b, first=int(seq) + 1, last=int(nxt) - 1, after=_parse_ts(ts),
                    before=_parse_ts(nts), day=_parse_ts(ts).astimezone(self._tz).date())
                for b, seq, nxt, ts, nts in rows]

    async def records(self, bus: str, *, kind: str | None = None) -> list[ArchivedRecord]:
        rows = await self._call(
            self._query,
            f"SELECT {_COLUMNS} FROM records WHERE bus = :bus AND (:kind IS NULL OR kind = :kind)"
            " ORDER BY seq", {"bus": bus, "kind": kind})
        return [ArchivedRecord(bus=b, seq=s, ts=_parse_ts(ts), schema=sc, kind=k, topic=t,
                               received=_parse_ts(rc), data=json.loads(d))
                for b, s, ts, sc, k, t, rc, d in rows]

    async def count(self, bus: str | None = None) -> int:
        rows = await self._call(self._query,
                                "SELECT count(*) FROM records WHERE (:bus IS NULL OR bus = :bus)",
                                {"bus": bus})
        return int(rows[0][0])

    async def buses(self) -> list[str]:
        rows = await self._call(self._query, "SELECT DISTINCT bus FROM records ORDER BY bus", {})
        return [str(r[0]) for r in rows]


def _statements(script: str) -> list[str]:
    """Split a migration into statements; SQLite's own tokenizer says where one ends."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
            ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
        raise ArchiveError(f"migration ends with an incomplete statement: {buf.strip()[:80]!r}")
    return out
