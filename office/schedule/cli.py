"""``busd office plan generate|proposals|confirm|coverage``: the schedule's commands.

:func:`add_plan_commands` adds them to ``busd office plan``'s sub-parsers (office/cli.py);
``plan send`` (the delivery of a plan) hangs off the same parser from its own module.
Exit status: 0 done, 2 an error (bad schedule, archive unreachable), 3 a day flagged unsafe.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from busd.clock import Clock, SystemClock
from busd.errors import ConfigError
from office.archive import Archive, ArchiveError, open_archive
from office.cli import archive_url as _archive_url
from office.cli import missing_archive

# Each command imports the schedule's modules it runs, and only then: every ``busd office``
# command builds this parser, and the schedule brings the planner and the bus's config (about
# a fifth of a second) that a restarted ingest worker does not need.
if TYPE_CHECKING:
    from office.schedule.coverage import CoverageReport
    from office.schedule.generate import BusDay
    from office.schedule.model import Schedule
    from office.schedule.proposals import MakeUp

log = structlog.get_logger("office.schedule.cli")

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_UNSAFE = 3


def _month(value: str) -> date:
    return datetime.strptime(value, "%Y-%m").date()


def add_plan_commands(plan_sub: Any) -> None:
    """Add generate, proposals, confirm and coverage to ``busd office plan``'s sub-parsers."""
    gen = plan_sub.add_parser(
        "generate", help="each bus's plan for a day, from the schedule, checked against energy",
        description="Write DIR/{bus}.json (the plan cmd/plan carries) for every bus with "
                    "stops that day, and DIR/{date}.summary.json. A plan that cannot be served "
                    "safely (energy, windows, return time) is written as {bus}.unsafe.json and "
                    "the exit status is 3.")
    gen.add_argument("--schedule", type=Path, required=True, metavar="FILE")
    gen.add_argument("--date", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    gen.add_argument("--through", type=date.fromisoformat, metavar="YYYY-MM-DD",
                     help="generate every day up to this one, each in DIR/YYYY-MM-DD/")
    gen.add_argument("--out", type=Path, required=True, metavar="DIR")
    gen.add_argument("--archive", metavar="URL",
                     help="the buses' learned energy models and the confirmed make-ups "
                          "(default: seeded models, no make-ups)")
    gen.add_argument("--version", type=int, help="plan version (default: now, epoch seconds)")
    gen.add_argument("--temp-c", type=float, help="outside temperature to check against "
                     "(default: the schedule's for the month)")
    gen.set_defaults(func=generate_main)

    prop = plan_sub.add_parser(
        "proposals", help="missed visits of recent days, proposed for the next reserve day",
        description="Look at the last --days days in the archive, store a proposal for every "
                    "visit skipped, shortened below its minimum or due on a holiday, and list "
                    "the proposals.")
    prop.add_argument("--schedule", type=Path, required=True, metavar="FILE")
    prop.add_argument("--archive", required=True, metavar="URL")
    prop.add_argument("--days", type=int, default=14, help="days back to look (default 14)")
    prop.add_argument("--today", type=date.fromisoformat, help="default: today, local")
    prop.add_argument("--json", action="store_true", help="one JSON object per line")
    prop.set_defaults(func=proposals_main)

    conf = plan_sub.add_parser("confirm", help="confirm a make-up proposal",
                               description="Confirm proposal ID: generate then includes the "
                                           "point on its reserve day.")
    conf.add_argument("id")
    conf.add_argument("--archive", required=True, metavar="URL")
    conf.set_defaults(func=confirm_main)

    cov = plan_sub.add_parser("coverage", help="monthly coverage per place: due, served, "
                              "missed, made up")
    cov.add_argument("--schedule", type=Path, required=True, metavar="FILE")
    cov.add_argument("--month", type=_month, required=True, metavar="YYYY-MM")
    cov.add_argument("--archive", required=True, metavar="URL")
    cov.add_argument("--json", action="store_true")
    cov.set_defaults(func=coverage_main)


def _load(args: argparse.Namespace, command: str) -> Schedule | None:
    from office.schedule.model import load_schedule

    try:
        return load_schedule(args.schedule)
    except ConfigError as err:
        log.error("schedule_invalid", problems=len(err.problems))
        print(f"busd office plan {command}: invalid schedule {args.schedule}\n{err.render()}",
              flush=True)
        return None


def _open(url: str, schedule: Schedule | None) -> Archive:
    tz = schedule.timezone if schedule is not None else "Europe/Riga"
    if (missing := missing_archive(url)) is not None:
        raise ArchiveError(f"no archive at {missing}")
    return open_archive(url, tz=tz)


def generate_main(args: argparse.Namespace) -> int:
    from office.schedule.day import format_day

    schedule = _load(args, "generate")
    if schedule is None:
        return EXIT_ERROR
    last = args.through or args.date
    if last < args.date:
        print("busd office plan generate: --through is before --date", flush=True)
        return EXIT_ERROR
    try:
        results = asyncio.run(_generate(schedule, args, SystemClock()))
    except ArchiveError as err:
        print(f"busd office plan generate: {err}", flush=True)
        return EXIT_ERROR
    flagged = [bd for bd in results if bd.flagged]
    for bd in flagged:
        log.warning("day_unsafe", bus=bd.bus, day=bd.date.isoformat(), problems=len(bd.problems))
    print(format_day(results), flush=True)
    if flagged:
        print(f"\n{len(flagged)} plan(s) cannot be served safely: NOT ready to send "
              "(written as BUS.unsafe.json)", flush=True)
        return EXIT_UNSAFE
    return EXIT_OK


async def _generate(schedule: Schedule, args: argparse.Namespace, clock: Clock) -> list[BusDay]:
    from office.schedule.cycles import days
    from office.schedule.day import generate_day, write_day

    archive = None if args.archive is None else _open(_archive_url(args.archive), schedule)
    last = args.through or args.date
    results: list[BusDay] = []
    if archive is not None:
        await archive.open()
    try:
        for day in days(args.date, last):
            plans = await generate_day(schedule, day, archive=archive, clock=clock,
                                       version=args.version, temp_c=args.temp_c)
            out = args.out if args.through is None else args.out / day.isoformat()
            write_day(out, day, plans)
            results += plans
    finally:
        if archive is not None:
            await archive.close()
    return results


def format_proposals(found: list[MakeUp], *, as_json: bool) -> str:
    if as_json:
        return "\n".join(p.model_dump_json() for p in found)
    if not found:
        return "no proposals"
    lines = [f"{'id':<40} {'bus':<8} {'missed':<10} {'reason':<9} {'min':>5}  "
             f"{'reserve day':<11} status"]
    for p in found:
        lines.append(f"{p.id:<40} {p.bus:<8} {p.missed_day.isoformat():<10} {p.reason:<9} "
                     f"{p.minutes:>5.0f}  {p.reserve_day.isoformat():<11} {p.status}")
    return "\n".join(lines)


def proposals_main(args: argparse.Namespace) -> int:
    from office.schedule.proposals import find_missed, list_proposals, scan_window

    schedule = _load(args, "proposals")
    if schedule is None:
        return EXIT_ERROR
    clock = SystemClock()
    today = args.today or datetime.fromtimestamp(clock.now(), schedule.zone).date()
    first, last = scan_window(today, args.days)

    async def run() -> list[MakeUp]:
        async with _open(_archive_url(args.archive), schedule) as archive:
            await find_missed(archive, schedule, first, last, clock=clock)
            return await list_proposals(archive, schedule,
                                        since=first - timedelta(days=args.days))

    try:
        found = asyncio.run(run())
    except ArchiveError as err:
        print(f"busd office plan proposals: {err}", flush=True)
        return EXIT_ERROR
    print(format_proposals(found, as_json=args.json), flush=True)
    return EXIT_OK


def confirm_main(args: argparse.Namespace) -> int:
    from office.schedule.proposals import confirm

    async def run() -> MakeUp | None:
        async with _open(_archive_url(args.archive), None) as archive:
            return await confirm(archive, args.id, clock=SystemClock())

    try:
        made = asyncio.run(run())
    except ArchiveError as err:
        print(f"busd office plan confirm: {err}", flush=True)
        return EXIT_ERROR
    if made is None:
        print(f"busd office plan confirm: no proposal {args.id!r}", flush=True)
        return EXIT_ERROR
    print(f"confirmed: {made.point_name} ({made.point_id}) on {made.reserve_day.isoformat()}, "
          f"bus {made.bus}", flush=True)
    return EXIT_OK


def coverage_main(args: argparse.Namespace) -> int:
    from office.schedule.coverage import coverage, format_coverage

    schedule = _load(args, "coverage")
    if schedule is None:
        return EXIT_ERROR

    async def run() -> CoverageReport:
        async with _open(_archive_url(args.archive), schedule) as archive:
            return await coverage(archive, schedule, args.month)

    try:
        report = asyncio.run(run())
    except ArchiveError as err:
        print(f"busd office plan coverage: {err}", flush=True)
        return EXIT_ERROR
    print(report.model_dump_json(indent=2) if args.json else format_coverage(report), flush=True)
    return EXIT_OK

