"""Small ports the logic in busd/ publishes through; telemetry/ implements them."""

from __future__ import annotations

from typing import Any, Protocol


class EventSink(Protocol):
    """Where named events go (the uplink's outbox, a log, a test's capture list).

    ``emit`` must not block: an implementation queues and returns. Events are
    durable records for the office; an implementation never drops one silently.
    """

    def emit(self, kind: str, payload: dict[str, Any]) -> None: ...
