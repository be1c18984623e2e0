"""Where the simulated bus is: along a route of waypoints, or wherever a callback says.

Positions are computed on a local flat-earth approximation, which is exact
to centimetres over the few tens of kilometres of a village route.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from busd.plan import EARTH_RADIUS_M, haversine_m


@dataclass(frozen=True, slots=True)
class SimPosition:
    lat: float
    lon: float
    speed_kmh: float = 0.0
    heading: float = 0.0


class PositionSource(Protocol):
    def position(self, elapsed_s: float) -> SimPosition:
        """True position ``elapsed_s`` simulated seconds after the simulator started."""
        ...


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between (lat, lon) pairs: the same formula busd uses."""
    return haversine_m(a[0], a[1], b[0], b[1])


def bearing_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return math.degrees(math.atan2(y, x)) % 360


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """(lat, lon) moved by metres north and east."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


class Route:
    """Drive through waypoints at a constant speed; stand at the last one (or loop)."""

    def __init__(
        self, *, waypoints: Sequence[tuple[float, float]], speed_kmh: float, loop: bool = False
    ) -> None:
        if not waypoints:
            raise ValueError("a route needs at least one waypoint")
        if speed_kmh <= 0:
            raise ValueError("speed_kmh must be positive")
        self._points = list(waypoints)
        if loop and len(self._points) > 1:
            self._points.append(self._points[0])
        self._speed_mps = speed_kmh / 3.6
        self._loop = loop and len(self._points) > 1
        pairs = zip(self._points, self._points[1:], strict=False)
        self._legs = [distance_m(a, b) for a, b in pairs]
        self.length_m = sum(self._legs)

    def position(self, elapsed_s: float) -> SimPosition:
        return self.at_distance(max(0.0, elapsed_s) * self._speed_mps, self._speed_mps * 3.6)

    def at_distance(self, travelled_m: float, speed_kmh: float) -> SimPosition:
        """Where the route is after ``travelled_m`` metres, moving at ``speed_kmh``."""
        travelled = max(0.0, travelled_m)
        if self._loop and self.length_m > 0:
            travelled %= self.length_m
        for (a, b), leg in zip(zip(self._points, self._points[1:], strict=False), self._legs,
                               strict=True):
            if travelled < leg:
                f = travelled / leg
                # Linear in lat/lon is fine for legs of a few km at this latitude.
                return SimPosition(
                    lat=a[0] + (b[0] - a[0]) * f, lon=a[1] + (b[1] - a[1]) * f,
                    speed_kmh=speed_kmh, heading=bearing_deg(a, b),
                )
            travelled -= leg
        last = self._points[-1]
        return SimPosition(lat=last[0], lon=last[1])


class OdometerRoute:
    """Positions along a route as far as another model's odometer says.

    Couples the GPS simulator to the CAN simulator's vehicle model, so the
    position moves exactly when and as fast as the simulated bus drives.
    """

    def __init__(self, route: Route, odometer_km: Callable[[], float],
                 speed_kmh: Callable[[], float]) -> None:
        self._route = route
        self._odometer_km = odometer_km
        self._speed_kmh = speed_kmh
        self._start_km: float | None = None

    def position(self, elapsed_s: float) -> SimPosition:
        odometer = self._odometer_km()
        if self._start_km is None:
            self._start_km = odometer
        return self._route.at_distance((odometer - self._start_km) * 1000.0, self._speed_kmh())


class CallbackPosition:
    """Positions from elsewhere (a scenario's vehicle model)."""

    def __init__(self, fn: Callable[[float], SimPosition]) -> None:
        self._fn = fn

    def position(self, elapsed_s: float) -> SimPosition:
        return self._fn(elapsed_s)


class PositionNoise:
    """Receiver error: a first-order Gauss-Markov process per axis, sigma ~2-3 m.

    White noise would jump metres every second; a real receiver's error
    wanders slowly (correlation time ~30-60 s), which is what makes parked
    jitter plausible for the tracker's filters.
    """

    def __init__(self, *, sigma_m: float, tau_s: float = 40.0,
                 rng: random.Random | None = None) -> None:
        self._sigma = sigma_m
        self._tau = tau_s
        self._rng = rng or random.Random()
        self._n = self._rng.gauss(0, sigma_m) if sigma_m > 0 else 0.0
        self._e = self._rng.gauss(0, sigma_m) if sigma_m > 0 else 0.0

    def step(self, dt_s: float) -> tuple[float, float]:
        """(north, east) error in metres after ``dt_s`` more seconds."""
        if self._sigma <= 0:
            return 0.0, 0.0
        a = math.exp(-max(0.0, dt_s) / self._tau)
        k = self._sigma * math.sqrt(1 - a * a)
        self._n = a * self._n + k * self._rng.gauss(0, 1)
        self._e = a * self._e + k * self._rng.gauss(0, 1)
        return self._n, self._e
