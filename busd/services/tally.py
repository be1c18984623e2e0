"""One visit's services by type and time by activity: pure values, no I/O.

A :class:`VisitTally` is what the staff page changes and the store keeps:
counts per service type (numbers only, never who), the activity going on
now and since when, and the seconds of each activity already closed. Every
change returns a new tally, so a write that fails leaves the old one intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


def _frozen(values: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True)
class VisitTally:
    """The services counted and the activity time of one visit (the tracker's visit id)."""

    visit_id: str
    day: str  # the visit's local operating day, YYYY-MM-DD
    place_id: str | None
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    activity_s: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    activity: str | None = None  # the activity going on now
    since_ts: float | None = None  # when it began (UTC epoch s)

    @property
    def total(self) -> int:
        """Clients served at the visit: every type together (the old single counter)."""
        return sum(self.counts.values())

    def counted(self, service: str, delta: int) -> VisitTally:
        """``delta`` (+1/-1) more of ``service``; never below zero."""
        counts = dict(self.counts)
        counts[service] = max(0, counts.get(service, 0) + delta)
        return replace(self, counts=MappingProxyType(counts))

    def switched(self, activity: str | None, now: float) -> VisitTally:
        """The current activity closed at ``now`` and ``activity`` begun (None: none)."""
        closed = self.closed(now)
        return replace(closed, activity=activity, since_ts=None if activity is None else now)

    def closed(self, now: float) -> VisitTally:
        """The current activity's time added to its total; no activity goes on after."""
        if self.activity is None or self.since_ts is None:
            return replace(self, activity=None, since_ts=None)
        seconds = dict(self.activity_s)
        seconds[self.activity] = seconds.get(self.activity, 0.0) + max(0.0, now - self.since_ts)
        return replace(self, activity_s=_frozen(seconds), activity=None, since_ts=None)

    def activity_min(self, now: float) -> dict[str, float]:
        """Minutes per activity, the one going on counted up to ``now``."""
        seconds = dict(self.closed(now).activity_s)
        return {name: round(s / 60.0, 2) for name, s in seconds.items()}
