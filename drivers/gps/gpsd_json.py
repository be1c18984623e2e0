"""gpsd's JSON reports as pydantic models: pure decoding, bytes in, reports out.

Only TPV (time-position-velocity) and SKY (satellites, dilution) matter to
busd; every other class (VERSION, DEVICES, WATCH, GST, ATT, ...) is returned
as ``None`` so the caller can count it as ignored. Anything that is not a
JSON object with a ``class`` raises :class:`DecodeError`.
See https://gpsd.gitlab.io/gpsd/gpsd_json.html for the fields.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from busd.errors import DecodeError
from drivers.gps.fix import MPS_KMH, FixQuality, GpsFix


class _Report(BaseModel):
    # gpsd adds fields between releases; unknown ones are not an error.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class Tpv(_Report):
    cls: Literal["TPV"] = Field(alias="class")
    device: str | None = None
    mode: int = Field(default=0, ge=0, le=3)
    time: datetime | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    alt: float | None = None
    speed: float | None = Field(default=None, ge=0, description="m/s")
    track: float | None = Field(default=None, ge=0, le=360)
    eph: float | None = None

    def to_fix(self) -> GpsFix:
        return GpsFix(
            mode=self.mode,
            time=self.time.timestamp() if self.time is not None else None,
            lat=self.lat,
            lon=self.lon,
            speed_kmh=self.speed * MPS_KMH if self.speed is not None else None,
            heading=self.track,
        )


class SkySatellite(_Report):
    PRN: int | None = None
    used: bool = False


class Sky(_Report):
    cls: Literal["SKY"] = Field(alias="class")
    device: str | None = None
    hdop: float | None = Field(default=None, ge=0)
    nSat: int | None = Field(default=None, ge=0)  # gpsd's name
    uSat: int | None = Field(default=None, ge=0)  # gpsd's name
    satellites: list[SkySatellite] = Field(default_factory=list, max_length=256)

    def to_quality(self) -> FixQuality:
        used = self.uSat
        if used is None and self.satellites:
            used = sum(1 for s in self.satellites if s.used)
        return FixQuality(hdop=self.hdop, satellites=used)


Report = Tpv | Sky


def parse_report(line: bytes | str) -> Report | None:
    """One line from gpsd: a TPV or SKY, None for other classes; DecodeError when malformed."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise DecodeError(f"not JSON: {err}") from err
    if not isinstance(data, dict):
        raise DecodeError("not a JSON object")
    cls = data.get("class")
    if not isinstance(cls, str):
        raise DecodeError("no class")
    try:
        if cls == "TPV":
            return Tpv.model_validate(data)
        if cls == "SKY":
            return Sky.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise DecodeError(
            f"bad {cls}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from err
    return None
