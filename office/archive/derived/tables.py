"""The derived tables' SQL, the same for both back ends (only placeholders and types differ).

A :class:`Table` takes its columns from its read model (office/archive/derived/models.py). A
:class:`Statement` is one upsert into it; every upsert only overwrites a row whose ``guard``
(the bus's record seq that gave it its state) is older than the incoming one, so a record
arriving twice, or a visit_ended before its visit_started, leaves the latest state. A
:class:`Dialect` spells placeholders and values for one back end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from office.archive.derived.models import (
    Alert,
    ChargingSession,
    DayReport,
    DerivedRow,
    Leg,
    PlanChange,
    Visit,
    VisitServices,
)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    model: type[DerivedRow]
    key: tuple[str, ...]
    time_column: str  # the UTC instant whose month retention drops the row with
    order: str  # how reads sort
    json_columns: frozenset[str] = frozenset()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.model.model_fields)

    def row(self, values: tuple[Any, ...]) -> DerivedRow:
        data = dict(zip(self.columns, values, strict=True))
        for name in self.json_columns:
            if isinstance(data[name], str):  # SQLite keeps JSON as text
                data[name] = json.loads(data[name])
        return self.model.model_validate(data)


_SPAN_ORDER = "bus, start_ts, id"
VISITS: Final = Table("visits", Visit, ("bus", "id"), "start_ts", _SPAN_ORDER)
VISIT_SERVICES: Final = Table("visit_services", VisitServices, ("bus", "id"), "start_ts",
                              _SPAN_ORDER, frozenset({"services", "activities_min"}))
LEGS: Final = Table("legs", Leg, ("bus", "id"), "start_ts", _SPAN_ORDER)
CHARGING: Final = Table("charging", ChargingSession, ("bus", "id"), "start_ts", _SPAN_ORDER)
DAILY_REPORTS: Final = Table("daily_reports", DayReport, ("bus", "day"), "ts", "bus, day",
                             frozenset({"stops", "services", "activities_min"}))
PLAN_CHANGES: Final = Table("plan_changes", PlanChange, ("bus", "seq"), "ts", "bus, ts, seq",
                            frozenset({"changes", "reasons", "itinerary"}))
ALERTS: Final = Table("alerts", Alert, ("bus", "alert", "raised_at"), "raised_at",
                      "bus, raised_at, alert", frozenset({"details", "cleared_details"}))
TABLES: Final = (VISITS, LEGS, CHARGING, DAILY_REPORTS, PLAN_CHANGES, ALERTS, VISIT_SERVICES)


@dataclass(frozen=True, slots=True)
class Statement:
    """An upsert of ``columns`` into ``table``; on conflict, ``update`` is overwritten when the
    row's ``guard`` is NULL or older than the incoming one (no ``update``: do nothing)."""

    name: str
    table: Table
    columns: tuple[str, ...]
    update: tuple[str, ...] = ()
    guard: str | None = None


def _latest(table: Table) -> Statement:
    rest = tuple(c for c in table.columns if c not in table.key)
    return Statement(table.name, table, table.columns, rest, "seq")


_ALERT_KEY = ("bus", "alert", "raised_at", "day")
_RAISED = ("message", "details", "raised_seq")
_CLEARED = ("cleared_at", "duration_s", "cleared_details", "cleared_seq")

# Applied in this order, each statement's rows sorted by key: two workers writing overlapping
# batches take their row locks in one order and cannot deadlock.
STATEMENTS: Final = {s.name: s for s in (
    _latest(VISITS), _latest(LEGS), _latest(CHARGING), _latest(DAILY_REPORTS),
    _latest(VISIT_SERVICES),
    Statement("plan_changes", PLAN_CHANGES, PLAN_CHANGES.columns),
    # The raise and the clear each fill their own half of an alert's row.
    Statement("alert_raised", ALERTS, _ALERT_KEY + _RAISED, _RAISED, "raised_seq"),
    Statement("alert_cleared", ALERTS, _ALERT_KEY + _CLEARED, _CLEARED, "cleared_seq"),
)}
STATEMENT_ORDER: Final = tuple(STATEMENTS)


# A ``:name`` placeholder (not a ``::type`` cast), rewritten as ``%(name)s`` for psycopg.
_COLON = re.compile(r"(?<![:\w]):([a-z_]+)")


class Dialect:
    """How one back end spells a placeholder and a value."""

    name: str

    def param(self, name: str, column: str, table: Table) -> str:
        raise NotImplementedError

    def value(self, value: object) -> object:
        raise NotImplementedError

    def values(self, statement: Statement, row: Mapping[str, object]) -> dict[str, object]:
        return {c: self.value(row[c]) for c in statement.columns}


class SqliteDialect(Dialect):
    name = "sqlite"

    def param(self, name: str, column: str, table: Table) -> str:
        return f":{name}"

    def value(self, value: object) -> object:
        if isinstance(value, datetime):
            # As in records: fixed width UTC text, so text order is time order.
            return value.astimezone(UTC).isoformat(timespec="microseconds")
        if isinstance(value, date):
            return value.isoformat()
        return value


class PostgresDialect(Dialect):
    name = "postgresql"

    def param(self, name: str, column: str, table: Table) -> str:
        # JSON goes as text and is cast; the cast also types a NULL.
        return f"%({name})s::jsonb" if column in table.json_columns else f"%({name})s"

    def value(self, value: object) -> object:
        return value


SQLITE: Final = SqliteDialect()
POSTGRESQL: Final = PostgresDialect()


def upsert_sql(statement: Statement, dialect: Dialect) -> str:
    table = statement.table
    params = ", ".join(dialect.param(c, c, table) for c in statement.columns)
    head = (f"INSERT INTO {table.name} ({', '.join(statement.columns)}) VALUES ({params}) "
            f"ON CONFLICT ({', '.join(table.key)}) DO ")
    if not statement.update:
        return head + "NOTHING"
    sets = ", ".join(f"{c} = excluded.{c}" for c in statement.update)
    guard = statement.guard
    return (head + f"UPDATE SET {sets} WHERE {table.name}.{guard} IS NULL "
            f"OR excluded.{guard} > {table.name}.{guard}")


def select_sql(table: Table, dialect: Dialect, *, buses: bool, where: str) -> str:
    """Rows of ``table`` matching ``where`` (placeholders in ``:name`` style, rewritten for the
    dialect); ``buses``: only those of the buses in the parameter ``buses`` (a list)."""
    conditions = [where]
    if buses:
        conditions.append("bus IN (SELECT value FROM json_each(:buses))"
                          if dialect is SQLITE else "bus = ANY(:buses)")
    text = (f"SELECT {', '.join(table.columns)} FROM {table.name} "
            f"WHERE {' AND '.join(conditions)} ORDER BY {table.order}")
    return placeholders(text, dialect)


def placeholders(query: str, dialect: Dialect) -> str:
    """``query``'s ``:name`` placeholders in ``dialect``'s style (psycopg's ``%(name)s``)."""
    if dialect is SQLITE:
        return query
    return _COLON.sub(lambda m: f"%({m[1]})s", query)


def bus_args(bus: str | Sequence[str] | None, dialect: Dialect) -> dict[str, object]:
    if bus is None:
        return {}
    buses = [bus] if isinstance(bus, str) else list(bus)
    return {"buses": json.dumps(buses) if dialect is SQLITE else buses}
