"""The day view's reads of raw records (what the derived tables do not keep), both dialects.

The SOC series comes from the telemetry samples (``battery.soc`` in a sample's ``values``);
the accepted plans' projections from the ``plan_changed`` records that proposed them (the
derived ``plan_changes`` rows keep the projected depot SOC only), and the plans the bus loaded
from the ``plan_changed`` records that announced them. Each is one bus's records
in one time range: the (bus, ts) index (migration ``records_bus_ts``) makes that a range probe.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from busd.event_catalog import PlanChanged, Proposal
from busd.plan import Plan
from busd.signals import BATTERY_SOC
from office.archive import Archive
from office.archive.base import dialect_of, select
from telemetry.models import SCHEMA_TELEMETRY

_SOC_SQLITE = f"json_extract(data, '$.values.\"{BATTERY_SOC}\"')"
_SOC_POSTGRESQL = f"(data->'values'->>'{BATTERY_SOC}')::float8"


def as_utc(value: Any) -> datetime:
    """A time as a back end returns it (SQLite: ISO text) as an aware UTC datetime."""
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts.astimezone(UTC)


def _args(archive: Archive, bus: str, start: datetime, end: datetime) -> dict[str, Any]:
    value = dialect_of(archive).value
    return {"bus": bus, "start": value(start), "end": value(end)}


async def soc_series(archive: Archive, bus: str, start: datetime,
                     end: datetime) -> list[tuple[datetime, float]]:
    """(time, SOC %) of every telemetry sample of ``bus`` in [start, end) that carries one."""
    soc = _SOC_SQLITE if archive.dialect == "sqlite" else _SOC_POSTGRESQL
    rows = await select(
        archive, f"SELECT ts, {soc} FROM records WHERE bus = :bus AND ts >= :start AND ts < :end "
        f"AND schema = :schema AND {soc} IS NOT NULL ORDER BY ts",
        _args(archive, bus, start, end) | {"schema": SCHEMA_TELEMETRY})
    return [(as_utc(ts), float(value)) for ts, value in rows]


async def plan_changes(archive: Archive, bus: str, start: datetime,
                       end: datetime) -> list[tuple[datetime, PlanChanged]]:
    """``bus``'s ``plan_changed`` records in [start, end), in its order (one that does not
    fit the catalogue is left out, as derivation leaves it out)."""
    rows = await select(
        archive, "SELECT ts, data FROM records WHERE bus = :bus AND ts >= :start "
        "AND ts < :end AND kind = 'plan_changed' ORDER BY seq", _args(archive, bus, start, end))
    found: list[tuple[datetime, PlanChanged]] = []
    for ts, data in rows:
        try:
            found.append((as_utc(ts), PlanChanged.model_validate(
                json.loads(data) if isinstance(data, str) else data)))
        except ValidationError:
            continue
    return found


def proposals(changes: list[tuple[datetime, PlanChanged]]) -> dict[str, Proposal]:
    """The proposals among ``changes``, by id."""
    found: dict[str, Proposal] = {}
    for _, event in changes:
        if event.proposal is not None:
            found.setdefault(event.proposal.id, event.proposal)
    return found


def loaded_plans(changes: list[tuple[datetime, PlanChanged]]) -> list[tuple[datetime, Plan]]:
    """The plans the bus loaded among ``changes`` (from a file or the office), in order."""
    return [(ts, e.plan) for ts, e in changes
            if e.cause in ("file", "office") and e.plan is not None]
