"""The alert board: which problem situations are active, and how many were raised.

Rules (the lift moving while not stowed, later low SOC, charger faults…)
raise and clear alerts here; the board logs every change, keeps the active
ones for the display and the status topic, counts them for the monitoring
indicators ("problem situations"), and forwards each change as an event.

Active alerts outlive a restart (busd/alerts_memory.py keeps them on disk): a
restarted daemon *inherits* them. A rule that raises an inherited alert again
confirms it (no second ``alert_raised``); one still unconfirmed after a grace
period is cleared, so the office never keeps an alert whose cause is gone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import structlog

from busd.clock import Clock, utc_iso
from busd.event_catalog import AlertCleared, AlertDetails, AlertRaised

log = structlog.get_logger("busd.alerts")

EventForward = Callable[[AlertRaised | AlertCleared], None]


@dataclass(frozen=True)
class Alert:
    kind: str
    message: str
    raised_at: float
    details: Mapping[str, object] = field(default_factory=dict)


class AlertBoard:
    """Implements the rules' AlertSink protocol."""

    def __init__(
        self, *, clock: Clock, forward: EventForward | None = None,
        timezone: str = "Europe/Riga",
    ) -> None:
        self._clock = clock
        self._forward = forward
        self._zone = ZoneInfo(timezone)
        self.active: dict[str, Alert] = {}
        self.inherited: set[str] = set()  # from before a restart, not confirmed yet
        self.raised_count = 0
        self._per_day: Counter[date] = Counter()
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called after every raise and clear."""
        self._listeners.append(listener)

    def inherit(self, alerts: Mapping[str, Alert]) -> None:
        """Alerts that were active when the previous run stopped (no events: the office
        has them already)."""
        for kind, alert in alerts.items():
            if kind not in self.active:
                self.active[kind] = alert
                self.inherited.add(kind)
        if alerts:
            log.info("alerts_inherited", kinds=sorted(alerts))
            self._changed()

    def expire_inherited(self) -> None:
        """Clear the inherited alerts no rule has raised again since the restart."""
        for kind in sorted(self.inherited):
            self.clear_alert(kind, details={"reason": "not raised again after a restart"})

    def count_for_day(self, day: date) -> int:
        """Alerts raised on a local day: the "problem situations" indicator."""
        return self._per_day[day]

    def raise_alert(self, kind: str, *, message: str, details: Mapping[str, object]) -> None:
        if kind in self.active:
            # Already raised: one alert per situation, not one per update. An alert
            # inherited from before a restart is the same situation, now confirmed.
            self.inherited.discard(kind)
            return
        alert = Alert(kind, message, self._clock.now(), dict(details))
        self.active[kind] = alert
        self.raised_count += 1
        self._per_day[datetime.fromtimestamp(alert.raised_at, self._zone).date()] += 1
        log.warning("alert_raised", kind=kind, message=message, **dict(details))
        self._emit(AlertRaised(alert=kind, message=message, raised_at=utc_iso(alert.raised_at),
                               details=alert_details(details)))
        self._changed()

    def clear_alert(self, kind: str, *, details: Mapping[str, object]) -> None:
        alert = self.active.pop(kind, None)
        self.inherited.discard(kind)
        if alert is None:
            return
        duration = self._clock.now() - alert.raised_at
        log.info("alert_cleared", kind=kind, after_s=round(duration, 1))
        self._emit(AlertCleared(alert=kind, raised_at=utc_iso(alert.raised_at),
                                duration_s=round(duration, 1), details=alert_details(details)))
        self._changed()

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def _emit(self, event: AlertRaised | AlertCleared) -> None:
        if self._forward is not None:
            self._forward(event)


def alert_details(details: Mapping[str, object]) -> AlertDetails:
    """A rule's details as the event carries them: scalars; anything else as text, and a
    number that is not finite (not JSON) as None."""
    out: AlertDetails = {}
    for key, value in details.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
        elif value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = str(value)
    return out
