"""The driver's display: a web page served by the daemon.

The composition root builds a :class:`DisplayServer` from the config's
``display`` section, the vehicle state, the clock, the alert board, the
supervisor's health table and, when it has them, adapters of the planner,
uplink and monitoring store to the ports in :mod:`busd.display.ports`.
"""

from busd.display.ports import (
    ClientsCounter,
    NoVisit,
    PlanPort,
    PlanView,
    Proposal,
    StopLine,
    StopStatus,
    UnknownChoice,
    UplinkPort,
    UplinkStatus,
    VisitCount,
)
from busd.display.server import DisplayError, DisplayServer

__all__ = [
    "ClientsCounter", "DisplayError", "DisplayServer", "NoVisit", "PlanPort", "PlanView",
    "Proposal", "StopLine", "StopStatus", "UnknownChoice", "UplinkPort", "UplinkStatus",
    "VisitCount",
]
