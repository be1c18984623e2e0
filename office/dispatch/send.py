"""Sending a plan (or any command) to a bus, and reading what became of the commands sent.

:func:`send_plan` is the dispatcher's one call (the CLI's ``busd office plan send``, and the
dashboard's dispatcher role): it records the command in the archive as pending, publishes it
with a message expiry at the end of the plan's day (in the plan's time zone), and waits a
while for the bus's receipt and answer. A bus that is offline gets it when it connects (its
persistent session), exactly once, unless the day ended first; its answer then reaches the
archive through the ingest and :func:`command_statuses` shows it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

import structlog
from pydantic import BaseModel

from busd.clock import Clock, SystemClock, utc_iso
from busd.event_catalog import CommandResult
from busd.plan import Plan, day_bounds
from office.archive import Archive
from office.archive.commands import CommandState, CommandStatus, SentCommand
from office.dispatch.channel import CommandChannel, Heard, archive_heard
from office.dispatch.expiry import command_expiry
from telemetry import mqtt
from telemetry.models import CmdPlan

log = structlog.get_logger("office.dispatch")


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What became of one command within the wait: ``state`` is ``accepted`` or
    ``rejected`` (the bus answered: ``result``), ``delivered`` (the bus took it, no answer
    yet), ``pending`` (no word: the bus may be offline; the broker keeps it until it
    expires) or ``expired`` (not sent: its day is over)."""

    sent: SentCommand
    state: CommandState
    reason: str = ""
    result: CommandResult | None = None


class DispatchError(ValueError):
    """A command that cannot be sent as asked (the reason says why)."""


def plan_command(plan: Plan, *, bus: str, now: float, command_id: str | None = None) -> CmdPlan:
    """The ``cmd/plan`` for ``plan``; its id is unique unless given."""
    if plan.bus is not None and plan.bus != bus:
        raise DispatchError(f"the plan is for bus {plan.bus!r}, not {bus!r}")
    command_id = command_id or (
        f"plan-{plan.date.isoformat()}-v{plan.version}-{secrets.token_hex(3)}")
    return CmdPlan(bus=bus, ts=utc_iso(now), id=command_id, version=plan.version,
                   date=plan.date, plan=plan)


def plan_expiry(plan: Plan) -> datetime:
    """The end of the plan's day in its own time zone: a plan is worth nothing after it."""
    return datetime.fromtimestamp(day_bounds(plan)[1], UTC)


async def send_plan(
    plan: Plan, *, bus: str, settings: mqtt.BrokerSettings, archive: Archive | None = None,
    prefix: str, timeout_s: float = 30.0, clock: Clock | None = None,
    command_id: str | None = None,
) -> SendOutcome:
    """Send ``plan`` to ``bus`` on ``cmd/plan`` and wait at most ``timeout_s`` for its answer.

    Raises :class:`DispatchError` for a plan that is not for this bus; a plan whose day is
    over is not sent (``expired``). ``archive``: where the command is recorded (and the
    answers heard are archived, as the ingest would)."""
    clock = clock or SystemClock()
    now = clock.now()
    command = plan_command(plan, bus=bus, now=now, command_id=command_id)
    expires = plan_expiry(plan)
    return await send_command(command, bus=bus, name="plan", settings=settings, archive=archive,
                              prefix=prefix, timeout_s=timeout_s, clock=clock, expires=expires,
                              day=plan.date, version=plan.version)


async def send_command(
    command: BaseModel, *, bus: str, name: str, settings: mqtt.BrokerSettings,
    archive: Archive | None, prefix: str, timeout_s: float, clock: Clock,
    expires: datetime | None = None, day: date | None = None, version: int | None = None,
) -> SendOutcome:
    """Send any command model (with an ``id``) and wait for its answer; see :func:`send_plan`.

    ``expires`` None: the command kind's default (:mod:`office.dispatch.expiry`)."""
    command_id = getattr(command, "id", None)
    if not isinstance(command_id, str):
        raise DispatchError("a command needs an id")
    now = datetime.fromtimestamp(clock.now(), UTC)
    if expires is None:
        expires = command_expiry(name, now)
    sent = SentCommand(bus=bus, id=command_id, command=name, sent=now, expires=expires,
                       day=day, version=version)
    if expires is not None and expires <= now:
        log.warning("command_expired_before_sending", bus=bus, command=name, id=command_id)
        return SendOutcome(sent, "expired", f"expired at {utc_iso(expires.timestamp())}, "
                                            "before it was sent")
    if archive is not None and not await archive.add_command(sent):
        raise DispatchError(f"a command {command_id!r} to {bus} was sent before")
    heard_records: list[Heard] = []
    async with CommandChannel(settings, buses=[bus], prefix=prefix, name=name) as channel:
        await channel.send(bus, name, command, expires=expires, now=now)
        log.info("command_sent", bus=bus, command=name, id=command_id,
                 expires=utc_iso(expires.timestamp()))
        answers = await channel.wait({(bus, command_id)}, timeout_s, heard_records.append)
    if archive is not None:
        await archive_heard(archive, heard_records)
    result = answers.get((bus, command_id))
    if result is not None:
        return SendOutcome(sent, "accepted" if result.accepted else "rejected",
                           result.reason, result)
    if any((bus, command_id) in h.receipts for h in heard_records):
        return SendOutcome(sent, "delivered")
    return SendOutcome(sent, "pending")


async def command_statuses(archive: Archive, *, bus: str | None = None,
                           since: datetime | None = None, limit: int = 100,
                           clock: Clock | None = None) -> list[tuple[CommandStatus, CommandState]]:
    """The commands sent (newest first), each with its state as of now (``expired`` when
    the bus never answered and its expiry passed)."""
    now = datetime.fromtimestamp((clock or SystemClock()).now(), UTC)
    return [(c, c.state_at(now))
            for c in await archive.commands(bus=bus, since=since, limit=limit)]
