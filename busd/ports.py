"""Ports the logic in busd/ depends on; telemetry/ (and test fakes) implement them.

The logic never imports aiomqtt or telemetry/: a tracker that finishes a leg
calls ``emitter.emit(LegCompleted(...))`` and does not care whether the record
goes to MQTT, a test list, or nowhere. Events are the typed models of
:mod:`busd.event_catalog`, never dicts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from busd.event_catalog import CommandDetail, DailyReport, Event, PlanDocument
from busd.plan import Plan

JsonObject = Mapping[str, Any]


class EventSink(Protocol):
    """Durable records for the office (everything that goes through the outbox).

    Each method returns once the record is committed to disk, with its ``seq``:
    from then on it survives a crash and reaches the office exactly once after
    de-duplication, or its loss is reported (``data_dropped``).
    """

    async def emit_event(self, event: Event) -> int:
        """An event for ``.../event/{event.kind}`` (visit_started, alert_raised, ...)."""
        ...

    async def emit_report(self, report: DailyReport) -> int:
        """A report for ``.../report/{report.kind}`` (``daily``)."""
        ...


class EventEmitter(Protocol):
    """Events and reports from code that must not wait (the tracker's state machine, rules).

    ``emit``/``report`` queue and return at once; the implementation hands them
    to the :class:`EventSink` in order and never drops one silently.
    """

    def emit(self, event: Event) -> None: ...

    def report(self, report: DailyReport) -> None: ...


class EventSubscriber(Protocol):
    """A part that follows another's events (the planner and the display follow the
    tracker's visits). ``on_event`` is called synchronously on the loop, in the order the
    events happen, after the event was queued for the office; it must not block or raise.
    """

    def on_event(self, event: Event) -> None: ...


class PlanPublisher(Protocol):
    """The active plan, published retained on ``.../plan`` (latest wins, kept across restarts)."""

    async def publish_plan(self, document: PlanDocument) -> None: ...


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """A handler's answer; ``reason`` must say exactly why when not accepted."""

    accepted: bool
    reason: str = ""
    detail: CommandDetail = field(default_factory=CommandDetail)

    @classmethod
    def accept(cls, **detail: Any) -> CommandOutcome:
        """``detail``: the fields of :class:`~busd.event_catalog.CommandDetail`."""
        return cls(True, "", CommandDetail.model_validate(detail))

    @classmethod
    def reject(cls, reason: str, **detail: Any) -> CommandOutcome:
        return cls(False, reason, CommandDetail.model_validate(detail))


# A command handler gets the already validated content of the command (for cmd/plan: the
# plan inside the envelope, whose id, version and date the dispatcher has checked).
CommandHandler = Callable[[JsonObject], Awaitable[CommandOutcome]]


class CommandRouter(Protocol):
    """Where logic registers its handlers for commands from the office (``.../cmd/{name}``).

    ``register("plan", handler)`` is how the planner takes ``cmd/plan``: the
    uplink has already checked JSON, size, schema, bus id, the plan's date
    (:func:`busd.plan.day_problem`: today or later) and that the version increases
    for that day; the handler gets the plan inside the command and decides the rest
    (the planner keeps a later day's plan until its day); its outcome is sent on
    ``cmd/result``. The version is remembered only when the handler accepts.
    """

    def register(self, name: str, handler: CommandHandler) -> None: ...


class PlanSource(Protocol):
    """The day's plan as the bus knows it at start-up (a file, a cached office plan)."""

    def plan_for(self, day: date) -> Plan | None: ...
