"""In-memory stand-ins for the planner, the uplink and the monitoring store.

They implement the display's ports (busd/display/ports.py) and record what the
display asked of them, so a test checks the effect, not the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from busd.display.ports import (
    NoVisit,
    PlanView,
    Proposal,
    StopLine,
    StopStatus,
    UnknownChoice,
    UplinkStatus,
    VisitCount,
)


def livani_day(now: float) -> PlanView:
    """The winter day of PRODUCT.md at the third stop, with a pending proposal."""
    return PlanView(
        stops=[
            StopLine("jersika", "Jersika", StopStatus.DONE, 90),
            StopLine("rozupe", "Rožupe", StopStatus.DONE, 60),
            StopLine("rudzati", "Rudzāti", StopStatus.NOW, 120),
            StopLine("turki", "Turki", StopStatus.NEXT, 75, eta=now + 47 * 60),
            StopLine("sutri", "Sutri", StopStatus.LATER, 90, eta=now + 3 * 3600),
        ],
        reserve_soc=15.0,
        depot_soc=12.5,
        proposal=Proposal(
            id="p-3",
            reasons={
                "lv": ["Apkure patērē vairāk, nekā plānots",
                       "Saīsināt Turkus līdz 45 min un izlaist Sutrus"],
                "lt": ["Šildymas naudoja daugiau nei planuota",
                       "Sutrumpinti Turkus iki 45 min ir praleisti Sutrus"],
                "en": ["Heating uses more than planned",
                       "Shorten Turki to 45 min and skip Sutri"],
            },
        ),
    )


@dataclass
class FakePlanner:
    """A PlanPort: a fixed view; acknowledging applies the proposal."""

    plan: PlanView | None
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def view(self) -> PlanView | None:
        return self.plan

    async def acknowledge(self, proposal_id: str) -> bool:
        if self.plan is None or self.plan.proposal is None or self.plan.proposal.id != proposal_id:
            self.refused.append(proposal_id)
            return False
        self.acknowledged.append(proposal_id)
        stops = [
            replace(s, planned_min=45) if s.id == "turki"
            else replace(s, status=StopStatus.SKIPPED, eta=None) if s.id == "sutri"
            else s
            for s in self.plan.stops
        ]
        self.plan = replace(self.plan, stops=stops, depot_soc=21.0, proposal=None)
        return True


@dataclass
class FakeUplink:
    connected: bool = True
    backlog: int = 0

    def status(self) -> UplinkStatus:
        return UplinkStatus(self.connected, self.backlog)


@dataclass
class FakeClientsCounter:
    """A ClientsCounter: counts per visit id and service type, as the store keeps them."""

    visit_id: str | None = "rudzati-1"
    counts: dict[str, int] = field(default_factory=dict)  # visit id -> every type's total
    by_type: dict[str, int] = field(default_factory=dict)  # the current visit's, per type
    activity: str | None = None
    types: tuple[str, ...] = ("municipal", "social", "notary", "orphans_court", "library",
                              "other")
    activities: tuple[str, ...] = ("serving", "consultation", "setup", "waiting")

    def current(self) -> VisitCount | None:
        if self.visit_id is None:
            return None
        return VisitCount(self.visit_id, self.counts.get(self.visit_id, 0),
                          counts=dict(self.by_type), activity=self.activity,
                          place_name="Rudzāti")

    def day_total(self) -> int:
        return sum(self.counts.values())

    async def increment(self, delta: int, service: str) -> int:
        if self.visit_id is None:
            raise NoVisit()
        if service not in self.types:
            raise UnknownChoice(service)
        count = max(0, self.by_type.get(service, 0) + delta)
        self.counts[self.visit_id] = self.counts.get(self.visit_id, 0) + count - self.by_type.get(
            service, 0)
        self.by_type[service] = count
        return count

    async def switch(self, activity: str | None) -> str | None:
        if self.visit_id is None:
            raise NoVisit()
        if activity is not None and activity not in self.activities:
            raise UnknownChoice(activity)
        self.activity = activity
        return activity
