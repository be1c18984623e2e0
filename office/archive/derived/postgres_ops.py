"""The derived tables in the PostgreSQL archive: written inside the caller's transaction.

The records insert returns what it inserted (office/archive/postgres.py): a count, and the
records that may derive rows as one JSON array, so a batch of telemetry sends nothing back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from office.archive.commands import apply_answers_postgres
from office.archive.derived.derive import DERIVED_SCHEMAS, Plan, Stored, Write, plan
from office.archive.derived.tables import POSTGRESQL, STATEMENTS, TABLES, upsert_sql

# Wraps the records' INSERT … SELECT … ON CONFLICT DO NOTHING (which must end in RETURNING
# these columns): only rows actually inserted come back, never a duplicate.
RETURNING = " RETURNING bus, seq, ts, schema, kind, data"
DERIVABLE = "ARRAY[" + ", ".join(f"'{s}'" for s in DERIVED_SCHEMAS) + "]"


def wrap_insert(insert: str) -> str:
    """``insert`` (ending in ON CONFLICT …) as one statement giving (inserted, derivable)."""
    return f"""
WITH inserted AS ({insert.rstrip()}{RETURNING})
SELECT count(*),
       coalesce(jsonb_agg(jsonb_build_array(bus, seq, ts, kind, data))
                FILTER (WHERE schema = ANY({DERIVABLE})), '[]'::jsonb)
FROM inserted
"""


def stored_from_json(items: Iterable[list[Any]]) -> list[Stored]:
    return [Stored(bus, int(seq), datetime.fromisoformat(ts), kind, data)
            for bus, seq, ts, kind, data in items]


async def apply(conn: psycopg.AsyncConnection[Any], writes: list[Write]) -> None:
    by_statement: dict[str, list[dict[str, object]]] = defaultdict(list)
    for write in writes:  # already in lock order (derive.plan)
        by_statement[write.statement.name].append(
            POSTGRESQL.values(write.statement, write.values))
    cur = conn.cursor()
    for name, rows in by_statement.items():
        await cur.executemany(upsert_sql(STATEMENTS[name], POSTGRESQL), rows)


async def derive_inserted(conn: psycopg.AsyncConnection[Any], items: Iterable[list[Any]],
                          tz: ZoneInfo) -> Plan:
    items = list(items)
    done = plan(stored_from_json(items), tz)
    await apply(conn, done.writes)
    await apply_answers_postgres(conn, items)  # the commands table: receipts and answers
    return done


_CHUNK = 5000


async def rebuild(conn: psycopg.AsyncConnection[Any], bus: str | None,
                  tz: ZoneInfo) -> tuple[int, int]:
    """Delete ``bus``'s derived rows (every bus's when None) and derive them again from the
    records, in the caller's transaction. Returns (records read, records that did not fit)."""
    only = " AND bus = %(bus)s" if bus is not None else ""
    for table in TABLES:
        await conn.execute(f"DELETE FROM {table.name} WHERE TRUE{only}", {"bus": bus})
    read = unfit = 0
    # A server-side cursor: the archive's events need not fit in memory at once.
    async with conn.cursor(name="rebuild_derived") as cursor:
        await cursor.execute(
            f"SELECT bus, seq, ts, kind, data FROM records WHERE schema = ANY({DERIVABLE})"
            f"{only} ORDER BY bus, seq", {"bus": bus})
        while chunk := await cursor.fetchmany(_CHUNK):
            done = plan([Stored(b, s, ts, k, d) for b, s, ts, k, d in chunk], tz)
            await apply(conn, done.writes)
            read += len(chunk)
            unfit += done.unfit
    return read, unfit


async def retention(conn: psycopg.AsyncConnection[Any], boundary: datetime) -> None:
    """Drop the derived rows of the months retention drops (in the caller's transaction)."""
    for table in TABLES:
        await conn.execute(f"DELETE FROM {table.name} WHERE {table.time_column} < %s",
                           (boundary,))
