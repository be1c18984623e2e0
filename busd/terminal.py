"""Component: the live state on the terminal, for ``busd run`` on a TTY.

Signals are shown with their unit and age; a stale one is dimmed and marked,
never shown as a current value. Component health sits beside them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from busd.clock import Clock, utc_iso
from busd.state import SignalView, VehicleState
from busd.supervisor import ComponentContext, ComponentHealth, Phase

_PHASE_STYLE = {
    Phase.RUNNING: "green", Phase.DEGRADED: "yellow", Phase.BACKOFF: "red",
    Phase.STARTING: "cyan", Phase.STOPPED: "dim", Phase.FINISHED: "dim",
}


def format_value(view: SignalView) -> str:
    value = view.value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.6f}" if view.unit == "deg" else f"{value:,.2f}"
    return str(value)


def render(
    state: VehicleState, health: Mapping[str, ComponentHealth], clock: Clock, bus_id: str
) -> Group:
    signals = Table(title=f"busd {bus_id} — {utc_iso(clock.now())}", expand=True)
    for column in ("signal", "value", "unit", "age"):
        signals.add_column(column, justify="right" if column in ("value", "age") else "left")
    for name, view in state.snapshot().items():
        if view.value is None:
            continue
        age = "" if view.age_s is None else f"{view.age_s:.1f} s"
        style = "dim" if view.stale else ""
        value = format_value(view) + (" (stale)" if view.stale else "")
        signals.add_row(name, value, view.unit, age, style=style)
    parts = Table(title="components", expand=True)
    for column in ("component", "phase", "restarts", "detail"):
        parts.add_column(column)
    for name, h in health.items():
        detail = h.reason or h.last_error
        counters = ", ".join(f"{k}={v}" for k, v in list(h.counters.items())[:6])
        parts.add_row(
            name, Text(h.phase.value, style=_PHASE_STYLE.get(h.phase, "")), str(h.restarts),
            "; ".join(x for x in (detail, counters) if x),
        )
    return Group(signals, parts)


class TerminalView:
    name = "terminal"
    critical = False

    def __init__(
        self,
        *,
        state: VehicleState,
        health: Callable[[], Mapping[str, ComponentHealth]],
        clock: Clock,
        bus_id: str,
        console: Console | None = None,
        refresh_s: float = 0.5,
    ) -> None:
        self._state = state
        self._health = health
        self._clock = clock
        self._bus_id = bus_id
        self._console = console or Console()
        self._refresh_s = refresh_s

    def _render(self) -> Group:
        return render(self._state, self._health(), self._clock, self._bus_id)

    async def run(self, ctx: ComponentContext) -> None:
        with Live(self._render(), console=self._console, auto_refresh=False) as live:
            ctx.ready()
            while True:
                # Paced for human eyes in real time, whatever speed the
                # (possibly accelerated) clock of the data runs at.
                await asyncio.sleep(self._refresh_s)
                live.update(self._render(), refresh=True)
                ctx.beat()
