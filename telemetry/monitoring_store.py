"""The monitoring store: legs, visits, charging sessions, SOC samples, daily summaries.

SQLite (the stdlib's sqlite3), in WAL mode with ``synchronous=FULL``: a committed
batch survives a power cut, and a half-written one is rolled back. Records are
keyed by their id (kind + start time), so a row written twice is an update,
never a duplicate; open records carry ``status = 'open'`` and their figures as
of the last checkpoint, which is what a restarted tracker resumes from.

Every call from the event loop goes through :func:`asyncio.to_thread`; a lock
serialises the one connection between those threads. Only counts, times,
energies and the bus's own positions are stored: nothing about passengers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import structlog

from busd.errors import StorageError
from busd.plan import Plan
from busd.services.tally import VisitTally

Row = dict[str, Any]
KINDS = {"leg": "legs", "visit": "visits", "charge": "charges"}

_COMMON = {
    "id": str, "day": str, "status": str, "start_ts": float, "end_ts": float,
    "updated_ts": float, "duration_min": float, "out_kwh": float, "regen_kwh": float,
    "charged_kwh": float, "net_kwh": float, "gap_s": float, "gaps": int, "gps_km": float,
    "lift_cycles": int, "temp_c": float, "temp_s": float, "odo_start": float, "odo_end": float,
    "soc_start": float, "soc_end": float, "lift_counter": int,
    "off_s": float,  # switched off (CAN silent while parked): not a gap in the energy data
}
_PLACE = {
    "place_id": str, "place_name": str, "place_kind": str, "lat": float, "lon": float,
    "radius_m": float, "soc_min": float,
}
SCHEMA: dict[str, dict[str, type]] = {
    "legs": {**_COMMON, "from_place": str, "from_name": str, "to_place": str, "to_name": str,
             "km": float, "km_source": str, "kwh_per_km": float, "avg_kmh": float,
             "soc_used": float},
    "visits": {**_COMMON, **_PLACE},
    # charger_kwh: the charger's session counter, impossible jumps rejected (counted in
    # counter_rejects); battery_kwh: ∫V·I into the pack; charge_diff_kwh = their difference.
    "charges": {**_COMMON, **_PLACE, "peak_kw": float, "session_kwh": float,
                "energy_added_kwh": float, "charger_kwh": float, "battery_kwh": float,
                "charge_diff_kwh": float, "counter_rejects": int},
    "soc_samples": {"ts": float, "day": str, "soc": float, "speed_kmh": float,
                    "odometer_km": float, "place_id": str},
    "plan_stops": {"day": str, "seq": int, "stop_id": str, "name": str, "cycle": str,
                   "planned_min": float, "min_min": float, "priority": int, "must_serve": int,
                   "plan_version": int},
    "stop_notes": {"day": str, "stop_id": str, "status": str, "reason": str, "ts": float},
    "daily_summaries": {"day": str, "created_ts": float, "alerts": int, "json": str},
    "clients_served": {"visit_id": str, "day": str, "count": int, "updated_ts": float},
    # The staff page's tallies (busd/services): counts per service type, seconds per
    # activity, and each visit's place and current activity. Numbers only, never who.
    "service_counts": {"visit_id": str, "day": str, "service": str, "count": int,
                       "updated_ts": float},
    "activity_time": {"visit_id": str, "day": str, "activity": str, "seconds": float,
                      "updated_ts": float},
    "visit_services": {"visit_id": str, "day": str, "place_id": str, "activity": str,
                       "since_ts": float, "updated_ts": float},
    # Each accepted plan's projected SOC curve (busd/monitoring/plan_projections.py).
    "plan_projections": {"day": str, "proposal_id": str, "seq": int, "accepted_ts": float,
                         "ts": float, "soc": float},
}
_PKS: dict[str, tuple[str, ...]] = {
    "legs": ("id",), "visits": ("id",), "charges": ("id",), "soc_samples": ("ts",),
    "clients_served": ("visit_id",), "plan_projections": ("proposal_id", "seq"),
    "service_counts": ("visit_id", "service"), "activity_time": ("visit_id", "activity"),
    "visit_services": ("visit_id",),
    "plan_stops": ("day", "stop_id"), "stop_notes": ("day", "stop_id"),
    "daily_summaries": ("day",),
}
# The column types, table layout and index names sqlite-utils gave the stores
# written before it was dropped (it cost the daemon 2.6 MB of imports: click,
# pluggy, dateutil, tabulate), so those stores open and migrate unchanged.
_SQL_TYPES: dict[type, str] = {str: "TEXT", float: "REAL", int: "INTEGER"}


log = structlog.get_logger("telemetry.monitoring_store")


class StoreError(StorageError):
    """The monitoring store could not be opened or written (disk full, read-only)."""


class MonitoringStore:
    """Implements the tracker's ``TrackerStore`` port and the report's queries."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            self.db.execute("PRAGMA journal_mode=wal")
            self.db.execute("PRAGMA synchronous=FULL")
            verdict = self.db.execute("PRAGMA quick_check").fetchone()[0]
            self.integrity_ok = verdict == "ok"
            if not self.integrity_ok:
                log.error("monitoring_store_integrity_failed", path=str(self.path), verdict=verdict)
            self._create()
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open monitoring store {self.path}: {err}") from err
        self._lock = threading.Lock()

    def _create(self) -> None:
        for table, columns in SCHEMA.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info([{table}])")}
            if not have:
                self.db.execute(_create_table(table, columns, _PKS[table]))
                continue
            # A store from an older version: add the columns it lacks (all nullable).
            for name, kind in columns.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE [{table}] ADD COLUMN [{name}] {_SQL_TYPES[kind]}")
        for table in ("legs", "visits", "charges", "soc_samples"):
            self.db.execute(_create_index(table, "day"))
        for table in ("legs", "visits", "charges"):
            self.db.execute(_create_index(table, "status"))

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # --- the tracker's port (async) --------------------------------------------------

    async def open_records(self) -> dict[str, Row]:
        return await asyncio.to_thread(self.open_records_sync)

    async def write(self, rows: list[tuple[str, Row]], samples: list[Row]) -> None:
        await asyncio.to_thread(self.write_sync, rows, samples)

    async def save_plan(self, plan: Plan) -> None:
        await asyncio.to_thread(self.save_plan_sync, plan)

    async def save_summary(self, day: str, summary: Row, alerts: int, created_ts: float) -> None:
        await asyncio.to_thread(self.save_summary_sync, day, summary, alerts, created_ts)

    async def day_records(self, day: str) -> dict[str, list[Row]]:
        return await asyncio.to_thread(self.day_records_sync, day)

    # --- blocking implementations -------------------------------------------------------

    def open_records_sync(self) -> dict[str, Row]:
        """The newest open record of each kind (a crash leaves at most one per kind open)."""
        out: dict[str, Row] = {}
        with self._lock:
            for kind, table in KINDS.items():
                rows = self._rows(f"SELECT * FROM [{table}] WHERE status = 'open' "
                                  "ORDER BY start_ts DESC LIMIT 1")
                if rows:
                    out[kind] = rows[0]
        return out

    def write_sync(self, rows: list[tuple[str, Row]], samples: list[Row]) -> None:
        """One transaction: all of it or none of it."""
        with self._writing("records") as conn:
            for kind, row in rows:
                _upsert(conn, KINDS[kind], row)
            for sample in samples:
                _upsert(conn, "soc_samples", sample)

    def save_plan_sync(self, plan: Plan) -> None:
        day = plan.date.isoformat()
        with self._writing("plan") as conn:
            conn.execute("DELETE FROM [plan_stops] WHERE day = ?", [day])
            conn.executemany(
                "INSERT INTO [plan_stops] (day, seq, stop_id, name, cycle, planned_min, min_min, "
                "priority, must_serve, plan_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(day, i, s.id, s.name, s.cycle, s.planned_min, s.min_min, s.priority,
                  int(s.must_serve), plan.version) for i, s in enumerate(plan.stops)],
            )

    def note_stop(self, day: str, stop_id: str, status: str, reason: str, ts: float) -> None:
        """Why a stop was shortened or skipped (the planner's or the driver's reason)."""
        with self._writing("stop notes") as conn:
            _upsert(conn, "stop_notes",
                    {"day": day, "stop_id": stop_id, "status": status, "reason": reason, "ts": ts})

    def save_projection(self, day: str, proposal_id: str, accepted_ts: float,
                        points: list[tuple[float, float]]) -> None:
        """The projected SOC curve of a plan the driver accepted."""
        with self._writing("plan projections") as conn:
            for i, (ts, soc) in enumerate(points):
                _upsert(conn, "plan_projections",
                        {"day": day, "proposal_id": proposal_id, "seq": i,
                         "accepted_ts": accepted_ts, "ts": ts, "soc": soc})

    def set_clients_served(self, *, visit_id: str, day: str, count: int, ts: float) -> None:
        """The crew's count of clients served at a visit (a number, never who)."""
        with self._writing("clients served") as conn:
            _upsert(conn, "clients_served",
                    {"visit_id": visit_id, "day": day, "count": count, "updated_ts": ts})

    def save_tally(self, tally: VisitTally, *, ts: float) -> None:
        """One visit's tally in one transaction (its total too, as the clients served)."""
        with self._writing("services") as conn:
            base = {"visit_id": tally.visit_id, "day": tally.day, "updated_ts": ts}
            for service, count in tally.counts.items():
                _upsert(conn, "service_counts", {**base, "service": service, "count": count})
            for activity, seconds in tally.activity_s.items():
                _upsert(conn, "activity_time", {**base, "activity": activity, "seconds": seconds})
            _upsert(conn, "visit_services", {**base, "place_id": tally.place_id,
                                             "activity": tally.activity,
                                             "since_ts": tally.since_ts})
            _upsert(conn, "clients_served", {**base, "count": tally.total})

    def tallies(self, since_day: str) -> list[VisitTally]:
        """The tallies of visits on ``since_day`` (YYYY-MM-DD) and after."""
        with self._lock:
            heads = self._rows("SELECT * FROM [visit_services] WHERE day >= ?", [since_day])
            counts = self._rows("SELECT * FROM [service_counts] WHERE day >= ?", [since_day])
            times = self._rows("SELECT * FROM [activity_time] WHERE day >= ?", [since_day])
        by_visit: dict[str, tuple[dict[str, int], dict[str, float]]] = {
            h["visit_id"]: ({}, {}) for h in heads}
        for c in counts:
            by_visit.setdefault(c["visit_id"], ({}, {}))[0][c["service"]] = int(c["count"])
        for t in times:
            by_visit.setdefault(t["visit_id"], ({}, {}))[1][t["activity"]] = float(t["seconds"])
        return [
            VisitTally(visit_id=h["visit_id"], day=h["day"], place_id=h["place_id"],
                       counts=MappingProxyType(by_visit[h["visit_id"]][0]),
                       activity_s=MappingProxyType(by_visit[h["visit_id"]][1]),
                       activity=h["activity"], since_ts=h["since_ts"])
            for h in heads
        ]

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; a disk that refuses it becomes StoreError."""
        with self._lock:
            try:
                with self.db as conn:
                    yield conn
            except sqlite3.Error as err:
                raise StoreError(
                    f"cannot write the monitoring store {self.path} ({what}): {err}") from err

    def clients_served(self, visit_id: str) -> int:
        with self._lock:
            rows = self._rows("SELECT * FROM [clients_served] WHERE visit_id = ?", [visit_id])
        return int(rows[0]["count"]) if rows else 0

    def save_summary_sync(self, day: str, summary: Row, alerts: int, created_ts: float) -> None:
        with self._writing("daily summary") as conn:
            _upsert(conn, "daily_summaries",
                    {"day": day, "created_ts": created_ts, "alerts": alerts,
                     "json": json.dumps(summary, ensure_ascii=False, allow_nan=False)})

    def summary(self, day: str) -> Row | None:
        with self._lock:
            rows = self._rows("SELECT * FROM [daily_summaries] WHERE day = ?", [day])
        if not rows:
            return None
        summary: Row = json.loads(rows[0]["json"])
        summary.setdefault("alerts", rows[0]["alerts"])
        return summary

    def day_records_sync(self, day: str) -> dict[str, list[Row]]:
        """Everything of one local day, in time order."""
        return self._records("day = ?", [day])

    def month_records(self, month: str) -> dict[str, list[Row]]:
        """Everything of a month, ``YYYY-MM``."""
        return self._records("day like ?", [f"{month}-%"])

    def _records(self, where: str, args: list[Any]) -> dict[str, list[Row]]:
        def rows(table: str, order_by: str | None = None) -> list[Row]:
            order = f" ORDER BY {order_by}" if order_by else ""
            return self._rows(f"SELECT * FROM [{table}] WHERE {where}{order}", args)

        out: dict[str, list[Row]] = {}
        with self._lock:
            for kind, table in KINDS.items():
                out[kind] = rows(table, "start_ts")
            out["samples"] = rows("soc_samples", "ts")
            out["plan_stops"] = rows("plan_stops", "day, seq")
            out["notes"] = rows("stop_notes")
            out["clients"] = rows("clients_served")
            out["services"] = rows("service_counts")
            out["activities"] = rows("activity_time")
            out["projections"] = rows("plan_projections", "accepted_ts, seq")
            out["summaries"] = rows("daily_summaries", "day")
        return out

    def _rows(self, sql: str, args: list[Any] | None = None) -> list[Row]:
        """The query's rows as dicts by column name (the caller holds the lock)."""
        cursor = self.db.execute(sql, args or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def purge_before(self, day: str) -> int:
        """Delete every record of days before ``day`` (YYYY-MM-DD); returns rows deleted."""
        deleted = 0
        with self._writing("retention"):
            for table in SCHEMA:
                if "day" in SCHEMA[table]:
                    deleted += self.db.execute(
                        f"DELETE FROM [{table}] WHERE day < ?", [day]).rowcount
        return deleted

    def days(self) -> list[str]:
        with self._lock:
            return [r["day"] for r in self._rows(
                "select distinct day from visits union select distinct day from legs order by day")]


def _upsert(conn: sqlite3.Connection, table: str, row: Row) -> None:
    """Insert, or update the given columns of the row with the same key."""
    pk = _PKS[table]
    columns = [k for k in row if k in SCHEMA[table]]
    names = ", ".join(f"[{c}]" for c in columns)
    marks = ", ".join("?" for _ in columns)
    keys = ", ".join(f"[{c}]" for c in pk)
    updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c not in pk)
    conn.execute(
        f"INSERT INTO [{table}] ({names}) VALUES ({marks}) "
        f"ON CONFLICT({keys}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING"),
        [row[c] for c in columns],
    )


def _create_table(table: str, columns: dict[str, type], pk: tuple[str, ...]) -> str:
    """sqlite-utils' layout: a one-column key on its column, a compound one at the end."""
    lines = []
    for name, kind in columns.items():
        line = f'   "{name}" {_SQL_TYPES[kind]}'
        if pk == (name,):
            line += " PRIMARY KEY"
        if name == "day":
            line += " NOT NULL"
        lines.append(line)
    if len(pk) > 1:
        lines.append("   PRIMARY KEY ({})".format(", ".join(f'"{c}"' for c in pk)))
    return f'CREATE TABLE "{table}" (\n' + ",\n".join(lines) + "\n)"



def _create_index(table: str, column: str) -> str:
    return f'CREATE INDEX IF NOT EXISTS "idx_{table}_{column}"\n    ON "{table}" ("{column}")'
