"""NMEA 0183 sentences as a receiver writes them (RMC, GGA, VTG).

Written independently of drivers/gps/nmea.py on purpose: a shared helper
would hide the same bug on both sides of the wire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

KNOTS_PER_KMH = 1 / 1.852


def _sentence(body: str) -> bytes:
    checksum = 0
    for byte in body.encode("ascii"):
        checksum ^= byte
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


def _lat(value: float) -> tuple[str, str]:
    hemi = "N" if value >= 0 else "S"
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60
    return f"{degrees:02d}{minutes:09.6f}", hemi


def _lon(value: float) -> tuple[str, str]:
    hemi = "E" if value >= 0 else "W"
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60
    return f"{degrees:03d}{minutes:09.6f}", hemi


@dataclass(frozen=True, slots=True)
class ReceiverOutput:
    """What the receiver knows at one epoch; ``fix`` False means it has none."""

    utc: float
    fix: bool
    lat: float = 0.0
    lon: float = 0.0
    speed_kmh: float = 0.0
    heading: float = 0.0
    altitude_m: float = 95.0
    satellites: int = 9
    hdop: float = 0.9


def _constellation(count: int) -> list[tuple[int, int, int, int]]:
    """(PRN, elevation, azimuth, SNR) of a plausible, fixed sky."""
    return [(2 + 3 * i, 15 + (37 * i) % 70, (47 * i) % 360, 30 + (7 * i) % 18)
            for i in range(count)]


def _satellite_sentences(out: ReceiverOutput, talker: str) -> list[bytes]:
    """GSA (fix mode, DOPs, PRNs used) and GSV (sky view): what gpsd builds SKY from."""
    sky = _constellation(max(out.satellites, 0))
    used = [str(prn) for prn, *_ in sky[:12]] if out.fix else []
    used += [""] * (12 - len(used))
    mode = 3 if out.fix else 1
    dops = f"{out.hdop * 1.6:.2f},{out.hdop:.2f},{out.hdop * 1.3:.2f}" if out.fix else ",,"
    sentences = [_sentence(f"{talker}GSA,A,{mode},{','.join(used)},{dops}")]
    groups = [sky[i:i + 4] for i in range(0, len(sky), 4)] or [[]]
    for n, group in enumerate(groups, start=1):
        sats = "".join(f",{prn:02d},{el:02d},{az:03d},{snr:02d}" for prn, el, az, snr in group)
        sentences.append(_sentence(f"{talker}GSV,{len(groups)},{n},{len(sky):02d}{sats}"))
    return sentences


def epoch_sentences(
    out: ReceiverOutput, talker: str = "GP", *, with_satellites: bool = True
) -> list[bytes]:
    """One epoch's RMC, GGA and VTG (plus GSA/GSV), in a typical receiver's order."""
    extra = _satellite_sentences(out, talker) if with_satellites else []
    tm = time.gmtime(out.utc)
    hundredths = round((out.utc % 1) * 100) % 100
    hms = f"{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}.{hundredths:02d}"
    dmy = f"{tm.tm_mday:02d}{tm.tm_mon:02d}{tm.tm_year % 100:02d}"
    if not out.fix:
        return [
            _sentence(f"{talker}RMC,{hms},V,,,,,,,{dmy},,,N"),
            _sentence(f"{talker}GGA,{hms},,,,,0,{out.satellites:02d},99.99,,,,,,"),
            _sentence(f"{talker}VTG,,T,,M,,N,,K,N"),
            *extra,
        ]
    lat, ns = _lat(out.lat)
    lon, ew = _lon(out.lon)
    knots = out.speed_kmh * KNOTS_PER_KMH
    course = f"{out.heading % 360:.2f}"
    return [
        _sentence(f"{talker}RMC,{hms},A,{lat},{ns},{lon},{ew},{knots:.3f},{course},{dmy},,,A"),
        _sentence(
            f"{talker}GGA,{hms},{lat},{ns},{lon},{ew},1,{out.satellites:02d},{out.hdop:.2f},"
            f"{out.altitude_m:.1f},M,23.1,M,,"
        ),
        _sentence(f"{talker}VTG,{course},T,,M,{knots:.3f},N,{out.speed_kmh:.3f},K,A"),
        *extra,
    ]
