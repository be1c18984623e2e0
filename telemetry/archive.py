"""The office's archive: every durable record of every bus, once, in SQLite.

``(bus, seq)`` is the primary key, so a record the bus resent (a crash between
PUBACK and delete, a reconnect) is recognised and dropped as a duplicate. Gaps
in ``seq`` are lost records; ``data_dropped`` events say why. ``arrival`` keeps
the order in which records first arrived. Like the outbox, the connection lives
on one dedicated thread so the office's event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    bus      TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    ts       TEXT    NOT NULL,
    schema   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    topic    TEXT    NOT NULL,
    received REAL    NOT NULL,
    arrival  INTEGER NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (bus, seq)
);
CREATE INDEX IF NOT EXISTS records_arrival ON records (arrival);
"""

Record = dict[str, Any]


class Archive:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")
        self._db: sqlite3.Connection | None = None
        self._arrival = 0

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> Archive:
        await self._call(self._open_sync)
        return self

    def _open_sync(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # The broker keeps unacknowledged messages for the office's persistent
        # session, so NORMAL (crash-safe, not power-loss-safe) is enough here.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._arrival = db.execute("SELECT coalesce(max(arrival), 0) FROM records").fetchone()[0]
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def add(self, bus: str, topic: str, received: float,
                  records: Iterable[Record]) -> tuple[int, int]:
        """Store records; returns (new, duplicates)."""
        return await self._call(self._add_sync, bus, topic, received, list(records))

    def _add_sync(self, bus: str, topic: str, received: float,
                  records: list[Record]) -> tuple[int, int]:
        assert self._db is not None
        new = 0
        with self._db:
            for rec in records:
                self._arrival += 1
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO records VALUES (?,?,?,?,?,?,?,?,?)",
                    (bus, int(rec["seq"]), str(rec.get("ts", "")), str(rec.get("schema", "")),
                     str(rec.get("kind", "")), topic, received, self._arrival,
                     json.dumps(rec.get("data"), separators=(",", ":"), allow_nan=False)),
                )
                new += cur.rowcount
        return new, len(records) - new

    async def seqs(self, bus: str, *, by_arrival: bool = False) -> list[int]:
        order = "arrival" if by_arrival else "seq"
        sql = f"SELECT seq FROM records WHERE bus=? ORDER BY {order}"
        return await self._call(self._query, sql, (bus,))

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        assert self._db is not None
        return [r[0] if len(r) == 1 else r for r in self._db.execute(sql, args)]

    async def gaps(self, bus: str) -> list[tuple[int, int]]:
        """Missing seq ranges (first, last) between the lowest and highest record archived."""
        rows = await self._call(self._query, (
            "SELECT prev + 1, seq - 1 FROM (SELECT seq, lag(seq) OVER (ORDER BY seq) AS prev "
            "FROM records WHERE bus=?) WHERE prev IS NOT NULL AND seq > prev + 1"), (bus,))
        return [(int(a), int(b)) for a, b in rows]

    async def records(self, bus: str, kind: str | None = None) -> list[Record]:
        rows = await self._call(self._query, (
            "SELECT seq, ts, schema, kind, topic, data FROM records WHERE bus=? "
            "AND (? IS NULL OR kind=?) ORDER BY seq"), (bus, kind, kind))
        return [{"seq": r[0], "ts": r[1], "schema": r[2], "kind": r[3], "topic": r[4],
                 "data": json.loads(r[5])} for r in rows]

    async def export_csv(self, out: Path) -> int:
        return await self._call(self._export_sync, out)

    def _export_sync(self, out: Path) -> int:
        assert self._db is not None
        n = 0
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["bus", "seq", "ts", "schema", "kind", "topic", "data"])
            rows = self._db.execute(
                "SELECT bus, seq, ts, schema, kind, topic, data FROM records ORDER BY bus, seq")
            for row in rows:
                writer.writerow(row)
                n += 1
        return n
