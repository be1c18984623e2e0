r"""Commands from the office: validation, the handler registry, and answers for cmd/result.

Every command is checked in this order, and the first failure is the answer:
size, UTF-8 JSON object (with no lone surrogate escape such as ``"\ud800"``: it
decodes to text that is not Unicode and cannot be stored or sent), schema name,
fields (pydantic, extra fields refused), bus id, then whether it was answered
before (:mod:`telemetry.command_answers`: a duplicate gets the same answer and
is not run again), then per command (plan: the plan inside is a valid plan
whose date and version are the command's, not for a day that has passed in the
plan's time zone, :func:`busd.plan.day_problem`, as the planner checks it, and
its version is above the last accepted for its day; resend: a range of at most
``MAX_RESEND_RANGE`` seqs, first not above last). The planner's handler gets
the plan inside the command, not the envelope, and keeps a plan for a later day
until its day; a resend is the outbox's (:class:`ResendSource`).

Nothing a command contains can raise out of :meth:`handle`: the answer's
``id`` is always valid UTF-8 (a lone surrogate in it is written as its
``\uXXXX`` escape, so the office can still match it), and a handler gets
``handler_timeout_s`` before the command is rejected, so a bad or slow command
never blocks the receive loop for long.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ValidationError

from busd.clock import Clock, utc_iso
from busd.event_catalog import CommandReceived, CommandResult
from busd.plan import day_problem
from busd.ports import CommandHandler, CommandOutcome
from telemetry.command_answers import CommandAnswers, MetaStore, command_key, plan_key
from telemetry.models import (
    SCHEMA_CMD_PING,
    SCHEMA_CMD_PLAN,
    SCHEMA_CMD_RESEND,
    CmdPing,
    CmdPlan,
    CmdResend,
)
from telemetry.outbox import ResendPlan, ResendRefused

log = structlog.get_logger("telemetry.commands")

Receipt = Callable[[CommandReceived], Awaitable[None]]

PLAN_VERSION_KEY = "cmd.plan.version"  # the last version accepted, whatever its day


def plan_version_key(day: date) -> str:
    """The last version accepted for the plan of ``day``: versions increase per day."""
    return f"{PLAN_VERSION_KEY}.{day.isoformat()}"


__all__ = ["PLAN_VERSION_KEY", "CommandDispatcher", "CommandRejected", "MetaStore",
           "ResendSource", "plan_version_key"]


class ResendSource(Protocol):
    """Where acknowledged records are kept for cmd/resend (the outbox)."""

    async def request_resend(self, first_seq: int, last_seq: int) -> ResendPlan:
        """Queue the kept records of the range; raises ResendRefused when it cannot."""
        ...


class CommandRejected(Exception):
    """``transient``: the answer may differ next time (a handler that did not answer in
    time), so it is not remembered for a duplicate."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


_MODELS: dict[str, tuple[str, type[BaseModel]]] = {
    "ping": (SCHEMA_CMD_PING, CmdPing),
    "plan": (SCHEMA_CMD_PLAN, CmdPlan),
    "resend": (SCHEMA_CMD_RESEND, CmdResend),
}
# Answered by the uplink's own parts, never by a registered handler.
_BUILT_IN = ("ping", "resend")


def _printable_id(value: str) -> str:
    """The command's id for the answer: at most 64 characters, always valid UTF-8."""
    return value[:64].encode("utf-8", "backslashreplace").decode("utf-8")


def _pydantic_reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{where}: {e['msg']}")
    # A command that is fine but for the plan inside it: say it is the plan.
    in_plan = all(e["loc"][:1] == ("plan",) for e in err.errors())
    return ("invalid plan: " if in_plan else "invalid command: ") + "; ".join(parts)


class CommandDispatcher:
    """Implements :class:`busd.ports.CommandRouter`."""

    def __init__(
        self,
        *,
        bus_id: str,
        clock: Clock,
        store: MetaStore,
        resend: ResendSource | None = None,
        max_bytes: int = 256 * 1024,
        handler_timeout_s: float = 5.0,
    ) -> None:
        if max_bytes < 256:
            raise ValueError("max_bytes below 256 cannot hold any command")
        self._bus = bus_id
        self._clock = clock
        self._store = store
        self._resend_source = resend
        self._max_bytes = max_bytes
        self._timeout = handler_timeout_s
        self._handlers: dict[str, CommandHandler] = {}
        self._answers = CommandAnswers(store)
        self.counters = {"accepted": 0, "rejected": 0, "duplicates": 0}
        self._log = log.bind(component="commands", bus=bus_id)

    def register(self, name: str, handler: CommandHandler) -> None:
        if name not in _MODELS:
            raise ValueError(f"no command {name!r}; known: {sorted(_MODELS)}")
        if name in _BUILT_IN:
            raise ValueError(f"{name} is answered by the uplink itself")
        if name in self._handlers:
            raise ValueError(f"a handler for {name!r} is already registered")
        self._handlers[name] = handler

    @property
    def names(self) -> list[str]:
        return sorted(_MODELS)

    async def handle(self, name: str, payload: bytes, *,
                     received: Receipt | None = None) -> CommandResult:
        """Validate and run one command; always returns the answer for cmd/result.

        A command answered before (the same name and id, or a plan of the same day and
        version that was accepted) is not run again: it gets the answer it got then.
        ``received`` is given the receipt of a valid command new to this bus before it runs
        (the uplink keeps it for cmd/result: the office sees the command delivered)."""
        command_id: str | None = None
        keys: list[str] = []  # where this command's answer is remembered
        remember = True
        try:
            if name not in _MODELS:
                raise CommandRejected(f"unknown command {name!r}; known: {', '.join(_MODELS)}")
            if len(payload) > self._max_bytes:
                raise CommandRejected(
                    f"payload is {len(payload)} bytes, the limit is {self._max_bytes}")
            raw = self._parse(payload)
            if isinstance(raw.get("id"), str):
                command_id = _printable_id(raw["id"])
            self._check_unicode(raw)
            schema, model = _MODELS[name]
            if raw.get("schema") != schema:
                raise CommandRejected(f"schema must be {schema!r}, got {raw.get('schema')!r}")
            try:
                command = model.model_validate(raw)
            except ValidationError as err:
                raise CommandRejected(_pydantic_reason(err)) from None
            if command.bus != self._bus:  # type: ignore[attr-defined]
                raise CommandRejected(
                    f"addressed to bus {command.bus!r}, this is {self._bus!r}")  # type: ignore[attr-defined]
            keys.append(command_key(name, command.id))  # type: ignore[attr-defined]
            if isinstance(command, CmdPlan):
                keys.append(plan_key(command.date, command.version))
            kept = await self._answers.find(*keys)
            if kept is not None:
                self.counters["duplicates"] += 1
                self._log.info("command_duplicate", command=name, id=command_id,
                               accepted=kept.accepted)
                # The same answer, under this command's id (a plan sent again with a new id).
                return kept.model_copy(update={"id": command_id})
            if received is not None:
                await received(CommandReceived(command=name, id=command_id or ""))
            if isinstance(command, CmdPlan):
                outcome = await self._plan(command)
            elif isinstance(command, CmdResend):
                outcome = await self._resend(command)
            else:
                outcome = await self._ping()
        except CommandRejected as rej:
            outcome = CommandOutcome.reject(rej.reason)
            remember = not rej.transient
        except Exception as err:  # a handler's bug must not take the receive loop down
            self._log.exception("command_handler_failed", command=name)
            outcome = CommandOutcome.reject(f"internal error: {type(err).__name__}")
            remember = False
        self.counters["accepted" if outcome.accepted else "rejected"] += 1
        self._log.info("command_" + ("accepted" if outcome.accepted else "rejected"),
                       command=name, id=command_id, reason=outcome.reason)
        result = CommandResult(command=name if name in _MODELS else "?", id=command_id,
                               accepted=outcome.accepted, reason=outcome.reason,
                               detail=outcome.detail)
        if remember and keys:
            # A rejected plan may come again with the same version, corrected: only an
            # accepted one is remembered by its version.
            await self._answers.remember(result, *(keys if outcome.accepted else keys[:1]))
        return result

    @staticmethod
    def _parse(payload: bytes) -> dict[str, Any]:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CommandRejected(f"not UTF-8: {err.reason} at byte {err.start}") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise CommandRejected(f"not valid JSON: {err.msg} at line {err.lineno} "
                                  f"column {err.colno}") from None
        except (RecursionError, ValueError) as err:  # absurd nesting, 5000-digit integers
            raise CommandRejected(f"not acceptable JSON: {type(err).__name__}") from None
        if not isinstance(raw, dict):
            raise CommandRejected(f"not a JSON object but a {type(raw).__name__}")
        return raw

    @staticmethod
    def _check_unicode(raw: dict[str, Any]) -> None:
        # JSON may escape a lone surrogate ("\ud800"): it decodes, but to text that no
        # UTF-8 encoder takes, so storing or publishing it later would raise.
        try:
            json.dumps(raw, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            raise CommandRejected(
                f"not valid Unicode: a lone surrogate {err.object[err.start]!r} "
                "(escape \\ud800-\\udfff without its pair)") from None
        except (RecursionError, ValueError) as err:
            raise CommandRejected(f"not acceptable JSON: {type(err).__name__}") from None

    async def _ping(self) -> CommandOutcome:
        return CommandOutcome.accept(bus_ts=utc_iso(self._clock.now()))

    async def _resend(self, command: CmdResend) -> CommandOutcome:
        if self._resend_source is None:
            raise CommandRejected("this bus keeps no sent records to resend")
        first, last = command.first_seq, command.last_seq
        try:
            async with asyncio.timeout(self._timeout):
                plan = await self._resend_source.request_resend(first, last)
        except TimeoutError:
            raise CommandRejected(
                f"the outbox did not answer within {self._timeout:g} s", transient=True) from None
        except ResendRefused as err:
            raise CommandRejected(str(err)) from None
        detail = {"resent": plan.resent, "pending": plan.pending,
                  "missing": [list(r) for r in plan.missing],
                  "missing_records": plan.missing_records}
        if first > plan.last_made:
            return CommandOutcome.reject(
                f"seq {first}-{last} was never made: this bus's last record is "
                f"{plan.last_made}", **detail)
        if plan.resent == 0 and plan.pending == 0:
            return CommandOutcome.reject(
                f"seq {first}-{last} is no longer on the bus (acknowledged records are kept "
                "for outbox.keep_sent_days and at most outbox.keep_sent_mb)", **detail)
        return CommandOutcome.accept(**detail)

    async def _plan(self, command: CmdPlan) -> CommandOutcome:
        plan = command.plan  # validated with the command (busd.plan.Plan)
        if plan.date != command.date or plan.version != command.version:
            raise CommandRejected(
                f"the command is for {command.date} version {command.version}, "
                f"its plan for {plan.date} version {plan.version}")
        wrong_day = day_problem(plan, plan.local_date(self._clock.now()))
        if wrong_day is not None:
            raise CommandRejected(f"date: {wrong_day}")
        stored = await self._store.get_meta(plan_version_key(command.date))
        last = int(stored) if stored is not None else 0
        if command.version <= last:
            raise CommandRejected(
                f"version {command.version} is not above the version {last} accepted for "
                f"{command.date.isoformat()}")
        handler = self._handlers.get("plan")
        if handler is None:
            raise CommandRejected("no plan handler is registered on this bus", transient=True)
        try:
            async with asyncio.timeout(self._timeout):
                # The plan itself: the envelope (id, version, date) was checked above.
                outcome = await handler(command.plan.model_dump(mode="json"))
        except TimeoutError:
            raise CommandRejected(
                f"the plan handler did not answer within {self._timeout:g} s",
                transient=True) from None
        if outcome.accepted:
            # The planner has taken the plan (for today, or kept for its day): the version is
            # remembered even on a full disk (in memory until it is written), so the answer
            # is "accepted".
            await self._store.keep_meta(plan_version_key(command.date), str(command.version))
            await self._store.keep_meta(PLAN_VERSION_KEY, str(command.version))
            outcome = CommandOutcome(
                True, "", outcome.detail.model_copy(update={"version": command.version}))
        return outcome
