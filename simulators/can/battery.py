"""The traction battery's electrical behaviour: open-circuit voltage, sag, cells.

Pure functions and constants, no state: :mod:`simulators.can.model` keeps the
state and calls these. The numbers describe a plausible 108-cell NMC pack
(about 360-450 V) of a 6 t electric minibus; they are not any maker's data.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

# Per-cell open-circuit voltage against SOC (%), a typical NMC shape: steep at
# both ends, a gentle plateau in the middle.
_OCV_SOC = (0.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0)
_OCV_CELL_V = (3.30, 3.45, 3.55, 3.63, 3.68, 3.73, 3.78, 3.85, 3.92, 4.00, 4.08, 4.18)


@dataclass(frozen=True, slots=True)
class PackParams:
    cells_series: int = 108
    resistance_ohm: float = 0.06  # whole pack at 25 °C
    max_charge_kw: float = 60.0  # what the BMS accepts below the taper
    taper_start_soc: float = 80.0  # constant power up to here, then decreasing
    taper_floor: float = 0.05  # fraction of full power the taper ends at, near 100 %
    soh_pct: float = 97.0
    thermal_mass_j_per_k: float = 7.0e5
    thermal_time_constant_s: float = 7200.0
    managed_min_temp_c: float = 12.0  # the thermal management keeps cells above this


def cell_ocv(soc: float) -> float:
    """Open-circuit voltage of one cell at ``soc`` %, linearly interpolated."""
    soc = min(100.0, max(0.0, soc))
    i = bisect.bisect_right(_OCV_SOC, soc)
    if i >= len(_OCV_SOC):
        return _OCV_CELL_V[-1]
    s0, s1 = _OCV_SOC[i - 1], _OCV_SOC[i]
    v0, v1 = _OCV_CELL_V[i - 1], _OCV_CELL_V[i]
    return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


def pack_ocv(soc: float, params: PackParams) -> float:
    return cell_ocv(soc) * params.cells_series


def pack_resistance(temp_c: float, params: PackParams) -> float:
    """Cold cells have a higher internal resistance: +2 %/K below 25 °C."""
    return params.resistance_ohm * max(1.0, 1.0 + 0.02 * (25.0 - temp_c))


def current_for_power(power_w: float, ocv: float, resistance: float) -> float:
    """Pack current (A, positive = discharge) that delivers ``power_w`` at the terminals.

    Solves ``P = (OCV - I*R) * I`` for the physical (smaller) root. A demand
    beyond what the pack can give is clamped at the maximum-power point.
    """
    if power_w == 0.0:
        return 0.0
    disc = ocv * ocv - 4.0 * resistance * power_w
    if disc < 0.0:
        return ocv / (2.0 * resistance)
    return (ocv - math.sqrt(disc)) / (2.0 * resistance)


def charge_taper(soc: float, params: PackParams) -> float:
    """Fraction of full charging power the BMS accepts at ``soc`` (1 up to the taper start)."""
    if soc <= params.taper_start_soc:
        return 1.0
    span = 100.0 - params.taper_start_soc
    frac = (100.0 - soc) / span
    return max(params.taper_floor, min(1.0, frac))


def cell_spread(soc: float, current_a: float) -> tuple[float, float]:
    """(below, above) the mean cell voltage for the weakest and strongest cell.

    Imbalance grows towards empty and with current, as on a real pack.
    """
    spread = 0.004 + 0.012 * (1.0 - soc / 100.0) + 0.00004 * abs(current_a)
    return 0.6 * spread, 0.4 * spread
