"""What the display needs from the planner, the uplink and the monitoring store.

Small ports, so the display is built and tested against in-memory fakes and
the composition root adapts the real parts to them. Every read here is called
from the event loop about once a second while a screen is connected: it must
be cheap and must not block (return a cached view; never query SQLite here).
The two writes are async and may do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class StopStatus(StrEnum):
    DONE = "done"  # visited (or passed) today
    NOW = "now"  # the bus is on site
    NEXT = "next"  # where the bus goes next
    LATER = "later"  # still planned, after the next one
    SKIPPED = "skipped"  # dropped from today's plan


@dataclass(frozen=True, slots=True)
class StopLine:
    """One stop of the day as the driver sees it."""

    id: str
    name: str
    status: StopStatus
    planned_min: float  # minutes on site in the active plan (after any shortening)
    eta: float | None = None  # arrival, wall time (UTC epoch s); None when unknown or past


@dataclass(frozen=True, slots=True)
class Proposal:
    """A plan change waiting for the driver's acknowledgement.

    ``reasons`` maps a language code (lv, lt, en) to the lines to show; the
    page uses its language, else lv, else the first one given.
    """

    id: str
    reasons: Mapping[str, Sequence[str]]
    emergency: bool = False  # the depot cannot be reached without it


@dataclass(frozen=True, slots=True)
class PlanView:
    """The planner's state for the display."""

    stops: Sequence[StopLine]
    reserve_soc: float  # % the bus must arrive at the depot with
    depot_soc: float | None = None  # projected SOC at the depot, %; None when unknown
    proposal: Proposal | None = None
    # The name of the place ahead where the planner will propose a change: on the road, a
    # change that leaves that place as it is waits for the arrival (the leg is driven
    # either way), so the band may show red with no proposal yet.
    proposal_at: str | None = None

    @property
    def next_stop(self) -> StopLine | None:
        return next((s for s in self.stops if s.status is StopStatus.NEXT), None)

    @property
    def margin(self) -> float | None:
        """Projected depot SOC above the reserve, percentage points (negative: below)."""
        return None if self.depot_soc is None else self.depot_soc - self.reserve_soc


class PlanPort(Protocol):
    def view(self) -> PlanView | None:
        """The current plan view; None when there is no plan for today. Cheap, non-blocking."""
        ...

    async def acknowledge(self, proposal_id: str) -> bool:
        """The driver accepted ``proposal_id``; False when it is no longer the pending one."""
        ...


@dataclass(frozen=True, slots=True)
class UplinkStatus:
    connected: bool  # the MQTT session to the office is up
    backlog: int  # records in the outbox waiting for the broker


class UplinkPort(Protocol):
    def status(self) -> UplinkStatus:
        """Cheap, non-blocking."""
        ...


class NoVisit(Exception):
    """Raised by :class:`ClientsCounter` writes when the bus is not on a visit at a site."""


class UnknownChoice(ValueError):
    """A service type or activity the config does not name."""


@dataclass(frozen=True, slots=True)
class VisitCount:
    """The current visit's services: counts per type, the activity and its minutes."""

    visit_id: str
    count: int  # every type together
    counts: Mapping[str, int] = field(default_factory=dict)
    activity: str | None = None
    activities_min: Mapping[str, float] = field(default_factory=dict)
    place_name: str | None = None


class ClientsCounter(Protocol):
    """Clients served per service type at the current visit, and the activity on site:
    counts only, never personal data (busd/services/counter.py)."""

    def current(self) -> VisitCount | None:
        """The current visit's counts; None when the bus is not on a visit. Cheap, non-blocking."""
        ...

    def day_total(self) -> int:
        """Clients served today, every visit and type together. Cheap, non-blocking."""
        ...

    async def increment(self, delta: int, service: str) -> int:
        """Add ``delta`` (+1 or -1) to ``service``'s count at the current visit, store it,
        return the new count. Never below zero. Raises :class:`NoVisit` when the bus is not
        on a visit, :class:`UnknownChoice` for a type the config does not name.
        """
        ...

    async def switch(self, activity: str | None) -> str | None:
        """The activity on site from now (None: none), stored. Raises :class:`NoVisit`,
        :class:`UnknownChoice` as :meth:`increment` does."""
        ...
