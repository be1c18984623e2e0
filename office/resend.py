"""``busd office resend``: ask each bus again for the records the archive lacks.

The gaps come from the archive (:meth:`office.archive.Archive.gaps`, SQL over what is stored).
Each gap becomes one ``cmd/resend`` (split into ranges of at most ``MAX_RESEND_RANGE`` seqs) to
its bus; the bus answers on ``cmd/result``, and publishes the records it still keeps on their
topics under ``backlog/``, where the ingest workers (or ``busd office``) archive them like any
other record: the archive drops a record it already has by ``(bus, seq)``, so asking twice is
harmless.

This command only asks and reports; it archives nothing itself. It connects with a clean session
and a client id of its own, subscribes to the buses' ``cmd/result`` before it sends, and waits
for every answer at most ``timeout_s``. A bus that is offline answers later (the command waits in
its persistent session): the records then arrive in the archive without this command.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from busd.clock import utc_iso
from busd.event_catalog import CommandResult
from office.archive import Gap, open_archive
from office.records import Topics, parse_records
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
) -> list[ResendAnswer]:
    """Ask for every gap of ``bus`` (every bus when None) on ``day`` (every day when None)."""
    async with open_archive(archive_url, tz=tz, connect_timeout_s=connect_timeout_s) as archive:
        gaps = await archive.gaps(bus=bus, day=day)
    asks = asks_for(gaps, token=secrets.token_hex(4))
    if not asks:
        return []
    return await _ask(settings, asks, prefix=prefix, timeout_s=timeout_s)


async def _ask(settings: mqtt.BrokerSettings, asks: list[ResendAsk], *, prefix: str,
               timeout_s: float) -> list[ResendAnswer]:
    topics = Topics(prefix)
    waiting = {(a.bus, a.id): a for a in asks}
    answers: dict[tuple[str, str], CommandResult] = {}
    protocol = mqtt.first_protocol(settings)
    client = mqtt.make_client(settings, identifier=f"busd-office-resend-{os.getpid()}-"
                              f"{secrets.token_hex(3)}", protocol=protocol)
    async with client:
        # Subscribed before anything is sent: the answer may come at once.
        for bus in sorted({a.bus for a in asks}):
            await client.subscribe(topics.command(bus, "result"), qos=1)
        now = utc_iso(datetime.now(UTC).timestamp())
        for ask in asks:
            command = CmdResend(bus=ask.bus, ts=now, id=ask.id, first_seq=ask.first,
                                last_seq=ask.last)
            await client.publish(topics.command(ask.bus, "resend"),
                                 command.model_dump_json(by_alias=True).encode(), qos=1)
            log.info("resend_asked", bus=ask.bus, first_seq=ask.first, last_seq=ask.last,
                     id=ask.id)
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    for key, result in _results(topics, str(message.topic), payload):
                        if key in waiting:
                            answers[key] = result
                    if len(answers) == len(waiting):
                        break
        except TimeoutError:
            log.warning("resend_unanswered", unanswered=len(waiting) - len(answers))
    return [ResendAnswer(a, answers.get((a.bus, a.id))) for a in asks]


def _results(topics: Topics, topic: str, payload: bytes) -> list[tuple[tuple[str, str],
                                                                        CommandResult]]:
    """The resend answers in one ``cmd/result`` message (a single record or a batch)."""
    parsed = parse_records(topics, topic, payload, datetime.now(UTC))
    out = []
    for record in parsed.records:
        try:
            result = CommandResult.model_validate(record.data)
        except ValidationError:
            continue  # not ours to judge: the archive's readers count it
        if result.command == "resend" and result.id is not None:
            out.append(((record.bus, result.id), result))
    return out


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
