"""The component every state alert rule shares: watch signals, judge, raise or clear.

A rule is a pure verdict over signal views (tested densely on its own); this
base class runs it on every change of the watched signals and tells the
:class:`AlertSink` only on a change, so one situation is one alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar

from busd.state import SignalView, VehicleState
from busd.supervisor import ComponentContext


class AlertSink(Protocol):
    """Where alerts go (the alert board). Must not block."""

    def raise_alert(self, kind: str, *, message: str, details: Mapping[str, object]) -> None: ...

    def clear_alert(self, kind: str, *, details: Mapping[str, object]) -> None: ...


class Verdict(Protocol):
    @property
    def active(self) -> bool: ...

    @property
    def details(self) -> dict[str, object]: ...


V = TypeVar("V", bound=Verdict)


class StateAlertRule(Generic[V]):
    """Subclasses set ``kind`` and ``watched`` and implement ``judge`` and ``message``."""

    critical = False
    kind: str
    watched: tuple[str, ...]

    def __init__(self, *, state: VehicleState, sink: AlertSink, name: str) -> None:
        self.name = name
        self._state = state
        self._sink = sink
        self.active = False

    def judge(self, views: Mapping[str, SignalView]) -> V:
        """The rule: whether the alert should be active, given ``self.active``."""
        raise NotImplementedError

    def message(self, verdict: V) -> str:
        raise NotImplementedError

    def evaluate(self) -> V:
        """Apply the rule to the current state and notify the sink on a change."""
        verdict = self.judge(self._state.snapshot(self.watched))
        if verdict.active and not self.active:
            self._sink.raise_alert(self.kind, message=self.message(verdict),
                                   details=verdict.details)
        elif self.active and not verdict.active:
            self._sink.clear_alert(self.kind, details=verdict.details)
        self.active = verdict.active
        return verdict

    async def run(self, ctx: ComponentContext) -> None:
        watcher = self._state.watch(self.watched)
        ctx.ready()
        while True:
            verdict = self.evaluate()
            ctx.counters["active"] = int(verdict.active)
            await watcher.changed()
            ctx.beat()
