"""The derived tables in the SQLite archive: written inside the caller's transaction.

Runs on the archive's one database thread (office/archive/sqlite.py), synchronously.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from office.archive.commands import apply_answers_sqlite
from office.archive.derived.derive import DERIVED_SCHEMAS, Plan, Stored, Write, plan
from office.archive.derived.tables import SQLITE, STATEMENTS, TABLES, upsert_sql

_PLACEHOLDERS = ", ".join("?" for _ in DERIVED_SCHEMAS)
_SELECT = f"SELECT bus, seq, ts, kind, data FROM records WHERE schema IN ({_PLACEHOLDERS})"
# Read a rebuild's records in chunks: an archive's events need not fit in memory at once.
_CHUNK = 5000


def _stored(rows: Iterable[tuple[str, int, str, str, str]]) -> list[Stored]:
    return [Stored(bus, seq, datetime.fromisoformat(ts), kind, json.loads(data))
            for bus, seq, ts, kind, data in rows]


def apply(db: sqlite3.Connection, writes: list[Write]) -> None:
    by_statement: dict[str, list[dict[str, object]]] = defaultdict(list)
    for write in writes:  # already in statement order (derive.plan)
        by_statement[write.statement.name].append(SQLITE.values(write.statement, write.values))
    for name, rows in by_statement.items():
        db.executemany(upsert_sql(STATEMENTS[name], SQLITE), rows)


def last_arrival(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT coalesce(max(arrival), 0) FROM records").fetchone()
    return int(row[0])


def derive_since(db: sqlite3.Connection, arrival: int, tz: ZoneInfo) -> Plan:
    """Derive the records inserted after ``arrival`` (this transaction's: ``arrival`` is
    AUTOINCREMENT, and the write lock is held since before it was read)."""
    rows = db.execute(f"{_SELECT} AND arrival > ?", (*DERIVED_SCHEMAS, arrival)).fetchall()
    done = plan(_stored(rows), tz)
    apply(db, done.writes)
    apply_answers_sqlite(db, rows)  # the commands table: the buses' receipts and answers
    return done


def rebuild(db: sqlite3.Connection, bus: str | None, tz: ZoneInfo) -> tuple[int, int]:
    """Delete ``bus``'s derived rows (every bus's when None) and derive them again from the
    records, in the caller's transaction. Returns (records read, records that did not fit)."""
    where, args = ("WHERE bus = ?", (bus,)) if bus is not None else ("", ())
    for table in TABLES:
        db.execute(f"DELETE FROM {table.name} {where}", args)
    only = " AND bus = ?" if bus is not None else ""
    cursor = db.execute(f"{_SELECT}{only} ORDER BY bus, seq", (*DERIVED_SCHEMAS, *args))
    read = unfit = 0
    while chunk := cursor.fetchmany(_CHUNK):
        done = plan(_stored(chunk), tz)
        apply(db, done.writes)
        read += len(chunk)
        unfit += done.unfit
    return read, unfit


def retention(db: sqlite3.Connection, boundary: str) -> None:
    """Drop the derived rows of the months retention drops (in the caller's transaction)."""
    for table in TABLES:
        db.execute(f"DELETE FROM {table.name} WHERE {table.time_column} < ?", (boundary,))
