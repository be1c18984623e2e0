"""The built-in duty cycle for ``busd run`` demos: drive, stop, repeat.

A scenario file (later issues) replaces this with its own input source; the
simulator only needs something that maps elapsed simulated seconds to
:class:`~simulators.can.model.Inputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulators.can.model import Inputs, VehicleParams

InputSource = Callable[[float], Inputs]
"""Elapsed simulated seconds since the start → what the driver and weather do now."""


@dataclass(frozen=True, slots=True)
class DutyCycle:
    """Drive ``drive_s`` at ``cruise_kmh``, then stand ``stop_s`` with doors open
    and the wheelchair lift going out and back once; repeat forever.

    The target speed drops to 0 early enough that the bus has braked to a
    standstill when the stop begins; doors open a few seconds after that and
    close before departure, as a careful driver does.
    """

    cruise_kmh: float = 60.0
    drive_s: float = 900.0
    stop_s: float = 600.0
    outside_temp_c: float = -5.0
    hvac_on: bool = True
    decel_mps2: float = VehicleParams().decel_mps2

    def __call__(self, elapsed_s: float) -> Inputs:
        period = self.drive_s + self.stop_s
        t = elapsed_s % period
        if t < self.drive_s:
            braking_s = self.cruise_kmh / 3.6 / self.decel_mps2 + 1.0
            target = self.cruise_kmh if t < self.drive_s - braking_s else 0.0
            return Inputs(
                target_speed_kmh=target,
                outside_temp_c=self.outside_temp_c,
                hvac_on=self.hvac_on,
            )
        s = t - self.drive_s
        margin = min(5.0, 0.1 * self.stop_s)
        doors = margin <= s < self.stop_s - margin
        lift = 0.2 * self.stop_s <= s < 0.5 * self.stop_s
        return Inputs(
            target_speed_kmh=0.0,
            doors_open=doors,
            lift_out=lift,
            outside_temp_c=self.outside_temp_c,
            hvac_on=self.hvac_on,
        )


def constant(inputs: Inputs) -> InputSource:
    """An input source that always returns ``inputs`` (tests, a parked bus)."""
    return lambda _elapsed: inputs
