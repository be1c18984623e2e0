"""The lift module's inputs as busd signals: a pure function.

The module reports contacts, not a state: stowed and deployed end switches,
a "moving" contact from the motor, door, interlock and the controller's
fault output. The direction of travel is not wired, so it is inferred from
where the platform came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from busd.config import LiftRegisterMap


@dataclass(frozen=True, slots=True)
class LiftInputs:
    stowed: bool
    deployed: bool
    moving: bool
    door_open: bool
    interlock: bool
    fault: bool

    @classmethod
    def from_bits(cls, bits: list[bool], *, start: int, registers: LiftRegisterMap) -> LiftInputs:
        """Pick our inputs out of one read of discrete inputs that began at ``start``."""
        def bit(address: int) -> bool:
            return bool(bits[address - start])

        return cls(
            stowed=bit(registers.stowed), deployed=bit(registers.deployed),
            moving=bit(registers.moving), door_open=bit(registers.door_open),
            interlock=bit(registers.interlock), fault=bit(registers.fault),
        )


def lift_state(inputs: LiftInputs, previous: str | None) -> str:
    """lift.state from the contacts; ``previous`` is the last state we reported (or None)."""
    if inputs.fault or (inputs.stowed and inputs.deployed):
        # Both end switches at once is a broken switch, not a position.
        return "fault"
    if inputs.stowed:
        return "deploying" if inputs.moving else "stowed"
    if inputs.deployed:
        return "stowing" if inputs.moving else "deployed"
    # Between the end switches, moving or halted part-way: keep the direction.
    if previous in ("deployed", "stowing"):
        return "stowing"
    return "deploying"


def cycles_from_registers(registers: list[int], words: int) -> int:
    """The cycle counter from one (16 bit) or two (32 bit, high word first) registers."""
    if words == 1:
        return registers[0] & 0xFFFF
    return ((registers[0] & 0xFFFF) << 16) | (registers[1] & 0xFFFF)


def input_span(registers: LiftRegisterMap) -> tuple[int, int]:
    """(first address, count) covering every discrete input, to read them in one request."""
    addresses = [registers.stowed, registers.deployed, registers.moving, registers.door_open,
                 registers.interlock, registers.fault]
    return min(addresses), max(addresses) - min(addresses) + 1
