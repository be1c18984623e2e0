"""Pure lift parts: input mapping, the simulator's state machine and RTU framing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer.rtu import FramerRTU

from busd.config import LiftRegisterMap
from drivers.lift.mapping import LiftInputs, cycles_from_registers, input_span, lift_state
from simulators.lift.model import LiftModel
from simulators.lift.rtu import Request, RequestParser, answer, crc16, with_crc


def inputs(**on: bool) -> LiftInputs:
    base = dict(stowed=False, deployed=False, moving=False, door_open=False, interlock=False,
                fault=False)
    return LiftInputs(**(base | on))


@pytest.mark.parametrize(
    ("contacts", "previous", "expected"),
    [
        ({"stowed": True}, None, "stowed"),
        ({"deployed": True}, "deploying", "deployed"),
        ({"stowed": True, "moving": True}, "stowed", "deploying"),
        ({"deployed": True, "moving": True}, "deployed", "stowing"),
        ({"moving": True}, "stowed", "deploying"),
        ({"moving": True}, "deployed", "stowing"),
        ({}, "stowing", "stowing"),  # halted part-way: still not stowed
        ({}, None, "deploying"),
        ({"fault": True, "stowed": True}, "stowed", "fault"),
        ({"stowed": True, "deployed": True}, "stowed", "fault"),  # broken end switch
    ],
)
def test_lift_state_from_contacts(contacts: dict[str, bool], previous: str | None,
                                  expected: str) -> None:
    assert lift_state(inputs(**contacts), previous) == expected


def test_register_map_helpers() -> None:
    regs = LiftRegisterMap(stowed=10, deployed=3, moving=4, door_open=5, interlock=6, fault=7)
    assert input_span(regs) == (3, 8)
    bits = [False] * 8
    bits[10 - 3] = True
    got = LiftInputs.from_bits(bits, start=3, registers=regs)
    assert got.stowed and not got.deployed
    assert cycles_from_registers([0x0001, 0x1170], 2) == 70_000
    assert cycles_from_registers([0xFFFF], 1) == 65535


def test_model_cycle_and_fault() -> None:
    lift = LiftModel(deploy_s=2, stow_s=3)
    lift.cycle(0.0, dwell_s=5)
    lift.step(1.0)
    assert lift.state == "deploying" and lift.inputs()["moving"] and lift.inputs()["interlock"]
    lift.step(2.0)
    assert lift.state == "deployed"
    lift.step(6.9)
    assert lift.state == "deployed"
    lift.step(7.0)
    assert lift.state == "stowing"
    lift.inject_fault()
    lift.step(20.0)
    assert lift.state == "stowing" and lift.inputs()["fault"] and not lift.inputs()["moving"]
    lift.inject_fault(False)
    lift.step(22.0)
    assert lift.state == "stowing"
    lift.step(23.0)
    assert lift.state == "stowed" and lift.cycles == 1
    assert lift.inputs() == {"stowed": True, "deployed": False, "moving": False,
                             "door_open": False, "interlock": False, "fault": False}


def test_crc_agrees_with_pymodbus() -> None:
    frame = bytes.fromhex("010200000006")
    # pymodbus returns the CRC as the two bytes appear on the wire (low byte first).
    assert int.from_bytes(with_crc(frame)[-2:], "big") == FramerRTU.compute_CRC(frame)
    assert with_crc(frame).hex() == "010200000006f808"


def test_parser_resyncs_after_noise() -> None:
    request = with_crc(bytes.fromhex("010200000006"))
    parser = RequestParser()
    assert parser.feed(b"\x00\xff\x13" + request[:3]) == []
    assert parser.feed(request[3:]) == [Request(unit=1, function=2, address=0, count=6)]
    assert parser.discarded == 3


def test_answers() -> None:
    bits = {0: True, 2: True}
    reply = answer(Request(1, 2, 0, 6), bit=lambda a: bits.get(a, False), register=lambda a: None)
    assert reply[:4] == bytes((1, 2, 1, 0b101))
    assert crc16(reply[:-2]) == reply[-2] | reply[-1] << 8
    assert answer(Request(1, 4, 0, 1), bit=lambda a: None, register=lambda a: 513)[:5] == bytes(
        (1, 4, 2, 2, 1))
    assert answer(Request(1, 4, 9, 1), bit=lambda a: None, register=lambda a: None)[1:3] == bytes(
        (0x84, 2))
    assert answer(Request(1, 6, 0, 1), bit=lambda a: None, register=lambda a: 0)[1:3] == bytes(
        (0x86, 1))


@given(st.binary(max_size=200))
def test_parser_never_raises(data: bytes) -> None:
    RequestParser().feed(data)
