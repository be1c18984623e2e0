"""``busd office plan send`` and ``busd office command status``.

Registered by :func:`add_send_commands` (under ``busd office plan``) and
:func:`add_command_commands` (``busd office command``), from office/cli.py.

Exit status of ``plan send``: 0 accepted (now, or kept for a later day), 3 rejected (the
reason printed), 1 no answer within ``--timeout`` (pending: the bus may be offline, it gets
the plan when it connects; or delivered: it has the plan and has not answered yet), 4 the
plan's day is over (not sent), 2 an error (a bad file, no broker, no archive, a plan
``busd office plan generate`` flagged unsafe without ``--force``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiomqtt import MqttError
from pydantic import ValidationError

from busd.errors import ConfigError
from office.archive import ArchiveError, open_archive
from office.archive.commands import CommandState, CommandStatus
from office.dispatch.send import DispatchError, SendOutcome, command_statuses, send_plan

log = structlog.get_logger("office.dispatch")

EXIT_OK = 0
EXIT_UNANSWERED = 1
EXIT_ERROR = 2
EXIT_REJECTED = 3
EXIT_EXPIRED = 4
_EXIT: dict[CommandState, int] = {"accepted": EXIT_OK, "rejected": EXIT_REJECTED,
                                  "pending": EXIT_UNANSWERED, "delivered": EXIT_UNANSWERED,
                                  "expired": EXIT_EXPIRED}


def add_send_commands(plan_subparsers: Any) -> None:
    """``send`` under the ``busd office plan`` sub-commands."""
    from office.cli import add_broker_arguments

    send = plan_subparsers.add_parser(
        "send", help="send a day's plan to a bus (cmd/plan) and show its answer",
        description="Publish the plan on the bus's cmd/plan (QoS 1, expiring at the end of "
                    "the plan's day in its time zone) and wait for the bus's cmd/result. A bus "
                    "that is offline gets it when it connects, exactly once. Exit status: 0 "
                    "accepted, 3 rejected, 1 no answer yet (pending or delivered), 4 the "
                    "plan's day is over, 2 an error.")
    add_broker_arguments(send)
    send.add_argument("file", type=Path, help="the plan: JSON (as cmd/plan carries it) or TOML")
    send.add_argument("--bus", required=True, help="the bus to send it to")
    send.add_argument("--archive", metavar="URL",
                      help="record the command here (sqlite:///file.db, postgresql://…), so "
                           "busd office command status follows it")
    send.add_argument("--timeout", type=float, default=30.0, metavar="S",
                      help="wait at most S seconds for the answer (default 30)")
    send.add_argument("--id", dest="command_id", help="the command's id (default: made up)")
    send.add_argument("--json", action="store_true", help="the outcome as one JSON object")
    send.add_argument("--force", action="store_true",
                      help="send a plan busd office plan generate flagged unsafe (its "
                           "BUS.unsafe.json file, or the day's summary) all the same")
    send.set_defaults(func=send_main)


def add_command_commands(office_subparsers: Any) -> None:
    """``command status`` under the ``busd office`` sub-commands."""
    command = office_subparsers.add_parser(
        "command", help="the commands sent to the buses",
        description="What became of the commands the office sent.")
    sub = command.add_subparsers(dest="command_command", metavar="{status}", required=True)
    status = sub.add_parser(
        "status", help="each command sent: pending, delivered, accepted, rejected, expired",
        description="List the commands recorded in the archive, newest first, with what the "
                    "bus made of each.")
    status.add_argument("--archive", required=True, metavar="URL",
                        help="sqlite:///file.db, postgresql://…, or a SQLite file's path")
    status.add_argument("--bus", help="only this bus")
    status.add_argument("--since", type=datetime.fromisoformat, metavar="TIME",
                        help="only those sent at or after this time (ISO 8601; UTC if no zone)")
    status.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    status.set_defaults(func=status_main)


def send_main(args: argparse.Namespace) -> int:
    # The plan's and the schedule's modules only when sending (office/schedule/cli.py says why).
    from busd.plan import load_plan
    from office.cli import archive_url, settings_from_args
    from office.schedule.day import unsafe_reason

    try:
        plan = load_plan(args.file)
    except ConfigError as err:
        print(f"busd office plan send: {args.file}: " + "; ".join(
            f"{key}: {reason}" for key, reason in err.problems), flush=True)
        return EXIT_ERROR
    unsafe = unsafe_reason(args.file, plan)
    if unsafe is not None:
        if not args.force:
            log.warning("office_plan_send_refused_unsafe", day=plan.date.isoformat(),
                        version=plan.version)
            print(f"busd office plan send: not sent: {unsafe}: the day cannot be served "
                  "safely. Fix the schedule and generate again, or send it anyway with "
                  "--force", flush=True)
            return EXIT_ERROR
        log.warning("office_plan_send_forced_unsafe", day=plan.date.isoformat(),
                    version=plan.version)
    try:
        outcome = asyncio.run(_send(args, plan=plan, settings=settings_from_args(args),
                                    url=archive_url(args.archive) if args.archive else None))
    except DispatchError as err:
        print(f"busd office plan send: {err}", flush=True)
        return EXIT_ERROR
    except ValidationError as err:  # e.g. an --id longer than a command id may be
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in err.errors())
        print(f"busd office plan send: {problems}", flush=True)
        return EXIT_ERROR
    except (ArchiveError, MqttError, OSError) as err:
        log.error("office_plan_send_failed", reason=str(err))
        print(f"busd office plan send: {err}", flush=True)
        return EXIT_ERROR
    print(format_outcome(outcome, as_json=args.json, timeout_s=args.timeout), flush=True)
    return _EXIT[outcome.state]


async def _send(args: argparse.Namespace, *, plan: Any, settings: Any,
                url: str | None) -> SendOutcome:
    if url is None:
        return await send_plan(plan, bus=args.bus, settings=settings, prefix=args.prefix,
                               timeout_s=args.timeout, command_id=args.command_id)
    async with open_archive(url) as archive:
        return await send_plan(plan, bus=args.bus, settings=settings, archive=archive,
                               prefix=args.prefix, timeout_s=args.timeout,
                               command_id=args.command_id)


def format_outcome(outcome: SendOutcome, *, as_json: bool = False, timeout_s: float = 0) -> str:
    sent = outcome.sent
    if as_json:
        return json.dumps({"bus": sent.bus, "id": sent.id, "command": sent.command,
                           "state": outcome.state, "reason": outcome.reason,
                           "day": None if sent.day is None else sent.day.isoformat(),
                           "version": sent.version,
                           "result": None if outcome.result is None
                           else outcome.result.model_dump(mode="json")},
                          separators=(",", ":"))
    what = f"{sent.bus} {sent.command} {sent.id}"
    if outcome.state == "accepted":
        detail = outcome.result.detail if outcome.result is not None else None
        if detail is not None and detail.scheduled is not None:
            return f"{what}: accepted (scheduled for {detail.scheduled.isoformat()})"
        return f"{what}: accepted"
    if outcome.state == "rejected":
        return f"{what}: rejected: {outcome.reason}"
    if outcome.state == "expired":
        return f"{what}: not sent: {outcome.reason}"
    if outcome.state == "delivered":
        return f"{what}: delivered, no answer within {timeout_s:g} s"
    return (f"{what}: pending, no answer within {timeout_s:g} s (the bus may be offline; it "
            "gets the command when it connects, until it expires)")


def status_main(args: argparse.Namespace) -> int:
    from office.cli import archive_url, missing_archive

    url = archive_url(args.archive)
    if (missing := missing_archive(url)) is not None:
        print(f"busd office command status: no archive at {missing}", flush=True)
        return EXIT_ERROR
    since = args.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        rows = asyncio.run(_statuses(url, bus=args.bus, since=since, limit=args.limit))
    except ArchiveError as err:
        log.error("office_command_status_failed", reason=str(err))
        print(f"busd office command status: {err}", flush=True)
        return EXIT_ERROR
    print(format_statuses(rows, as_json=args.json), flush=True)
    return EXIT_OK


async def _statuses(url: str, **query: Any) -> list[tuple[CommandStatus, CommandState]]:
    async with open_archive(url) as archive:
        return await command_statuses(archive, **query)


def format_statuses(rows: list[tuple[CommandStatus, CommandState]], *,
                    as_json: bool = False) -> str:
    if as_json:
        return "\n".join(json.dumps(
            {"bus": c.sent.bus, "id": c.sent.id, "command": c.sent.command,
             "sent": c.sent.sent.isoformat(),
             "expires": None if c.sent.expires is None else c.sent.expires.isoformat(),
             "day": None if c.sent.day is None else c.sent.day.isoformat(),
             "version": c.sent.version, "state": state, "reason": c.reason,
             "answered": None if c.answered is None else c.answered.isoformat()},
            separators=(",", ":")) for c, state in rows)
    if not rows:
        return "no commands sent"
    lines = [f"{'sent (UTC)':<19}  {'bus':<10} {'command':<7} {'day':<10} {'ver':>4}  "
             f"{'state':<9}  id / reason"]
    for c, state in rows:
        day = c.sent.day.isoformat() if c.sent.day is not None else "-"
        version = str(c.sent.version) if c.sent.version is not None else "-"
        note = c.reason if state == "rejected" else ""
        if state == "accepted" and c.detail is not None and c.detail.scheduled is not None:
            note = f"scheduled for {c.detail.scheduled.isoformat()}"
        lines.append(f"{c.sent.sent.strftime('%Y-%m-%d %H:%M:%S'):<19}  {c.sent.bus:<10} "
                     f"{c.sent.command:<7} {day:<10} {version:>4}  {state:<9}  {c.sent.id}"
                     + (f"  {note}" if note else ""))
    return "\n".join(lines)
