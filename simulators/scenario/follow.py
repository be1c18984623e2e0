"""The simulated driver and the planner: accept proposals, drive the accepted itinerary.

:class:`PlanFollower` reads the daemon's planner state (``<data_dir>/planner/
state.json``, the retained ``plan`` document the daemon also publishes) as the
driver would read the display. A pending proposal is accepted
``driver.accept_after_s`` simulated seconds after it first appeared, through
the same request files ``busd plan ack`` drops (the daemon answers in
``ack/<id>.result``). The follower is the :class:`~simulators.scenario.driver.
DayDriver`'s itinerary: the next place is the first item of the *active*
itinerary (not the pending one) the bus has not served yet, so an accepted
shortened visit ends earlier, a skipped stop is not driven to and an added
charging stop is driven to. Items are matched to the places the bus has left,
in order and by count, not by id alone: a second charging stop at a charger
already used today is a new item, driven to like any other.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from busd.clock import Clock
from busd.planner.cli import request_ack
from simulators.scenario.driver import Target, static_itinerary
from simulators.scenario.model import LoadedScenario

log = structlog.get_logger("simulators.scenario")


@dataclass
class Acked:
    proposal_id: str
    at: float  # simulated time the request was dropped
    result: dict[str, Any] | None = None


def next_target(
    loaded: LoadedScenario, items: Sequence[tuple[str, str, float]], served: Iterable[str]
) -> Target:
    """The first (kind, id, minutes) item of the active itinerary the bus has not left yet,
    matched to the places left in order and by count; the depot when nothing is left."""
    plan = loaded.plan
    stops = {s.id: s for s in plan.stops}
    left = Counter(served)
    for kind, place_id, minutes in items:
        if left[place_id] > 0:
            left[place_id] -= 1
            continue
        if kind == "charge":
            return Target(place_id, "charger", minutes)
        stop = stops.get(place_id)
        earliest = plan.at(stop.window.earliest) if stop and stop.window else None
        return Target(place_id, "stop", minutes, earliest)
    return Target(plan.depot.id, "depot")


class PlanFollower:
    """Itinerary source for the simulated bus, driven by the daemon's planner."""

    def __init__(self, loaded: LoadedScenario, clock: Clock, planner_dir: Path,
                 served: Callable[[], list[str]] | None = None) -> None:
        self.loaded = loaded
        # Places the bus has left today, in order (stops and chargers); default: none.
        self.served = served or (lambda: [])
        self.clock = clock
        self.folder = planner_dir
        self._static = static_itinerary(loaded)
        self.itinerary: list[dict[str, Any]] | None = None
        self.pending_seen: dict[str, float] = {}  # proposal id → simulated time first seen
        self.acked: dict[str, Acked] = {}
        self.changes = 0  # times the active itinerary changed after the first

    # --- itinerary (DayDriver hook) ----------------------------------------------------

    def __call__(self, done: frozenset[str], now: float) -> Target:
        if self.itinerary is None:
            return self._static(done, now)
        items = [(str(i["kind"]), str(i["id"]), float(i["minutes"])) for i in self.itinerary]
        return next_target(self.loaded, items, self.served())

    # --- the loop ---------------------------------------------------------------------

    def _read(self) -> dict[str, Any] | None:
        try:
            text = (self.folder / "state.json").read_text(encoding="utf-8")
            doc: dict[str, Any] = json.loads(text)
        except (FileNotFoundError, ValueError):
            return None  # not written yet, or caught mid-replace
        return doc

    def poll(self) -> None:
        """One look at the planner's state: follow the itinerary, accept when it is time."""
        doc = self._read()
        now = self.clock.now()
        if doc is not None:
            items = [dict(i) for i in doc.get("itinerary") or []]
            if items and items != self.itinerary:
                if self.itinerary is not None:
                    self.changes += 1
                    log.info("scenario_itinerary", items=[(i["id"], i["minutes"]) for i in items])
                self.itinerary = items
            pending = doc.get("pending")
            if pending:
                pid = str(pending["id"])
                first = self.pending_seen.setdefault(pid, now)
                accept_after = self.loaded.scenario.driver.accept_after_s
                if pid not in self.acked and now - first >= accept_after:
                    log.info("scenario_driver_accepts", proposal=pid, kind=pending.get("kind"))
                    request_ack(self.folder, pid)
                    self.acked[pid] = Acked(pid, now)
        for acked in self.acked.values():
            if acked.result is None:
                path = self.folder / "ack" / f"{acked.proposal_id}.result"
                try:
                    acked.result = json.loads(path.read_text(encoding="utf-8"))
                except (FileNotFoundError, ValueError):
                    continue
                log.info("scenario_ack_result", **acked.result)

    async def run(self, interval_s: float = 0.05) -> None:
        while True:
            await asyncio.to_thread(self.poll)
            await asyncio.sleep(interval_s)
