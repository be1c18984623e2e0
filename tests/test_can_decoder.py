from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import can
import cantools
import pytest
from cantools.database.can import Database
from hypothesis import given, settings
from hypothesis import strategies as st

from busd.config import SignalMapping
from busd.errors import ConfigError
from drivers.can.decoder import FrameDecoder, SignalExtractor, load_dbc
from drivers.can.plausibility import CONFIRM_FRAMES
from tests.can_helpers import DC1_LIFT, OWN_DBC, TESLA_DBC, can_database, frame, own_db, sim_mapping


@pytest.fixture
def db() -> Database:
    return own_db()


@pytest.fixture
def decoder(db: Database) -> FrameDecoder:
    return FrameDecoder(db, sim_mapping())


Value = float | int | bool | str


def decode(decoder: FrameDecoder, msg: can.Message, now: float = 0.0) -> dict[str, Value]:
    return dict(decoder.decode(msg.arbitration_id, msg.is_extended_id, msg.data, now))


def test_battery_values_from_our_dbc(decoder: FrameDecoder, db: Database) -> None:
    values = decode(decoder, frame(db, "BMS_Pack", PackVoltage=652.4, PackCurrent=-35.2,
                                   ContactorClosed=1))
    assert values["battery.voltage"] == pytest.approx(652.4)
    assert values["battery.current"] == pytest.approx(-35.2)
    # SOC has a rate rule: its first value is published once consecutive frames confirm it.
    confirming = [decode(decoder, frame(db, "BMS_Status", StateOfCharge=81.25), now=i / 10)
                  for i in range(CONFIRM_FRAMES)]
    assert [v.get("battery.soc") for v in confirming] == [None] * (CONFIRM_FRAMES - 1) + [81.25]


def test_voltage_read_while_contactor_open_is_filtered_and_counted(
    decoder: FrameDecoder,
    db: Database,
) -> None:
    values = decode(decoder, frame(db, "BMS_Pack", PackVoltage=0, PackCurrent=0,
                                   ContactorClosed=0))
    assert "battery.voltage" not in values
    assert values["battery.current"] == 0.0
    assert decoder.stats.dropped["battery.voltage:condition"] == 1


def test_out_of_range_and_not_available_values_are_dropped(
    decoder: FrameDecoder,
    db: Database,
) -> None:
    # CCVS1 speed 0xFFFF is J1939's "not available" (decodes to ~256 km/h).
    msg = frame(db, "CCVS1", WheelBasedVehicleSpeed=0)
    data = bytearray(msg.data)
    data[1:3] = b"\xff\xff"
    values = dict(decoder.decode(msg.arbitration_id, True, bytes(data), 0.0))
    assert "vehicle.speed" not in values
    assert decoder.stats.dropped["vehicle.speed:range"] == 1


def test_a_jump_faster_than_physics_is_dropped_until_it_persists(
    decoder: FrameDecoder, db: Database,
) -> None:
    for i in range(CONFIRM_FRAMES):
        decode(decoder, frame(db, "BMS_Status", StateOfCharge=80.0), now=i / 10)
    glitch = decode(decoder, frame(db, "BMS_Status", StateOfCharge=5.0), now=0.3)
    assert "battery.soc" not in glitch
    back = decode(decoder, frame(db, "BMS_Status", StateOfCharge=80.1), now=0.4)
    assert back["battery.soc"] == pytest.approx(80.1)
    # A real step within max_step (BMS recalibration) persists: taken on its third report.
    results = [decode(decoder, frame(db, "BMS_Status", StateOfCharge=74.0), now=0.5 + i / 10)
               for i in range(3)]
    assert ["battery.soc" in r for r in results] == [False, False, True]
    # A step beyond max_step is not, however often it is repeated within seconds.
    results = [decode(decoder, frame(db, "BMS_Status", StateOfCharge=20.0), now=0.8 + i / 10)
               for i in range(20)]
    assert not any("battery.soc" in r for r in results)
    assert decoder.stats.dropped["battery.soc:rate"] == CONFIRM_FRAMES - 1 + 1 + 2 + 20


def test_enum_labels_from_dbc_value_table_and_from_mapping(db: Database) -> None:
    decoder = FrameDecoder(db, [*sim_mapping(), DC1_LIFT])
    assert decode(decoder, frame(db, "OBC_Status", ChargerState=1))["charger.state"] == "charging"
    lift = decode(decoder, frame(db, "DC1", RampWheelchairLiftPosition=1, PositionOfDoors=2))
    assert lift["lift.state"] == "deployed"
    assert lift["vehicle.door_open"] == 0  # all doors closed
    assert decode(decoder, frame(db, "DC1", PositionOfDoors=0))["vehicle.door_open"] == 2
    not_available = decode(decoder, frame(db, "DC1", RampWheelchairLiftPosition=3))
    assert "lift.state" not in not_available


def test_j1939_frames_match_by_pgn_whatever_the_source_address(
    decoder: FrameDecoder,
    db: Database,
) -> None:
    msg = frame(db, "CCVS1", WheelBasedVehicleSpeed=48.5)
    other_ecu = (msg.arbitration_id & ~0xFF) | 0x17  # sent by source address 0x17
    other_priority = (other_ecu & ~(0x7 << 26)) | (3 << 26)
    for arbitration_id in (other_ecu, other_priority):
        values = dict(decoder.decode(arbitration_id, True, msg.data, 0.0))
        assert values["vehicle.speed"] == pytest.approx(48.5, abs=0.004)
    strict = FrameDecoder(db, sim_mapping(), match_j1939_pgn=False)
    assert strict.decode(other_ecu, True, msg.data, 0.0) == []
    assert strict.stats.unknown_id == 1


def test_unknown_ids_are_skipped_and_counted(decoder: FrameDecoder) -> None:
    for _ in range(3):
        assert decoder.decode(0x7FF, False, b"\x00" * 8, 0.0) == []
    assert decoder.decode(0x100, True, b"\x00" * 8, 0.0) == []  # 29-bit, not ours
    assert decoder.stats.unknown_id == 4 and decoder.stats.frames == 4


@pytest.mark.parametrize("data", [b"", b"\x01\x02\x03", b"\x00" * 9])
def test_wrong_length_is_counted_never_raised(decoder: FrameDecoder, data: bytes) -> None:
    assert decoder.decode(0x100, False, data, 0.0) == []
    assert decoder.stats.bad_length == 1
    assert decoder.last_problem is not None and "BMS_Pack" in decoder.last_problem.detail


def test_invert_scale_offset(db: Database) -> None:
    mapping = [SignalMapping(message="BMS_Pack", signal="PackCurrent", target="battery.current",
                             invert=True, scale=2.0, offset=1.0)]
    dec = FrameDecoder(db, mapping)
    values = decode(dec, frame(db, "BMS_Pack", PackCurrent=10.0))
    assert values["battery.current"] == pytest.approx(-(10.0 * 2.0 + 1.0))


def test_mapping_errors_name_the_key(db: Database) -> None:
    mapping = [
        SignalMapping(message="BMS_Pack", signal="PackVoltage", target="battery.voltage"),
        SignalMapping(message="BMS_Pack", signal="Nope", target="battery.current"),
        SignalMapping(message="NoSuchMessage", signal="X", target="battery.soc"),
        SignalMapping(message=0x100, signal="PackVoltage", target="battery.voltage",
                      when={"signal": "Missing", "value": 1}),
        SignalMapping(message="BMS_Status", signal="FaultFlags", target="lift.state"),
    ]
    with pytest.raises(ConfigError) as caught:
        FrameDecoder(db, mapping)
    keys = [key for key, _ in caught.value.problems]
    assert keys == ["can.mapping.1.signal", "can.mapping.2.message", "can.mapping.3.when.signal",
                    "can.mapping.4.choices"]
    assert "no signal 'Nope' in message BMS_Pack" in caught.value.problems[0][1]


# --- a real vehicle's DBC ------------------------------------------------------------

TESLA_MAPPING = [
    SignalMapping(message="ID292BMS_SOC", signal="SOCUI292", target="battery.soc",
                  valid_min=0, valid_max=100),
    SignalMapping(message="ID132HVBattAmpVolt", signal="BattVoltage132",
                  target="battery.voltage", valid_min=100, valid_max=500),
    # The DBC's negative scale already makes discharge positive, as busd wants.
    SignalMapping(message=0x132, signal="SmoothBattCurrent132", target="battery.current"),
]


def test_real_dbc_does_not_load_strictly_and_the_error_says_so() -> None:
    with pytest.raises(ConfigError) as caught:
        load_dbc(TESLA_DBC, strict=True)
    key, reason = caught.value.problems[0]
    assert key == "can.dbc" and "does not fit in message" in reason and "dbc_strict" in reason


def test_relaxed_load_warns_with_the_objection(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from busd.logs import configure_logging

    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    db = load_dbc(TESLA_DBC, strict=False)
    assert len(db.messages) > 100
    line = stream.getvalue()
    assert "dbc_loaded_relaxed" in line and "DI_lashAngle" in line


def test_real_ev_frames_decode_to_soc_voltage_and_current() -> None:
    db = load_dbc(TESLA_DBC, strict=False)
    dec = FrameDecoder(db, TESLA_MAPPING)
    # Raw bytes laid out by hand from the DBC's bit positions, not by cantools:
    # SOCUI292 bits 10-19 = 765 (76.5 %).
    soc_raw = 765 << 10
    soc = dec.decode(0x292, False, soc_raw.to_bytes(8, "little"), 0.0)
    assert dict(soc)["battery.soc"] == pytest.approx(76.5)
    # BattVoltage132 bits 0-15 = 39512 (395.12 V); SmoothBattCurrent132 bits 16-31
    # = -1234 (x -0.1 = +123.4 A, discharging).
    raw = 39512 | ((-1234 & 0xFFFF) << 16)
    values = dict(dec.decode(0x132, False, raw.to_bytes(8, "little"), 0.0))
    assert values["battery.voltage"] == pytest.approx(395.12)
    assert values["battery.current"] == pytest.approx(123.4)


TWO_LAYOUT_DBC = """VERSION ""
NS_ :
BS_:
BU_: ECU
BO_ 512 MixedStatus: 4 ECU
 SG_ Layout M : 0|1@1+ (1,0) [0|1] "" ECU
 SG_ SocA m0 : 8|8@1+ (0.5,0) [0|127.5] "%" ECU
 SG_ VoltB m1 : 8|16@1+ (0.1,0) [0|6553.5] "V" ECU
 SG_ ContactorB m1 : 24|1@1+ (1,0) [0|1] "" ECU
"""


def test_one_id_with_two_layouts() -> None:
    # A real quirk: firmware versions send different layouts under one id, told
    # apart by a selector. The DBC declares them as multiplexed; each mapping
    # entry counts only when its layout is on the bus, and a condition on the
    # same frame still applies within a layout.
    db = can_database(cantools.database.load_string(TWO_LAYOUT_DBC, database_format="dbc"))
    mapping = [
        SignalMapping(message="MixedStatus", signal="SocA", target="battery.soc"),
        SignalMapping(message="MixedStatus", signal="VoltB", target="battery.voltage",
                      when={"signal": "ContactorB", "op": "==", "value": 1}),
    ]
    dec = FrameDecoder(db, mapping)
    layout_a = bytes([0, 161, 0, 0])  # SocA = 80.5 %
    layout_b = bytes([1]) + (6523).to_bytes(2, "little") + b"\x01"  # VoltB = 652.3 V
    open_b = bytes([1]) + (0).to_bytes(2, "little") + b"\x00"  # contactor open: 0 V
    assert dec.decode(0x200, False, layout_a, 0.0) == [("battery.soc", 80.5)]
    [(name, value)] = dec.decode(0x200, False, layout_b, 0.0)
    assert name == "battery.voltage" and value == pytest.approx(652.3)
    assert dec.decode(0x200, False, open_b, 0.0) == []
    assert dec.stats.dropped == {"battery.voltage:condition": 1}
    assert dec.stats.undecodable == 0


def test_a_flood_of_random_unknown_ids_does_not_grow_memory(
    decoder: FrameDecoder,
    db: Database,
) -> None:
    # Bug 6(j): every id ever seen was cached, so a noisy bus with filtering off
    # grew the decoder without bound (~74 MB per million ids). 200,000 random
    # ids cached cost well over 10 MB; bounded, they cost nothing that stays.
    rng = random.Random(12)
    ids = [rng.getrandbits(29) for _ in range(200_000)]  # 29-bit: 11-bit ids repeat
    soc = frame(db, "BMS_Status", StateOfCharge=50.0)
    decode(decoder, soc)  # warm: the mapped route is resolved and cached
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for arbitration_id in ids:
            decoder.decode(arbitration_id, True, b"\x00" * 8, 0.0)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 256 * 1024, f"the decoder kept {grown / 1e6:.1f} MB for unknown ids"
    # The flood was counted, and mapped frames still decode.
    # (a random id now and then carries a mapped J1939 PGN: not unknown)
    assert decoder.stats.unknown_id > 0.99 * len(ids)
    # (SOC has a rate rule: consecutive frames confirm its first value.)
    confirmed = [decode(decoder, soc, now=i / 10).get("battery.soc")
                 for i in range(CONFIRM_FRAMES)]
    assert confirmed[-1] == pytest.approx(50.0)


def _layouts() -> list[tuple[str, cantools.database.can.Message, list[str]]]:
    """Every fixed-layout message of our DBC and of a real car's, with its integer signals."""
    out = []
    for path in (OWN_DBC, TESLA_DBC):
        db = can_database(cantools.database.load_file(str(path), strict=False))
        for message in db.messages:
            names = [s.name for s in message.signals if not s.conversion.is_float]
            if names and SignalExtractor.for_message(message, names) is not None:
                out.append((f"{path.stem}:{message.name}", message, names))
    return out


_LAYOUTS = _layouts()


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_the_signal_extractor_agrees_with_cantools(data: st.DataObject) -> None:
    # The production path unpacks only mapped signals itself; it must give
    # exactly what cantools gives, for either byte order, signed or not.
    _, message, names = data.draw(st.sampled_from(_LAYOUTS))
    payload = data.draw(st.binary(min_size=message.length, max_size=message.length))
    expected = message.decode(payload, decode_choices=False, scaling=True)
    assert isinstance(expected, dict)  # not a container message
    extractor = SignalExtractor.for_message(message, names)
    assert extractor is not None  # _layouts keeps only the messages it serves
    got = extractor(payload)
    assert got == {name: expected[name] for name in names}


def test_layouts_cover_both_byte_orders_and_signs() -> None:
    signals = [message.get_signal_by_name(n) for _, message, names in _LAYOUTS for n in names]
    assert {s.byte_order for s in signals} == {"little_endian", "big_endian"}
    assert {s.is_signed for s in signals} == {True, False}
    assert len(_LAYOUTS) > 20
# A DBC as community files often are: no BS_:/BU_: lines after the NS_ block,
# so cantools' grammar swallows the first BO_ and the file parses in neither mode.
_NO_HEADER_DBC = """VERSION ""

NS_ :
\tCM_
\tVAL_

BO_ 512 Status: 4 ECU
 SG_ Soc : 0|8@1+ (0.5,0) [0|127.5] "%" ECU
"""


def test_a_dbc_without_bs_bu_names_path_line_cause_and_fix_not_strictness(tmp_path: Path) -> None:
    path = tmp_path / "community.dbc"
    path.write_text(_NO_HEADER_DBC)
    for strict in (True, False):
        with pytest.raises(ConfigError) as caught:
            load_dbc(path, strict=strict)
        key, reason = caught.value.problems[0]
        assert key == "can.dbc"
        assert str(path.resolve()) in reason
        assert "line 7, column 9" in reason
        assert "BS_:" in reason and "BU_:" in reason and "add the two lines" in reason
        # A relaxed load fails too, so relaxing would not help: no such advice.
        assert "dbc_strict" not in reason


def test_the_real_dbc_without_its_bs_line_still_loads_relaxed(tmp_path: Path) -> None:
    # The real Tesla file has its BS_:/BU_: lines; without BS_: cantools still
    # parses it (BU_: ends the NS_ list), and relaxed loading is the real advice.
    path = tmp_path / "tesla_no_bs.dbc"
    text = TESLA_DBC.read_text(encoding="cp1252")
    path.write_text(text.replace("\nBS_:\n", "\n"), encoding="cp1252")
    with pytest.raises(ConfigError) as caught:
        load_dbc(path, strict=True)
    reason = caught.value.problems[0][1]
    assert str(path.resolve()) in reason and "dbc_strict = false" in reason
    assert "BS_:" not in reason
    assert len(load_dbc(path, strict=False).messages) > 100


def test_a_broken_file_that_is_not_missing_its_header_gets_no_made_up_cause(tmp_path: Path) -> None:
    path = tmp_path / "broken.dbc"
    path.write_text('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: ECU\n\nBO_ 512 Status 4 ECU\n')
    with pytest.raises(ConfigError) as caught:
        load_dbc(path, strict=True)
    reason = caught.value.problems[0][1]
    assert str(path.resolve()) in reason and "line 9, column" in reason
    assert "likely cause" not in reason and "dbc_strict" not in reason


def test_a_missing_dbc_given_relative_names_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_dbc(Path("nope.dbc"), strict=True)
    assert str(tmp_path.resolve() / "nope.dbc") in caught.value.problems[0][1]


# A signal whose DBC factor and offset make its raw bits, its physical value and
# a mapping's busd value three different numbers: raw 100 -> 10 °C -> 50 (x5).
_UNITS_DBC = """VERSION ""
NS_ :
BS_:
BU_: ECU
BO_ 768 Thermal: 2 ECU
 SG_ CoolantTemp : 0|8@1+ (0.5,-40) [-40|87.5] "degC" ECU
 SG_ Mode : 8|8@1+ (1,0) [0|255] "" ECU
VAL_ 768 Mode 2 "Running" 0 "Off" ;
"""


@pytest.mark.parametrize(
    ("value", "passes"),
    [(10.0, True),    # the DBC's physical value: 100 x 0.5 - 40
     (100.0, False),  # the raw bits
     (50.0, False)],  # busd's value after the mapping's scale
)
def test_when_compares_in_the_dbc_signals_physical_units(value: float, passes: bool) -> None:
    db = can_database(cantools.database.load_string(_UNITS_DBC, database_format="dbc"))
    mapping = [SignalMapping(message="Thermal", signal="CoolantTemp", target="vehicle.outside_temp",
                             scale=5.0, when={"signal": "CoolantTemp", "op": "==", "value": value})]
    values = dict(FrameDecoder(db, mapping).decode(768, False, bytes([100, 2]), 0.0))
    assert ("vehicle.outside_temp" in values) is passes
    if passes:
        assert values["vehicle.outside_temp"] == pytest.approx(50.0)


def test_when_on_a_value_table_signal_compares_its_number_not_its_label() -> None:
    db = can_database(cantools.database.load_string(_UNITS_DBC, database_format="dbc"))
    mapping = [SignalMapping(message="Thermal", signal="CoolantTemp", target="vehicle.outside_temp",
                             when={"signal": "Mode", "op": "==", "value": 2})]
    dec = FrameDecoder(db, mapping)
    assert dict(dec.decode(768, False, bytes([100, 2]), 0.0)) == {"vehicle.outside_temp": 10.0}
    assert dec.decode(768, False, bytes([100, 0]), 0.1) == []
