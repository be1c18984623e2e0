"""``busd status``'s view of the office link, implemented on the real uplink and outbox.

Read on the event loop when an operator asks; it only looks at values in memory.
"""

from __future__ import annotations

from busd.clock import utc_iso
from busd.status import OfficeContact
from telemetry.outbox import Outbox
from telemetry.uplink import Uplink


class UplinkContact:
    """Implements :class:`busd.status.OfficeContactPort`."""

    def __init__(self, *, uplink: Uplink, outbox: Outbox) -> None:
        self._uplink = uplink
        self._outbox = outbox

    def contact(self) -> OfficeContact:
        connected = self._uplink.connected
        # connected_since is when the last connection began; it counts only while it lasts.
        since = self._uplink.connected_since if connected else None
        ack = self._uplink.last_ack
        return OfficeContact(
            connected=connected,
            connected_since=utc_iso(since) if since is not None else None,
            last_ack=utc_iso(ack) if ack is not None else None,
            backlog=self._outbox.rows,
        )
