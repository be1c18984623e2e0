"""Pure GPS decoding: NMEA sentences, gpsd JSON reports, the time check."""

from __future__ import annotations

import calendar
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from busd.errors import DecodeError
from drivers.gps.fix import TimeOffsetCheck, fix_label
from drivers.gps.gpsd_json import Sky, Tpv, parse_report
from drivers.gps.nmea import Gga, NmeaInterpreter, Rmc, Vtg, checked_fields, parse_sentence
from simulators.gps.nmea_out import ReceiverOutput, epoch_sentences
from simulators.gps.route import PositionNoise, Route, distance_m

RMC = "$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*62"
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"


def test_textbook_sentences() -> None:
    rmc = parse_sentence(RMC)
    assert isinstance(rmc, Rmc) and rmc.valid
    assert rmc.lat == pytest.approx(-(37 + 51.65 / 60))
    assert rmc.lon == pytest.approx(145 + 7.36 / 60)
    assert rmc.time == calendar.timegm((1998, 9, 13, 8, 18, 36))
    gga = parse_sentence(GGA)
    assert isinstance(gga, Gga)
    assert (gga.quality, gga.satellites, gga.hdop, gga.altitude) == (1, 8, 0.9, 545.4)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*63", "checksum"),
        ("$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E", "no checksum"),
        ("GPRMC,081836,A*00", "no leading"),
        ("$GPRMC,,,*zz", "bad checksum"),
        ("$" + "A" * 200 + "*00", "too long"),
    ],
)
def test_bad_framing_is_rejected(line: str, why: str) -> None:
    with pytest.raises(DecodeError, match=why.split()[0]):
        checked_fields(line)


def _with_checksum(body: str) -> str:
    cs = 0
    for b in body.encode():
        cs ^= b
    return f"${body}*{cs:02X}"


@pytest.mark.parametrize(
    "body",
    [
        "GPRMC,081836,A,9951.65,S,14507.36,E,0,0,130998,,",  # minutes 51, degrees 99
        "GPRMC,081836,A,3761.65,S,14507.36,E,0,0,130998,,",  # 61 minutes
        "GPRMC,081836,A,3751.65,Q,14507.36,E,0,0,130998,,",  # hemisphere
        "GPRMC,081836,A,3751.65,S,14507.36,E,0,0,320298,,",  # 32 February
        "GPRMC,256036,A,3751.65,S,14507.36,E,0,0,130998,,",  # 25 h
        "GPRMC,081836,A,3751.65,S,14507.36,E,fast,0,130998,,",  # speed
        "GPRMC,081836,A,3751.65",  # short
        "GPGGA,123519,4807.038,N,01131.000,E,1,08,inf,545.4,M,46.9,M,,",
    ],
)
def test_nonsense_inside_a_valid_checksum_is_rejected(body: str) -> None:
    with pytest.raises(DecodeError):
        parse_sentence(_with_checksum(body))


def test_other_sentences_are_ignored() -> None:
    assert parse_sentence(_with_checksum("GPGSA,A,3,04,05,,,,,,,,,,,2.5,1.3,2.1")) is None


@given(st.text(max_size=120))
def test_arbitrary_text_only_ever_raises_decode_error(text: str) -> None:
    with contextlib.suppress(DecodeError):
        parse_sentence(text)


@given(st.text(alphabet="0123456789.,-ANSEWV", max_size=80),
       st.sampled_from(["GPRMC", "GPGGA", "GNVTG"]))
def test_checksummed_garbage_only_ever_raises_decode_error(fields: str, kind: str) -> None:
    with contextlib.suppress(DecodeError):
        parse_sentence(_with_checksum(f"{kind},{fields}"))


def test_interpreter_modes() -> None:
    interp = NmeaInterpreter()
    fix, quality = interp.feed(Gga(quality=0, lat=None, lon=None, satellites=3, hdop=None,
                                   altitude=None))
    assert fix is not None and fix.mode == 1 and quality is not None and quality.satellites == 3
    fix, _ = interp.feed(Gga(quality=1, lat=56.0, lon=26.0, satellites=8, hdop=0.9,
                             altitude=None))
    assert fix is not None and fix.mode == 2
    fix, _ = interp.feed(Gga(quality=1, lat=56.0, lon=26.0, satellites=8, hdop=0.9,
                             altitude=90.0))
    assert fix is not None and fix.mode == 3
    fix, _ = interp.feed(Rmc(valid=True, time=1.0, lat=56.0, lon=26.0, speed_kmh=5.0,
                             heading=10.0))
    assert fix is not None and (fix.mode, fix.time, fix.speed_kmh) == (3, 1.0, 5.0)
    fix, _ = interp.feed(Rmc(valid=False, time=2.0, lat=56.0, lon=26.0, speed_kmh=0,
                             heading=None))
    assert fix is not None and fix.mode == 1 and not fix.has_position
    assert interp.feed(Vtg(valid=True, heading=1.0, speed_kmh=2.0)) == (None, None)


def test_simulator_output_decodes_with_the_driver_parser() -> None:
    """Two independent implementations of NMEA agree (positions to ~1 cm)."""
    out = ReceiverOutput(utc=1_767_261_600.0, fix=True, lat=56.3543, lon=-26.1758,
                         speed_kmh=42.0, heading=271.5)
    parsed = [parse_sentence(line.decode()) for line in epoch_sentences(out)]
    rmc = next(p for p in parsed if isinstance(p, Rmc))
    gga = next(p for p in parsed if isinstance(p, Gga))
    vtg = next(p for p in parsed if isinstance(p, Vtg))
    assert rmc.time == out.utc
    assert rmc.lat is not None and rmc.lon is not None
    assert gga.lat is not None and gga.lon is not None
    assert distance_m((rmc.lat, rmc.lon), (out.lat, out.lon)) < 0.01
    assert distance_m((gga.lat, gga.lon), (out.lat, out.lon)) < 0.01
    assert rmc.speed_kmh == pytest.approx(42.0, abs=0.01)
    assert vtg.speed_kmh == pytest.approx(42.0) and vtg.heading == pytest.approx(271.5)
    nofix = [parse_sentence(line.decode()) for line in epoch_sentences(
        ReceiverOutput(utc=out.utc, fix=False))]
    assert not next(p for p in nofix if isinstance(p, Rmc)).valid
    assert next(p for p in nofix if isinstance(p, Gga)).quality == 0


def test_gpsd_reports() -> None:
    tpv = parse_report(b'{"class":"TPV","device":"/dev/x","mode":3,'
                       b'"time":"2009-12-09T15:25:05.500Z","lat":55.79,"lon":23.56,'
                       b'"speed":10.0,"track":45.0,"newfield":[1]}\n')
    assert isinstance(tpv, Tpv)
    fix = tpv.to_fix()
    assert fix.time == calendar.timegm((2009, 12, 9, 15, 25, 5)) + 0.5
    assert fix.speed_kmh == pytest.approx(36.0) and fix.heading == 45.0
    sky = parse_report('{"class":"SKY","hdop":1.2,"satellites":[{"PRN":1,"used":true},'
                       '{"PRN":2,"used":false},{"PRN":3,"used":true}]}')
    assert isinstance(sky, Sky) and sky.to_quality().satellites == 2
    counted = parse_report('{"class":"SKY","uSat":7,"nSat":9}')
    assert isinstance(counted, Sky) and counted.to_quality().satellites == 7
    assert parse_report('{"class":"DEVICES","devices":[]}') is None


@pytest.mark.parametrize(
    "line",
    ['{"class":"TPV","mode":7}', '{"class":"TPV","lat":1e999}', '{"class":"TPV","time":"x"}',
     '{"class":"SKY","hdop":-1}', '"TPV"', "{", '{"class":5}', b"\xc3\x28"],
)
def test_hostile_reports_raise_decode_error(line: str | bytes) -> None:
    with pytest.raises(DecodeError):
        parse_report(line)


def test_time_offset_alarm_counts_transitions() -> None:
    check = TimeOffsetCheck(threshold_s=5)
    assert not check.observe(gps_time=100, system_time=101)
    assert check.observe(gps_time=100, system_time=200)  # starts
    assert not check.observe(gps_time=101, system_time=201)  # continues
    assert (check.alarm, check.alarms, check.offset_s) == (True, 1, 100)
    check.observe(gps_time=300, system_time=300)
    assert not check.alarm
    assert check.observe(gps_time=300, system_time=290)
    assert check.alarms == 2


def test_fix_labels() -> None:
    assert [fix_label(m) for m in (0, 1, 2, 3, 9)] == ["none", "none", "2d", "3d", "none"]


def test_route_and_noise() -> None:
    route = Route(waypoints=[(56.3543, 26.1758), (56.3974, 26.3952)], speed_kmh=36)
    assert route.position(0).lat == 56.3543
    mid = route.position(route.length_m / 2 / 10)
    assert mid.speed_kmh == pytest.approx(36) and 40 < mid.heading < 80
    end = route.position(1e9)
    assert (end.lat, end.lon, end.speed_kmh) == (56.3974, 26.3952, 0.0)
    import random
    noise = PositionNoise(sigma_m=2.5, rng=random.Random(1))
    samples = [noise.step(1.0) for _ in range(5000)]
    rms = (sum(n * n + e * e for n, e in samples) / len(samples) / 2) ** 0.5
    assert 1.5 < rms < 3.5
    assert max(abs(samples[i][0] - samples[i - 1][0]) for i in range(1, 5000)) < 3
