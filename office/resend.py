"""``busd office resend``: ask each bus again for the records the archive lacks.

The gaps come from the archive (:meth:`office.archive.Archive.gaps`, SQL over what is stored).
Each gap becomes one ``cmd/resend`` (split into ranges of at most ``MAX_RESEND_RANGE`` seqs) to
its bus; the bus answers on ``cmd/result``, and publishes the records it still keeps on their
topics under ``backlog/``, where the ingest workers (or ``busd office``) archive them like any
other record: the archive drops a record it already has by ``(bus, seq)``, so asking twice is
harmless.

This command asks and reports; it archives no record of its own, only each ask in the archive's
``commands`` table and the answers it heard (as the ingest would). It sends through
:class:`office.dispatch.channel.CommandChannel` (a clean session of its own, subscribed to the
buses' ``cmd/result`` before it sends), each ask expiring after ``--expiry`` (24 h: the broker
drops it for a bus that stays offline, and its status reads expired), and waits for every answer
at most ``timeout_s``. A bus that is offline answers later (the command waits in its persistent
session): the records then arrive in the archive without this command.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog

from busd.clock import utc_iso
from busd.event_catalog import CommandResult
from office.archive import Archive, Gap, open_archive
from office.archive.commands import SentCommand
from office.dispatch.channel import CommandChannel, Heard, archive_heard
from office.dispatch.expiry import command_expiry
from telemetry import mqtt
from telemetry.models import MAX_RESEND_RANGE, CmdResend

log = structlog.get_logger("office.resend")


@dataclass(frozen=True, slots=True)
class ResendAsk:
    """One ``cmd/resend``: a bus, a seq range, the command's id."""

    bus: str
    first: int
    last: int
    id: str


@dataclass(frozen=True, slots=True)
class ResendAnswer:
    """What the bus said to one :class:`ResendAsk`; ``result`` is None when it did not answer
    in time."""

    ask: ResendAsk
    result: CommandResult | None


def asks_for(gaps: list[Gap], *, token: str) -> list[ResendAsk]:
    """One ask per gap, split into ranges the bus accepts; ids unique to this run."""
    out: list[ResendAsk] = []
    for gap in gaps:
        for first, last in _chunks(gap.first, gap.last):
            out.append(ResendAsk(gap.bus, first, last, f"resend-{token}-{first}-{last}"))
    return out


def _chunks(first: int, last: int) -> Iterator[tuple[int, int]]:
    while first <= last:
        end = min(last, first + MAX_RESEND_RANGE - 1)
        yield first, end
        first = end + 1


async def resend_gaps(
    *,
    settings: mqtt.BrokerSettings,
    archive_url: str,
    bus: str | None,
    day: date | None,
    tz: str,
    prefix: str,
    timeout_s: float,
    connect_timeout_s: float = 10.0,
    expiry_s: float | None = None,
) -> list[ResendAnswer]:
    """Ask for every gap of ``bus`` (every bus when None) on ``day`` (every day when None).

    Each ask is recorded in the archive's commands table (pending until its bus answers) and
    expires ``expiry_s`` after it is sent (None: the resend default, 24 h)."""
    async with open_archive(archive_url, tz=tz, connect_timeout_s=connect_timeout_s) as archive:
        gaps = await archive.gaps(bus=bus, day=day)
        asks = asks_for(gaps, token=secrets.token_hex(4))
        if not asks:
            return []
        return await ask_resends(settings, asks, prefix=prefix, timeout_s=timeout_s,
                                 archive=archive, expiry_s=expiry_s)


async def ask_resends(settings: mqtt.BrokerSettings, asks: list[ResendAsk], *, prefix: str,
                      timeout_s: float, archive: Archive | None = None,
                      expiry_s: float | None = None) -> list[ResendAnswer]:
    """Send ``asks`` (each recorded in ``archive``, expiring ``expiry_s`` after now: None,
    the resend default) and wait at most ``timeout_s`` for their answers."""
    heard: list[Heard] = []
    async with CommandChannel(settings, buses=(a.bus for a in asks), prefix=prefix,
                              name="resend") as channel:
        now = datetime.now(UTC)
        expires = command_expiry("resend", now, expiry_s)
        for ask in asks:
            command = CmdResend(bus=ask.bus, ts=utc_iso(now.timestamp()), id=ask.id,
                                first_seq=ask.first, last_seq=ask.last)
            if archive is not None:
                await archive.add_command(SentCommand(bus=ask.bus, id=ask.id, command="resend",
                                                      sent=now, expires=expires))
            await channel.send(ask.bus, "resend", command, expires=expires, now=now)
            log.info("resend_asked", bus=ask.bus, first_seq=ask.first, last_seq=ask.last,
                     id=ask.id)
        answers = await channel.wait({(a.bus, a.id) for a in asks}, timeout_s, heard.append)
    if archive is not None:
        await archive_heard(archive, heard)
    return [ResendAnswer(a, answers.get((a.bus, a.id))) for a in asks]


def format_answers(answers: list[ResendAnswer], *, as_json: bool = False,
                   timeout_s: float = 0.0) -> str:
    if as_json:
        return "\n".join(json.dumps(_answer_json(a), separators=(",", ":")) for a in answers)
    if not answers:
        return "no gaps: nothing to ask for"
    lines = []
    for a in answers:
        head = f"{a.ask.bus:<10} {a.ask.first:>10}-{a.ask.last:<10}"
        r = a.result
        if r is None:
            lines.append(f"{head} no answer within {timeout_s:g} s (the bus may be offline; "
                         "it answers when it connects)")
            continue
        d = r.detail
        missing = ", ".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in d.missing or [])
        if (d.missing_records or 0) > len(d.missing or []) and d.missing:
            missing += " …"
        if r.accepted:
            parts = [f"resent {d.resent or 0}"]
            if d.pending:
                parts.append(f"not yet sent {d.pending}")
            if d.missing_records:
                parts.append(f"no longer on the bus {d.missing_records}: {missing}")
        else:
            parts = [f"refused: {r.reason}"] + ([f"missing {missing}"] if missing else [])
        lines.append(f"{head} " + "; ".join(parts))
    return "\n".join(lines)


def _answer_json(a: ResendAnswer) -> dict[str, Any]:
    return {"bus": a.ask.bus, "first": a.ask.first, "last": a.ask.last, "id": a.ask.id,
            "answered": a.result is not None,
            "result": None if a.result is None else a.result.model_dump(mode="json")}
