"""How long the broker keeps a command for a bus that is offline: its MQTT message expiry.

A plan is worth nothing after its day (:func:`office.dispatch.send.plan_expiry`); every other
command gets a default by its kind, which the sender may override (``busd office resend
--expiry``). Past it the broker drops the command, and the office's status reads ``expired``
for a command the bus never answered (:meth:`office.archive.commands.CommandStatus.state_at`),
instead of ``pending`` until the bus's session itself expires (days).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

HOUR: Final = 3600.0

# Per command kind, in seconds. A resend asks for records the bus keeps for days, but the
# office asks again from its own gaps, so a day-old ask is stale; a ping tests the link now.
DEFAULT_EXPIRY_S: Final[Mapping[str, float]] = MappingProxyType({
    "resend": 24 * HOUR,
    "ping": 0.25 * HOUR,
})
# A kind not listed above (a new command): one day, never the bus's whole session.
FALLBACK_EXPIRY_S: Final = 24 * HOUR


def default_expiry_s(command: str) -> float:
    return DEFAULT_EXPIRY_S.get(command, FALLBACK_EXPIRY_S)


def command_expiry(command: str, now: datetime, seconds: float | None = None) -> datetime:
    """When a ``command`` sent at ``now`` expires: ``seconds`` after it, or its kind's
    default. Raises ValueError for a non-positive interval."""
    interval = default_expiry_s(command) if seconds is None else seconds
    if not interval > 0:
        raise ValueError(f"expiry: must be more than 0 s, not {interval:g}")
    return now + timedelta(seconds=interval)
