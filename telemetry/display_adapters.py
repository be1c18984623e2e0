"""The display's ports, implemented on the real uplink, outbox, tracker events and store.

Reads here run about once a second on the event loop, so they only look at
values in memory. The clients counter (per service type) is
:class:`busd.services.counter.ServiceCounter`.
"""

from __future__ import annotations

from busd.display.ports import UplinkStatus
from telemetry.outbox import Outbox
from telemetry.uplink import Uplink


class UplinkStatusAdapter:
    def __init__(self, *, uplink: Uplink, outbox: Outbox) -> None:
        self._uplink = uplink
        self._outbox = outbox

    def status(self) -> UplinkStatus:
        return UplinkStatus(connected=self._uplink.connected, backlog=self._outbox.rows)
