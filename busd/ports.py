"""Ports: the small interfaces busd's logic publishes and reads through.

Implementations live at the edges (telemetry/ for MQTT and the outbox,
simple files for the plan); tests use capture fakes. Keep each Protocol to
what its consumers need.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

from busd.plan import Plan


class PlanSink(Protocol):
    """Receives the retained ``plan`` document (the active plan, projections, any proposal)."""

    async def publish_plan(self, document: Mapping[str, Any]) -> None: ...


class EventSink(Protocol):
    """Receives named events (``plan_changed``, ``plan_accepted``, …) for ``event/{kind}``.

    Events must not be dropped silently: an implementation queues durably
    (the outbox) or raises.
    """

    async def emit(self, kind: str, payload: Mapping[str, Any]) -> None: ...


class PlanSource(Protocol):
    """The day's plan as the bus knows it at start-up (a file, a cached office plan)."""

    def plan_for(self, day: date) -> Plan | None: ...
