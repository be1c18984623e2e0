"""The fleet's archive: PostgreSQL through psycopg 3 (async) and a connection pool.

Records are range-partitioned by the UTC month of ``ts`` (one table ``records_yYYYYmMM`` a
month), so retention drops a month at a time and a day's query touches one partition.

Partitions are made ahead: the current and the next month when the archive opens and again
as the office's clock moves into a new month, and any other month the moment a batch carries a
record for it (a late backlog, a bus whose clock was
wrong). That happens in its own short transaction just before the insert, not inside the insert's
transaction and not through a DEFAULT partition:

- ``CREATE TABLE … PARTITION OF`` takes an ACCESS EXCLUSIVE lock on ``records``. Taken inside an
  insert transaction that already holds a row lock on ``records``, two workers each creating a
  month can deadlock; taken alone, under an advisory lock, it only waits for in-flight batches.
- a DEFAULT partition would make every later ``CREATE … PARTITION OF`` scan it (and fail if it
  held rows of the new month), so moving rows out of it is a job of its own.

If a partition vanished between the two (retention ran in another process), the insert fails
with a check violation; the months are made again and the batch is retried once.

A batch is written with ``COPY`` into a staging table of the connection's own, then moved in
one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` on the primary key ``(bus, seq, ts)`` (see
office/archive/models.py for why ``ts`` in the key does not weaken deduplication). The rows are
moved in ``(bus, seq)`` order: two workers inserting overlapping batches then take their row
locks in the same order and never deadlock (in opposite orders they did, in the tests).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

import psycopg
import structlog
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from busd.clock import Clock, SystemClock
from office.archive import migrations
from office.archive.base import DEFAULT_TZ
from office.archive.commands import CommandTable
from office.archive.derived import postgres_ops
from office.archive.derived.reads import DerivedReads, RebuildResult
from office.archive.derived.tables import POSTGRESQL
from office.archive.gaps_sql import day_bounds, gaps_query
from office.archive.models import (
    ArchivedRecord,
    ArchiveError,
    ArchiveUnreachable,
    Gap,
    InsertResult,
)
from office.archive.months import month_of, month_start, next_month, retention_boundary

log = structlog.get_logger("office.archive")

# pg_advisory_xact_lock keys: one for migrations, one for partition DDL (any two constants).
_LOCK_MIGRATE = 0x0FF1CE01
_LOCK_PARTITIONS = 0x0FF1CE02
_PARTITION = re.compile(r"^records_y(\d{4})m(\d{2})$")

# Rows of the current transaction only (ON COMMIT DELETE ROWS); made on every new connection.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS incoming (
    bus text, seq bigint, ts timestamptz, schema text, kind text, topic text,
    received timestamptz, data jsonb
) ON COMMIT DELETE ROWS
"""
_COPY = "COPY incoming (bus, seq, ts, schema, kind, topic, received, data) FROM STDIN"
_INSERT = """
INSERT INTO records (bus, seq, ts, schema, kind, topic, received, data)
SELECT bus, seq, ts, schema, kind, topic, received, data FROM incoming
ORDER BY bus, seq
ON CONFLICT DO NOTHING
"""
# The insert, giving the count and the inserted records that derive rows (never duplicates).
_INSERT_RETURNING = postgres_ops.wrap_insert(_INSERT)

_COLUMNS = "bus, seq, ts, schema, kind, topic, received, data"

_LIST_PARTITIONS = ("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'records'::regclass")


def _months(rows: list[tuple[Any, ...]]) -> list[date]:
    """Months of the partitions named as we name them, oldest first."""
    months = []
    for (name,) in rows:
        match = _PARTITION.match(name)
        if match:
            months.append(date(int(match[1]), int(match[2]), 1))
    return sorted(months)


class _NoPartition(ArchiveError):
    """A row's month has no partition (it was dropped after we made sure of it)."""


def partition_name(month: date) -> str:
    return f"records_y{month.year:04d}m{month.month:02d}"


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(_STAGING)


class PostgresArchive(DerivedReads, CommandTable):
    _derived_dialect = POSTGRESQL

    def __init__(self, url: str, *, tz: str = DEFAULT_TZ, clock: Clock | None = None,
                 min_connections: int = 1, max_connections: int = 4,
                 connect_timeout_s: float = 10.0) -> None:
        self._tz = ZoneInfo(tz)
        self._clock = clock or SystemClock()
        self._connect_timeout_s = connect_timeout_s
        # autocommit: every transaction is an explicit ``conn.transaction()`` block.
        self._pool = AsyncConnectionPool(url, min_size=min_connections,
                                         max_size=max_connections, open=False,
                                         kwargs={"autocommit": True}, name="office-archive",
                                         configure=_configure)
        self._months: set[date] = set()  # partitions known to exist
        self._log = log.bind(component="archive", backend="postgresql")

    # --- lifecycle -------------------------------------------------------------------------

    async def open(self) -> Self:
        try:
            await self._pool.open(wait=True, timeout=self._connect_timeout_s)
        except PoolTimeout as err:
            await self._pool.close()
            raise ArchiveUnreachable(f"cannot connect to the PostgreSQL archive: {err}") from err
        await self.migrate()
        this_month = month_of(datetime.fromtimestamp(self._clock.now(), UTC))
        await self._ensure_partitions({this_month, next_month(this_month)})
        return self

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def rebuild_derived(self, bus: str | None = None) -> RebuildResult:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                read, unfit = await postgres_ops.rebuild(conn, bus, self._tz)
        except psycopg.Error as err:
            raise ArchiveError(f"rebuilding the derived tables failed: {err}") from err
        self._log.info("derived_rebuilt", bus=bus, records=read, unfit=unfit)
        return RebuildResult(read, unfit)

    async def _derived_fetch(self, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self._fetch(query, args)

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return "postgresql"

    async def fetch(self, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self._fetch(query, args)

    async def _fetch(self, query: str | sql.Composed, args: Any = None) -> list[tuple[Any, ...]]:
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(query, args)
                return await cur.fetchall()
        except psycopg.Error as err:
            raise ArchiveError(f"archive query failed: {err}") from err

    # --- migrations ------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        try:
            async with self._pool.connection() as conn, conn.transaction():
                # Workers starting together queue here; the second finds everything applied.
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                    " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
                cur = await conn.execute("SELECT version FROM schema_migrations")
                done = {int(row[0]) for row in await cur.fetchall()}
                for migration in migrations.load("postgresql"):
                    if migration.version in done:
                        continue
                    # No parameters: psycopg sends the file as one simple query, all statements.
                    await conn.execute(migration.sql.encode())
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES "
                                       "(%s, %s)", (migration.version, migration.name))
                    applied.append(migration.version)
        except psycopg.Error as err:
            raise ArchiveError(f"archive migration failed: {err}") from err
        if applied:
            self._log.info("archive_migrated", versions=applied)
        if migrations.derives("postgresql", applied):
            await self.rebuild_derived()
        return applied

    async def applied_migrations(self) -> list[int]:
        rows = await self._fetch("SELECT version FROM schema_migrations ORDER BY 1")
        return [int(r[0]) for r in rows]

    # --- partitions ------------------------------------------------------------------------

    async def _ensure_partitions(self, months: set[date]) -> None:
        missing = months - self._months
        if not missing:
            return
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_PARTITIONS,))
                for month in sorted(missing):
                    await conn.execute(sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} PARTITION OF records "
                        "FOR VALUES FROM ({}) TO ({})").format(
                        sql.Identifier(partition_name(month)),
                        sql.Literal(month_start(month)),
                        sql.Literal(month_start(next_month(month)))))
        except psycopg.Error as err:
            raise ArchiveError(f"cannot create the archive's partitions: {err}") from err
        self._months |= missing

    async def partitions(self) -> list[date]:
        """The months that have a partition, oldest first."""
        return _months(await self._fetch(_LIST_PARTITIONS))

    # --- writing ---------------------------------------------------------------------------

    async def insert_batch(self, records: Sequence[ArchivedRecord]) -> InsertResult:
        if not records:
            return InsertResult(0, 0)
        # The next month by the office's clock too, so a worker running across a month's end
        # has the new partition before the first record needs it (no DDL on the hot path).
        this_month = month_of(datetime.fromtimestamp(self._clock.now(), UTC))
        months = {month_of(r.ts) for r in records} | {this_month, next_month(this_month)}
        rows = [(r.bus, r.seq, r.ts, r.schema_, r.kind, r.topic, r.received, r.data_json())
                for r in records]
        await self._ensure_partitions(months)
        try:
            inserted, unfit, reason = await self._insert(rows)
        except _NoPartition:
            # A partition went (retention in another process) after we made sure of it.
            self._months -= months
            await self._ensure_partitions(months)
            inserted, unfit, reason = await self._insert(rows)
        if unfit:
            self._log.warning("records_not_derived", records=unfit, reason=reason)
        return InsertResult(inserted, len(records) - inserted, unfit)

    async def _insert(self, rows: list[tuple[Any, ...]]) -> tuple[int, int, str]:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                # COPY into a per-connection staging table, then one INSERT … SELECT: psycopg
                # formats COPY rows in C, where binding arrays (unnest) spent most of the
                # client's time escaping strings in Python.
                cur = conn.cursor()
                async with cur.copy(_COPY) as copy:
                    for row in rows:
                        await copy.write_row(row)
                await cur.execute(_INSERT_RETURNING)
                result = await cur.fetchone()
                assert result is not None  # an aggregate always gives one row
                # The derived rows of the records inserted now, in the same transaction: a
                # worker killed mid-batch leaves both or neither.
                done = await postgres_ops.derive_inserted(conn, result[1], self._tz)
                return int(result[0]), done.unfit, done.reason
        except psycopg.errors.CheckViolation as err:
            # "no partition of relation … found for row" is a check violation with no
            # constraint; a named one (seq >= 0) is a bad record.
            if err.diag.constraint_name is None:
                raise _NoPartition(str(err)) from err
            raise ArchiveError(f"archive insert failed: {err}") from err
        except psycopg.Error as err:
            raise ArchiveError(f"archive insert failed: {err}") from err

    async def retention(self, older_than: datetime) -> list[date]:
        boundary = month_of(retention_boundary(older_than))
        removed: list[date] = []
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_PARTITIONS,))
                cur = await conn.execute(_LIST_PARTITIONS)
                for month in _months(await cur.fetchall()):
                    if next_month(month) > boundary:
                        continue
                    name = sql.Identifier(partition_name(month))
                    cur = await conn.execute(
                        sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(name))
                    row = await cur.fetchone()
                    if row is not None and row[0]:
                        removed.append(month)
                    await conn.execute(sql.SQL("DROP TABLE {}").format(name))
                    self._months.discard(month)
                await postgres_ops.retention(conn, month_start(boundary))
        except psycopg.Error as err:
            raise ArchiveError(f"archive retention failed: {err}") from err
        if removed:
            self._log.info("archive_retention", months=[m.isoformat()[:7] for m in removed])
        return removed

    # --- reading ---------------------------------------------------------------------------

    async def gaps(self, bus: str | None = None, day: date | None = None) -> list[Gap]:
        query = gaps_query(by_bus=bus is not None, by_day=day is not None,
                           param=lambda name: f"%({name})s")
        args: dict[str, Any] = {"bus": bus}
        if day is not None:
            args["start"], args["end"] = day_bounds(day, self._tz)
        rows = await self._fetch(query, args)
        return [Gap(bus=b, first=int(seq) + 1, last=int(nxt) - 1, after=ts.astimezone(UTC),
                    before=nts.astimezone(UTC), day=ts.astimezone(self._tz).date())
                for b, seq, nxt, ts, nts in rows]

    async def records(self, bus: str, *, kind: str | None = None) -> list[ArchivedRecord]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM records WHERE bus = %(bus)s "
            "AND (%(kind)s::text IS NULL OR kind = %(kind)s::text) ORDER BY seq",
            {"bus": bus, "kind": kind})
        return [ArchivedRecord(bus=b, seq=s, ts=ts, schema=sc, kind=k, topic=t, received=rc,
                               data=d) for b, s, ts, sc, k, t, rc, d in rows]

    async def count(self, bus: str | None = None) -> int:
        rows = await self._fetch(
            "SELECT count(*) FROM records WHERE (%(bus)s::text IS NULL OR bus = %(bus)s::text)",
            {"bus": bus})
        return int(rows[0][0])

    async def buses(self) -> list[str]:
        rows = await self._fetch("SELECT DISTINCT bus FROM records ORDER BY bus", {})
        return [str(r[0]) for r in rows]
