"""A municipality's month report from a fleet's month in PostgreSQL (issue 15's target: < 3 s).

    python benchmarks/office_month_report.py [--buses 200] [--days 30] [--per-municipality 20]
                                             [--telemetry-s 10] [--runs 3]

Starts its own PostgreSQL (tests/support/postgres.py: a free port, a temporary directory),
fills an archive through the archive's own interface (``insert_batch``: COPY of the records,
the derived rows made in the same transaction, as the ingest workers do) with ``--buses``
buses × ``--days`` days of a bus's events: per bus and day 9 legs, 8 visits at stops, a
charging session, a proposal the driver accepts, an alert raised and cleared and the daily
report (23 records), at a temperature that changes from day to day; and telemetry for the last
day only (a sample every ``--telemetry-s`` s over 10 hours). Then it times the month report of
one municipality (``--per-municipality`` buses) ``--runs`` times.

The web benchmark (benchmarks/office_web.py) calls :func:`fill_month` and
:func:`time_month_report`. The last output line is one JSON object:
``{"buses", "days", "records", "fill_s", "month_report_s": {"min", "median", "max"}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from busd.clock import ManualClock  # noqa: E402
from busd.event_catalog import (  # noqa: E402
    DailyReport,
    EventModel,
    PlanAccepted,
    PlanChanged,
    StopOutcome,
)
from busd.signals import BATTERY_SOC  # noqa: E402
from office.archive import Archive, ArchivedRecord, open_archive  # noqa: E402
from office.reports import Municipality, Period, build_report  # noqa: E402
from telemetry.models import (  # noqa: E402
    SCHEMA_CMD_RESULT,
    SCHEMA_EVENT,
    SCHEMA_REPORT,
    SCHEMA_TELEMETRY,
)
from tests.support.bus_events import (  # noqa: E402
    alert_cleared,
    alert_raised,
    charging,
    iso,
    leg,
    visit_ended,
)
from tests.support.office_day import DaySpec, proposal  # noqa: E402
from tests.support.postgres import start_postgres, stop_postgres  # noqa: E402

TZ = "Europe/Riga"
STOPS = 8
BATCH = 5000


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _record(bus: str, seq: int, ts: datetime, event: EventModel | dict[str, object],
            kind: str, schema: str) -> ArchivedRecord:
    """Built without validation: the generator's own events, already catalogue models."""
    data = event.to_dict() if isinstance(event, EventModel) else event
    topic = {SCHEMA_EVENT: f"event/{kind}", SCHEMA_REPORT: f"report/{kind}",
             SCHEMA_CMD_RESULT: "cmd/result", SCHEMA_TELEMETRY: "telemetry"}[schema]
    return ArchivedRecord.model_construct(
        bus=bus, seq=seq, ts=ts, schema_=schema, kind=kind,
        topic=f"multimobile/v1/{bus}/{topic}", received=ts + timedelta(seconds=1), data=data)


def bus_day(bus: str, day: date, first_seq: int, temp_c: float) -> list[ArchivedRecord]:
    """One bus's day of events (see the module's docstring), in seq order."""
    spec = DaySpec(bus=bus, day=day, tz=TZ)
    at = spec.at("08:00")
    out: list[tuple[datetime, EventModel, str, str]] = []
    outcomes = []
    for i in range(STOPS + 1):
        end = at + timedelta(minutes=25)
        out.append((end, leg(f"l{i}@{day}", at, end, km=11.0 + i, kwh=2.6 + 0.1 * i,
                             temp_c=temp_c), "leg_completed", SCHEMA_EVENT))
        at = end + timedelta(minutes=1)
        if i == STOPS:
            break
        place = f"{bus}-s{i}"
        minutes = 30.0 if i != 3 else 15.0
        end = at + timedelta(minutes=minutes)
        out.append((end, visit_ended(f"v{i}@{day}", at, end, place=place), "visit_ended",
                     SCHEMA_EVENT))
        outcomes.append(StopOutcome(stop_id=place, name=place.title(),
                                    status="served" if i != 3 else "shortened",
                                    planned_min=30.0, minutes=minutes, reason=None))
        if i == 4:
            end = at + timedelta(minutes=40)
            out.append((end, charging(f"c@{day}", at, end, 12.0), "charging_ended",
                        SCHEMA_EVENT))
        at = end + timedelta(minutes=1)
    made = proposal(spec)
    out.append((spec.at("09:40"), PlanChanged(cause="proposed", proposal=made), "plan_changed",
                SCHEMA_EVENT))
    out.append((spec.at("09:42"), PlanAccepted(proposal_id=made.id, proposal_kind="reduce",
                                               changes=made.changes, itinerary=made.itinerary,
                                               reasons=made.reasons), "plan_accepted",
                SCHEMA_EVENT))
    raised = spec.at("11:00")
    out.append((raised, alert_raised("lift_fault", raised), "alert_raised", SCHEMA_EVENT))
    out.append((raised + timedelta(minutes=3), alert_cleared("lift_fault", raised, 180.0),
                "alert_cleared", SCHEMA_EVENT))
    report = DailyReport(
        day=day, created=iso(spec.at("23:00")), km=150.0, energy_out_kwh=30.0,
        energy_regen_kwh=3.0, energy_charged_kwh=12.0, energy_net_kwh=27.0,
        driving_kwh_per_km=0.18, kwh_per_km=0.18, driving_min=225.0, on_site_min=225.0,
        charging_min=40.0, legs=STOPS + 1, visits=STOPS, unplanned_stops=0,
        stops_served=STOPS - 1, stops_shortened=1, stops_skipped=0, stops=outcomes,
        charging_sessions=1, min_soc=35.0, lift_cycles=2 * STOPS, clients_served=3 * STOPS,
        alerts=1, energy_gap_min=0.0, open_records=0)
    out.append((spec.at("23:00"), report, "daily", SCHEMA_REPORT))
    out.sort(key=lambda item: item[0])
    return [_record(bus, first_seq + i, ts, event, kind, schema)
            for i, (ts, event, kind, schema) in enumerate(out)]


def telemetry(bus: str, day: date, first_seq: int, every_s: float) -> list[ArchivedRecord]:
    start = DaySpec(bus=bus, day=day, tz=TZ).at("08:00")
    count = int(10 * 3600 / every_s)
    return [_record(bus, first_seq + i, start + timedelta(seconds=i * every_s),
                    {"full": i % 60 == 0, "values": {BATTERY_SOC: round(95 - 60 * i / count, 1)},
                     "stale": []}, "sample", SCHEMA_TELEMETRY)
            for i in range(count)]


def _batches(buses: list[str], days: list[date], every_s: float) -> Iterator[list[ArchivedRecord]]:
    batch: list[ArchivedRecord] = []
    for bus in buses:
        seq = 1
        for i, day in enumerate(days):
            records = bus_day(bus, day, seq, temp_c=-15.0 + (i * 7) % 25)
            if day == days[-1]:
                records += telemetry(bus, day, seq + len(records), every_s)
            seq += len(records)
            batch += records
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def fleet(buses: int) -> list[str]:
    return [f"lv-{i:03d}" for i in range(1, buses + 1)]


async def fill_month(archive: Archive, *, buses: int = 200, first: date = date(2026, 3, 1),
                     days: int = 30, telemetry_s: float = 10.0, workers: int = 2) -> int:
    """Fill ``archive`` with ``buses`` × ``days`` of events from ``first`` (telemetry on the
    last day only); returns the records archived. ``workers`` batches go in at once."""
    dates = [first + timedelta(days=i) for i in range(days)]
    queue: asyncio.Queue[list[ArchivedRecord] | None] = asyncio.Queue(maxsize=workers)
    done = 0

    async def work() -> None:
        nonlocal done
        while (batch := await queue.get()) is not None:
            result = await archive.insert_batch(batch)  # before adding: the other worker adds
            done += result.inserted

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(work())
        for batch in _batches(fleet(buses), dates, telemetry_s):
            await queue.put(batch)
        for _ in range(workers):
            await queue.put(None)
    return done


@dataclass(frozen=True, slots=True)
class Timing:
    runs_s: list[float]

    def summary(self) -> dict[str, float]:
        return {"min": round(min(self.runs_s), 3),
                "median": round(statistics.median(self.runs_s), 3),
                "max": round(max(self.runs_s), 3)}


async def time_month_report(archive: Archive, municipality: Municipality, period: Period, *,
                            runs: int = 3) -> Timing:
    """Build ``municipality``'s report ``runs`` times; the wall time of each."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await build_report(archive, municipality, period)
        times.append(time.perf_counter() - began)
    return Timing(times)


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="busd-pg-"))
    server = start_postgres(folder)
    try:
        first = date(2026, 3, 1)
        clock = ManualClock(datetime(2026, 3, 31, 12, tzinfo=UTC).timestamp())
        async with open_archive(server.create_database("month"), tz=TZ, clock=clock) as archive:
            say(f"filling {args.buses} buses × {args.days} days")
            began = time.perf_counter()
            records = await fill_month(archive, buses=args.buses, first=first, days=args.days,
                                       telemetry_s=args.telemetry_s)
            fill_s = time.perf_counter() - began
            say(f"{records} records in {fill_s:.0f} s")
            town = Municipality(name="bench", tz=TZ,
                                buses=tuple(fleet(args.buses)[:args.per_municipality]))
            period = Period.month(first.year, first.month)
            report = await build_report(archive, town, period)
            say(f"report: {report.totals.days_operated} bus-days, {report.totals.km} km")
            timing = await time_month_report(archive, town, period, runs=args.runs)
    finally:
        stop_postgres(server)
        shutil.rmtree(folder, ignore_errors=True)
    return {"buses": args.buses, "days": args.days, "municipality_buses": args.per_municipality,
            "records": records, "fill_s": round(fill_s, 1),
            "month_report_s": timing.summary(), "zone": ZoneInfo(TZ).key}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--buses", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-municipality", type=int, default=20)
    parser.add_argument("--telemetry-s", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
