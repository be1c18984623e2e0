"""The reports' SQL: aggregates over the derived tables, grouped in the database.

Each query reads one table over the period's UTC bounds (its time column's index), only the
municipality's buses, and groups by bus and local day (:mod:`office.reports.localday`), so a
month of a municipality comes back as a few thousand small rows whatever the archive holds.
Placeholders are ``:name`` (rewritten for psycopg by the archive's ``select``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from office.archive import Archive
from office.archive.base import dialect_of, select
from office.archive.derived.tables import SQLITE, bus_args
from office.reports.localday import local_day_sql

# Each leg by its mean outside temperature (legs.temp_c); edges belong to the warmer band.
BAND_SQL = """CASE WHEN temp_c IS NULL THEN 'unknown'
    WHEN temp_c < -10 THEN 'below_-10' WHEN temp_c < 0 THEN '-10_0'
    WHEN temp_c < 10 THEN '0_10' WHEN temp_c < 20 THEN '10_20' ELSE '20_up' END"""


@dataclass(frozen=True, slots=True)
class Rows:
    """The raw aggregates of one report, as the database returned them."""

    legs: list[tuple[Any, ...]]  # bus, day, legs, km, kwh, driving min, first start, last end
    bands: list[tuple[Any, ...]]  # band, legs, km, kwh
    visits: list[tuple[Any, ...]]  # bus, day, place, name, kind, visits, min, lift cycles
    planned: list[tuple[Any, ...]]  # bus, day, stop id, name
    reports: list[tuple[Any, ...]]  # bus, day, clients, served, shortened, skipped
    charging: list[tuple[Any, ...]]  # bus, day, sessions, kWh
    alerts: list[tuple[Any, ...]]  # bus, day, alert, count, seconds
    emergencies: list[tuple[Any, ...]]  # bus, day, count


async def fetch(archive: Archive, buses: list[str], zone: ZoneInfo, start: datetime,
                end: datetime, first: date, last: date) -> Rows:
    dialect = dialect_of(archive)
    value = dialect.value
    args: dict[str, Any] = {"start": value(start), "end": value(end), "first": value(first),
                            "last": value(last)} | bus_args(buses, dialect)
    if dialect is not SQLITE:
        args["tz"] = zone.key
    in_buses = ("bus IN (SELECT value FROM json_each(:buses))" if dialect is SQLITE
                else "bus = ANY(:buses)")

    def day(column: str) -> str:
        return local_day_sql(column, dialect, zone, start, end)

    def spans(table: str) -> str:
        return f"FROM {table} WHERE start_ts >= :start AND start_ts < :end AND {in_buses}"

    d = day("start_ts")
    legs = select(
        archive, f"SELECT bus, {d}, count(*), sum(km), sum(net_kwh), sum(duration_min), "
        f"min(start_ts), max(coalesce(end_ts, start_ts)) {spans('legs')} GROUP BY bus, {d}",
        args)
    bands = select(
        archive, f"SELECT {BAND_SQL}, count(*), sum(km), sum(net_kwh) {spans('legs')} "
        f"GROUP BY {BAND_SQL}", args)
    visits = select(
        archive, f"SELECT bus, {d}, place_id, max(place_name), place_kind, count(*), "
        f"sum(duration_min), sum(lift_cycles) {spans('visits')} "
        f"GROUP BY bus, {d}, place_id, place_kind", args)
    charging = select(
        archive, f"SELECT bus, {d}, count(*), sum(energy_added_kwh) {spans('charging')} "
        f"GROUP BY bus, {d}", args)
    if dialect is SQLITE:
        planned_sql = (
            "SELECT r.bus, r.day, json_extract(s.value, '$.stop_id'), "
            "json_extract(s.value, '$.name') FROM daily_reports r, json_each(r.stops) s "
            "WHERE r.day >= :first AND r.day <= :last AND r.bus IN "
            "(SELECT value FROM json_each(:buses))")
    else:
        planned_sql = (
            "SELECT r.bus, r.day, s->>'stop_id', s->>'name' FROM daily_reports r "
            "CROSS JOIN LATERAL jsonb_array_elements(r.stops) s "
            "WHERE r.day >= :first AND r.day <= :last AND r.bus = ANY(:buses)")
    planned = select(archive, planned_sql, args)
    reports = select(
        archive, "SELECT bus, day, clients_served, stops_served, stops_shortened, stops_skipped "
        f"FROM daily_reports WHERE day >= :first AND day <= :last AND {in_buses}", args)
    raised = day("raised_at")
    alerts = select(
        archive, f"SELECT bus, {raised}, alert, count(*), sum(coalesce(duration_s, 0)) FROM alerts "
        f"WHERE raised_at >= :start AND raised_at < :end AND {in_buses} "
        f"GROUP BY bus, {raised}, alert", args)
    made = day("ts")
    emergencies = select(
        archive, f"SELECT bus, {made}, count(DISTINCT proposal_id) FROM plan_changes "
        f"WHERE ts >= :start AND ts < :end AND {in_buses} AND cause = 'proposed' "
        f"AND emergency = TRUE GROUP BY bus, {made}", args)
    # Independent reads: PostgreSQL runs them on the pool's connections at once.
    done = await asyncio.gather(legs, bands, visits, planned, reports, charging, alerts,
                                emergencies)
    return Rows(*done)
