"""NMEA 0183 decoding (RMC, GGA, VTG): pure functions, text in, fixes out.

Every sentence must carry a valid checksum: a serial line without one cannot
tell a flipped bit from a position. Other talkers (GP, GN, GL, GA, BD) are
accepted alike; other sentence types are ignored.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass

from busd.errors import DecodeError
from drivers.gps.fix import KNOT_KMH, FixQuality, GpsFix

MAX_SENTENCE = 100  # the standard says 82; some receivers exceed it a little


def checked_fields(line: str) -> list[str]:
    """The comma-separated fields of a sentence whose checksum holds; DecodeError otherwise."""
    line = line.strip()
    if len(line) > MAX_SENTENCE:
        raise DecodeError("sentence too long")
    if not line.startswith("$"):
        raise DecodeError("no leading $")
    body, star, given = line[1:].partition("*")
    if not star:
        raise DecodeError("no checksum")
    try:
        expected = int(given, 16)
    except ValueError:
        raise DecodeError(f"bad checksum field {given!r}") from None
    if len(given) != 2:
        raise DecodeError(f"bad checksum field {given!r}")
    actual = 0
    for char in body.encode("ascii", "replace"):
        actual ^= char
    if actual != expected:
        raise DecodeError(f"checksum {given} != {actual:02X}")
    fields = body.split(",")
    if len(fields[0]) != 5 or not fields[0].isalnum():
        raise DecodeError(f"bad address {fields[0]!r}")
    return fields


def _float(text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DecodeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise DecodeError(f"not a finite number: {text!r}")
    return value


def _coord(value: str, hemisphere: str, degree_digits: int) -> float | None:
    """ddmm.mmmm / dddmm.mmmm with N/S/E/W into signed decimal degrees."""
    if not value:
        return None
    if hemisphere not in ("N", "S", "E", "W"):
        raise DecodeError(f"bad hemisphere {hemisphere!r}")
    number = _float(value)
    assert number is not None
    degrees = int(value[:degree_digits]) if value[:degree_digits].isdigit() else -1
    minutes = number - degrees * 100
    if degrees < 0 or not 0 <= minutes < 60:
        raise DecodeError(f"bad coordinate {value!r}")
    result = degrees + minutes / 60
    if result > (90 if degree_digits == 2 else 180):
        raise DecodeError(f"coordinate out of range {value!r}")
    return -result if hemisphere in ("S", "W") else result


def _time_of_day(text: str) -> float | None:
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit():
        raise DecodeError(f"bad time {text!r}")
    hh, mm, ss = int(text[0:2]), int(text[2:4]), _float(text[4:])
    if hh > 23 or mm > 59 or ss is None or not 0 <= ss < 61:
        raise DecodeError(f"bad time {text!r}")
    return hh * 3600 + mm * 60 + ss


def _date(text: str) -> int | None:
    """ddmmyy as UTC midnight epoch seconds (yy 80-99 is 19yy, as receivers mean it)."""
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise DecodeError(f"bad date {text!r}")
    day, month, yy = int(text[0:2]), int(text[2:4]), int(text[4:6])
    year = 1900 + yy if yy >= 80 else 2000 + yy
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise DecodeError(f"bad date {text!r}")
    return calendar.timegm((year, month, day, 0, 0, 0))


@dataclass(frozen=True, slots=True)
class Rmc:
    valid: bool
    time: float | None  # epoch seconds when the date is known
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    heading: float | None


@dataclass(frozen=True, slots=True)
class Gga:
    quality: int
    lat: float | None
    lon: float | None
    satellites: int | None
    hdop: float | None
    altitude: float | None


@dataclass(frozen=True, slots=True)
class Vtg:
    valid: bool
    heading: float | None
    speed_kmh: float | None


Sentence = Rmc | Gga | Vtg


def _field(fields: list[str], index: int) -> str:
    return fields[index] if index < len(fields) else ""


def parse_sentence(line: str) -> Sentence | None:
    """RMC/GGA/VTG as a dataclass, None for other (valid) sentences; DecodeError for garbage."""
    fields = checked_fields(line)
    kind = fields[0][2:]

    def f(index: int) -> str:
        return _field(fields, index)

    if kind == "RMC":
        if len(fields) < 10:
            raise DecodeError("short RMC")
        tod, day = _time_of_day(f(1)), _date(f(9))
        speed = _float(f(7))
        return Rmc(
            valid=f(2) == "A" and f(12) != "N",  # NMEA 2.3 mode N = data not valid
            time=day + tod if tod is not None and day is not None else None,
            lat=_coord(f(3), f(4), 2),
            lon=_coord(f(5), f(6), 3),
            speed_kmh=speed * KNOT_KMH if speed is not None else None,
            heading=_float(f(8)),
        )
    if kind == "GGA":
        if len(fields) < 10:
            raise DecodeError("short GGA")
        _time_of_day(f(1))
        quality = int(f(6)) if f(6).isdigit() else 0
        sats = int(f(7)) if f(7).isdigit() else None
        return Gga(
            quality=quality,
            lat=_coord(f(2), f(3), 2),
            lon=_coord(f(4), f(5), 3),
            satellites=sats,
            hdop=_float(f(8)),
            altitude=_float(f(9)),
        )
    if kind == "VTG":
        if len(fields) < 8:
            raise DecodeError("short VTG")
        return Vtg(valid=f(9) != "N", heading=_float(f(1)), speed_kmh=_float(f(7)))
    return None


class NmeaInterpreter:
    """Turns a stream of sentences into fixes, remembering what one sentence lacks.

    RMC carries date, time, position and velocity, so each valid RMC yields a
    fix; GGA says whether the fix is 3D (an altitude) and carries HDOP and
    satellites; VTG refines speed and heading. A receiver with RMC status V
    or GGA quality 0 has no fix, whatever else it says.
    """

    def __init__(self) -> None:
        self._gga_mode = 0  # mode from the last GGA, 0 = none seen

    def feed(self, sentence: Sentence) -> tuple[GpsFix | None, FixQuality | None]:
        if isinstance(sentence, Gga):
            quality = FixQuality(hdop=sentence.hdop, satellites=sentence.satellites)
            if sentence.quality == 0 or sentence.lat is None or sentence.lon is None:
                self._gga_mode = 1
                return GpsFix(mode=1), quality
            self._gga_mode = 3 if sentence.altitude is not None else 2
            # GGA has no date, so no time and no velocity: the RMC fix carries those.
            return GpsFix(mode=self._gga_mode, lat=sentence.lat, lon=sentence.lon), quality
        if isinstance(sentence, Rmc):
            if not sentence.valid or sentence.lat is None or sentence.lon is None:
                return GpsFix(mode=1), None
            mode = self._gga_mode if self._gga_mode >= 2 else 2
            return GpsFix(
                mode=mode, time=sentence.time, lat=sentence.lat, lon=sentence.lon,
                speed_kmh=sentence.speed_kmh, heading=sentence.heading,
            ), None
        # VTG: velocity only; without a position it is not a fix on its own.
        return None, None


def vtg_velocity(sentence: Vtg) -> tuple[float | None, float | None]:
    """(speed km/h, heading) of a valid VTG, else (None, None)."""
    if not sentence.valid:
        return None, None
    return sentence.speed_kmh, sentence.heading
