"""Replay of a recorded CAN log at the recorded pace, on the injected clock.

Any format python-can's :class:`can.LogReader` knows (candump ``.log``,
``.asc``, ``.blf``, ``.csv``, ``.trc`` …). The file is read in bounded batches
in a worker thread so a big recording neither blocks the event loop nor sits
in memory whole. Frames keep their recorded order and relative timing; with
an accelerated clock the pace scales with it, and when the output cannot keep
up the replay falls behind (counted as ``late``) rather than dropping frames.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import structlog

from busd.clock import Clock
from busd.errors import DeviceError
from simulators.can.outputs import FrameOutput

log = structlog.get_logger("simulators.can.replay")

BATCH = 500  # frames read per worker-thread call: bounds memory and loop stalls
LATE_S = 0.05  # a frame sent this much after its time counts as late


class ReplayError(DeviceError):
    """The recording cannot be read."""


def _take(frames: Iterator[can.Message], n: int) -> list[can.Message]:
    return list(itertools.islice(frames, n))


class Replayer:
    """Sends the frames of ``path`` to an output, paced on ``clock``."""

    def __init__(self, path: str | Path, clock: Clock, *, loop: bool = False) -> None:
        self.path = Path(path)
        self.clock = clock
        self.loop = loop
        self.counters: dict[str, int] = {"replayed": 0, "passes": 0, "late": 0, "error_frames": 0}

    async def run(self, output: FrameOutput, beat: Callable[[], None] | None = None) -> None:
        """Replay once (or forever with ``loop``); returns when a single pass ends."""
        if not self.path.is_file():
            raise ReplayError(f"replay file not found: {self.path}")
        start = self.clock.monotonic()
        offset = 0.0  # where the current pass starts, relative to ``start``
        while True:
            span, count = await self._one_pass(output, start + offset, beat)
            self.counters["passes"] += 1
            if count == 0:
                raise ReplayError(f"replay file has no frames: {self.path}")
            log.info("replay_pass_done", path=str(self.path), frames=count, span_s=round(span, 3))
            if not self.loop:
                output.flush()
                return
            # The next pass starts one average frame gap after this one ended.
            offset += span + (span / (count - 1) if count > 1 else 0.001)

    async def _one_pass(
        self, output: FrameOutput, t0: float, beat: Callable[[], None] | None
    ) -> tuple[float, int]:
        try:
            reader = can.LogReader(self.path)
        except (OSError, ValueError) as err:
            raise ReplayError(f"cannot read {self.path}: {err}") from err
        first_ts: float | None = None
        rel = 0.0
        count = 0
        frames = iter(reader)
        try:
            while True:
                try:
                    batch = await asyncio.to_thread(_take, frames, BATCH)
                except (ValueError, OSError, IndexError) as err:
                    raise ReplayError(
                        f"bad recording {self.path} after {count} frames: {err}"
                    ) from err
                if not batch:
                    break
                for msg in batch:
                    if msg.is_error_frame:
                        self.counters["error_frames"] += 1
                        continue
                    if first_ts is None:
                        first_ts = msg.timestamp
                    rel = max(rel, msg.timestamp - first_ts)  # never go back in time
                    delay = t0 + rel - self.clock.monotonic()
                    if delay > 0:
                        output.flush()
                        await self.clock.sleep(delay)
                    elif delay < -LATE_S:
                        self.counters["late"] += 1
                    output.send(_fresh(msg, self.clock.now()))
                    count += 1
                    self.counters["replayed"] += 1
                if beat is not None:
                    beat()
                output.flush()
        finally:
            reader.stop()
        return rel, count


def _fresh(msg: can.Message, now: float) -> can.Message:
    """The recorded frame as if it were on the bus now (no stale timestamp or channel)."""
    return can.Message(
        timestamp=now,
        arbitration_id=msg.arbitration_id,
        is_extended_id=msg.is_extended_id,
        is_remote_frame=msg.is_remote_frame,
        is_fd=msg.is_fd,
        bitrate_switch=msg.bitrate_switch,
        dlc=msg.dlc,
        data=msg.data,
    )
