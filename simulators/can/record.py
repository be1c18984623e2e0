"""Write a synthetic CAN recording from the model, as fast as the CPU allows.

Used to make the committed fixture (``tests/fixtures/can_sim_drive.log``) and
benchmark input: only synthetic recordings go into the repository, never real
captures (they can carry a VIN and people's positions). Deterministic for a
given configuration, seed and start time.
"""

from __future__ import annotations

from pathlib import Path

import can

from busd.config import CanSimulatorConfig
from simulators.can.duty import DutyCycle, InputSource
from simulators.can.frames import FrameScheduler, load_dbc
from simulators.can.model import VehicleModel

DEFAULT_START = 1_767_254_400.0  # 2026-01-01T08:00Z, a morning on the road


def record_log(
    path: str | Path,
    config: CanSimulatorConfig,
    *,
    duration_s: float,
    start: float = DEFAULT_START,
    tick_s: float = 0.01,
    seed: int = 1,
    inputs: InputSource | None = None,
    channel: str = "can0",
) -> int:
    """Simulate ``duration_s`` seconds and write every frame to ``path``; returns the count.

    The format follows the suffix, as python-can's :class:`can.Logger` decides
    (``.log`` candump, ``.asc``, ``.blf``, ``.csv`` …).
    """
    model = VehicleModel(
        capacity_kwh=config.capacity_kwh,
        initial_soc=config.initial_soc,
        outside_temp_c=config.outside_temp_c,
    )
    source = inputs or DutyCycle(
        cruise_kmh=config.cruise_kmh,
        drive_s=config.drive_s,
        stop_s=config.stop_s,
        outside_temp_c=config.outside_temp_c,
    )
    scheduler = FrameScheduler(
        load_dbc(config.dbc), model.state, total_fps=config.fps, seed=seed, epoch=start
    )
    count = 0
    writer = can.Logger(str(path))
    try:
        steps = round(duration_s / tick_s)
        for i in range(steps + 1):
            elapsed = i * tick_s
            if i:
                model.step(tick_s, source(elapsed - tick_s))
            for frame in scheduler.due(elapsed):
                frame.channel = channel
                writer.on_message_received(frame)
                count += 1
    finally:
        writer.stop()
    return count
