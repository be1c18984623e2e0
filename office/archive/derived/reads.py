"""The typed reads of the derived tables, shared by both back ends.

A back end mixes :class:`DerivedReads` in and provides ``_derived_dialect`` and
``_derived_fetch`` (a query and its named parameters in, rows out). ``bus`` is one bus, a
group of buses (a municipality's), or None for every bus; ``day`` to ``last`` (inclusive) are
local days of the archive's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

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
from office.archive.derived.tables import (
    ALERTS,
    CHARGING,
    DAILY_REPORTS,
    LEGS,
    PLAN_CHANGES,
    VISIT_SERVICES,
    VISITS,
    Dialect,
    Table,
    bus_args,
    select_sql,
)
from office.archive.gaps_sql import day_bounds
from office.archive.months import next_month

Buses = str | Sequence[str] | None
R = TypeVar("R", bound=DerivedRow)


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What :meth:`rebuild_derived` read: event records, and those that did not fit."""

    records: int
    unfit: int


class DerivedReads:
    _derived_dialect: Dialect
    _tz: ZoneInfo

    async def _derived_fetch(self, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def _read(self, table: Table, model: type[R], bus: Buses, where: str,
                    args: dict[str, Any]) -> list[R]:
        dialect = self._derived_dialect
        query = select_sql(table, dialect, buses=bus is not None, where=where)
        rows = await self._derived_fetch(query, args | bus_args(bus, dialect))
        out = [table.row(r) for r in rows]
        return [r for r in out if isinstance(r, model)]

    def _days(self, day: date, last: date | None) -> dict[str, Any]:
        return {"first": self._derived_dialect.value(day),
                "last": self._derived_dialect.value(last or day)}

    async def visits(self, bus: Buses, day: date, *, last: date | None = None) -> list[Visit]:
        """Visits that started on the local days ``day``..``last``, by bus and start."""
        return await self._read(VISITS, Visit, bus, "day >= :first AND day <= :last",
                                self._days(day, last))

    async def visit_services(self, bus: Buses, day: date, *,
                             last: date | None = None) -> list[VisitServices]:
        """The counted visits of the local days ``day``..``last``: clients served per service
        type and minutes per activity at each (the staff page's tallies, as the visit_ended
        carried them), by bus and start. The monthly report sums these per place."""
        return await self._read(VISIT_SERVICES, VisitServices, bus,
                                "day >= :first AND day <= :last", self._days(day, last))

    async def legs(self, bus: Buses, day: date, *, last: date | None = None) -> list[Leg]:
        """Legs that started on the local days ``day``..``last``, by bus and start."""
        return await self._read(LEGS, Leg, bus, "day >= :first AND day <= :last",
                                self._days(day, last))

    async def charging(self, bus: Buses, day: date, *,
                       last: date | None = None) -> list[ChargingSession]:
        """Charging sessions that started on the local days ``day``..``last``."""
        return await self._read(CHARGING, ChargingSession, bus,
                                "day >= :first AND day <= :last", self._days(day, last))

    async def plan_changes(self, bus: Buses, day: date, *,
                           last: date | None = None) -> list[PlanChange]:
        """Plan events made on the local days ``day``..``last``, in the bus's order."""
        return await self._read(PLAN_CHANGES, PlanChange, bus,
                                "day >= :first AND day <= :last", self._days(day, last))

    async def alerts(self, bus: Buses, day: date, *, last: date | None = None) -> list[Alert]:
        """Alerts active at any time of the local days ``day``..``last``: raised before
        their end and not cleared before their start (an alert not cleared yet is active)."""
        start, _ = day_bounds(day, self._tz)
        _, end = day_bounds(last or day, self._tz)
        value = self._derived_dialect.value
        return await self._read(ALERTS, Alert, bus,
                                "raised_at < :end AND (cleared_at IS NULL OR cleared_at >= "
                                ":start)", {"start": value(start), "end": value(end)})

    async def daily_reports(self, bus: Buses, month: date) -> list[DayReport]:
        """The daily reports of the month ``month`` falls in (by the reports' own days)."""
        first = month.replace(day=1)
        return await self._read(DAILY_REPORTS, DayReport, bus, "day >= :first AND day <= :last",
                                self._days(first, next_month(first) - timedelta(days=1)))
