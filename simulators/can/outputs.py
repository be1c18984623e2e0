"""Where the simulator's frames go: a python-can bus, or an slcan pty.

Both offer the same small port (:class:`FrameOutput`), so the model runner and
the replayer do not care which one they feed. Neither ever blocks: a frame
that cannot go out now is dropped and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import can
import structlog

from busd.errors import DeviceError
from simulators.can.slcan import SlcanPty

log = structlog.get_logger("simulators.can.outputs")


class FrameOutput(Protocol):
    counters: dict[str, int]

    def open(self) -> None:
        """Start (inside the running event loop)."""
        ...

    def send(self, frame: can.Message) -> bool:
        """Send or queue ``frame`` without blocking; False when it was dropped."""
        ...

    def flush(self) -> None:
        """Push anything queued, without blocking."""
        ...

    def close(self) -> None: ...


class BusOutput:
    """Frames onto a python-can bus (``virtual`` in tests, ``socketcan`` on a vcan).

    Opens the bus itself from ``interface``/``channel``, or uses an already
    open ``bus`` (which it then leaves open on :meth:`close`: its owner shuts it).
    """

    def __init__(
        self,
        *,
        interface: str = "virtual",
        channel: str = "busd-sim",
        options: dict[str, Any] | None = None,
        bus: can.BusABC | None = None,
    ) -> None:
        self.interface = interface
        self.channel = channel
        self._options = dict(options or {})
        self._bus = bus
        self._owned = bus is None
        self.counters: dict[str, int] = {"frames_sent": 0, "dropped_full": 0}

    def open(self) -> None:
        if self._bus is not None:
            return
        try:
            self._bus = can.Bus(interface=self.interface, channel=self.channel, **self._options)
        except (can.CanError, ValueError, OSError, ImportError) as err:
            raise DeviceError(
                f"cannot open CAN bus {self.interface}:{self.channel}: {err}"
            ) from err
        log.info("sim_bus_open", interface=self.interface, channel=self.channel)

    def send(self, frame: can.Message) -> bool:
        if self._bus is None:
            raise DeviceError("BusOutput.send before open")
        try:
            # timeout=0: a full transmit queue drops the frame instead of stalling the loop.
            self._bus.send(frame, timeout=0)
        except can.CanError:
            self.counters["dropped_full"] += 1
            return False
        self.counters["frames_sent"] += 1
        return True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if self._bus is not None and self._owned:
            self._bus.shutdown()
            self._bus = None


class SlcanOutput:
    """Frames to a daemon in another process through an slcan adapter on a pty."""

    def __init__(self, link: str | Path, *, buffer_bytes: int = 64 * 1024) -> None:
        self.pty = SlcanPty(link, buffer_bytes=buffer_bytes)
        self.counters = self.pty.counters

    def open(self) -> None:
        try:
            self.pty.open()
        except OSError as err:
            raise DeviceError(f"cannot create slcan pty at {self.pty.link}: {err}") from err

    def send(self, frame: can.Message) -> bool:
        return self.pty.send(frame)

    def flush(self) -> None:
        self.pty.flush()

    def close(self) -> None:
        self.pty.close()
