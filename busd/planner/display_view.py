"""The planner as the driver's display sees it (implements busd.display.ports.PlanPort)."""

from __future__ import annotations

from datetime import datetime

from busd.display.ports import PlanView, Proposal, StopLine, StopStatus
from busd.planner.component import Planner


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class PlannerDisplayView:
    def __init__(self, planner: Planner) -> None:
        self._planner = planner

    def view(self) -> PlanView | None:
        core = self._planner.core
        plan = core.plan
        if plan is None:
            return None
        planned = {item.id: item for item in core.itinerary if item.kind == "stop"}
        etas = {}
        depot_soc = None
        if core.projection is not None:
            etas = {p.id: _epoch(p.eta) for p in core.projection.points if p.kind == "stop"}
            depot_soc = core.projection.depot_soc
        done, at = core.progress.done, core.progress.at
        next_id = next((item.id for item in core.itinerary
                        if item.kind == "stop" and item.id not in done and item.id != at), None)
        lines: list[StopLine] = []
        for stop in plan.stops:
            if stop.id in done:
                status = StopStatus.DONE
            elif stop.id == at:
                status = StopStatus.NOW
            elif stop.id not in planned:
                status = StopStatus.SKIPPED
            elif stop.id == next_id:
                status = StopStatus.NEXT
            else:
                status = StopStatus.LATER
            minutes = planned[stop.id].minutes if stop.id in planned else stop.planned_min
            eta = etas.get(stop.id) if status in (StopStatus.NEXT, StopStatus.LATER) else None
            lines.append(StopLine(stop.id, stop.name, status, minutes, eta))
        # Done, then here, then the itinerary's order (the one to drive), then skipped.
        order = {item.id: n for n, item in enumerate(core.itinerary)}
        group = {StopStatus.DONE: 0, StopStatus.NOW: 1, StopStatus.NEXT: 2,
                 StopStatus.LATER: 2, StopStatus.SKIPPED: 3}
        lines.sort(key=lambda line: (group[line.status], order.get(line.id, 0)))
        proposal = None
        if core.pending is not None:
            reasons: dict[str, list[str]] = {}
            for reason in core.pending.reasons:
                for lang, text in reason.text.items():
                    reasons.setdefault(lang, []).append(text)
            proposal = Proposal(core.pending.id, reasons, core.pending.emergency)
        names = {s.id: s.name for s in (*plan.stops, *plan.chargers)}
        proposal_at = None if core.proposal_at is None else names.get(core.proposal_at,
                                                                      core.proposal_at)
        return PlanView(stops=lines, reserve_soc=self._planner.config.reserve_pct,
                        depot_soc=depot_soc, proposal=proposal, proposal_at=proposal_at)

    async def acknowledge(self, proposal_id: str) -> bool:
        result = await self._planner.acknowledge(proposal_id)
        return result.accepted
