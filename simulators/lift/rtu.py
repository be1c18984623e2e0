"""Modbus RTU framing for the simulated unit, written by hand.

Deliberately independent of pymodbus (which the driver uses): if both sides
used one library, a framing bug in it would pass every test. Only what a
digital-input module answers: read coils/discrete inputs (1, 2), read
holding/input registers (3, 4); anything else gets exception 01.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

READ_COILS = 0x01
READ_DISCRETE_INPUTS = 0x02
READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
REQUEST_LEN = 8  # unit, function, address(2), count(2), crc(2)


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001 reflected, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(pdu: bytes) -> bytes:
    crc = crc16(pdu)
    return pdu + bytes((crc & 0xFF, crc >> 8))  # CRC goes low byte first


@dataclass(frozen=True, slots=True)
class Request:
    unit: int
    function: int
    address: int
    count: int


class RequestParser:
    """Finds requests in a byte stream; noise is skipped a byte at a time and counted.

    A real unit delimits frames by 3.5 characters of silence; a pty has no
    timing, so frames are recognised by length and CRC instead.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0

    def feed(self, data: bytes) -> list[Request]:
        self._buffer += data
        found: list[Request] = []
        while len(self._buffer) >= REQUEST_LEN:
            frame = bytes(self._buffer[:REQUEST_LEN])
            if crc16(frame[:-2]) == frame[-2] | frame[-1] << 8:
                found.append(Request(
                    unit=frame[0], function=frame[1],
                    address=frame[2] << 8 | frame[3], count=frame[4] << 8 | frame[5],
                ))
                del self._buffer[:REQUEST_LEN]
            else:
                del self._buffer[0]
                self.discarded += 1
        return found


def exception_reply(request: Request, code: int) -> bytes:
    return with_crc(bytes((request.unit, request.function | 0x80, code)))


def answer(
    request: Request,
    *,
    bit: Callable[[int], bool | None],
    register: Callable[[int], int | None],
) -> bytes:
    """The reply frame; ``bit``/``register`` return None for an address the unit lacks."""
    if request.function in (READ_COILS, READ_DISCRETE_INPUTS):
        if not 1 <= request.count <= 2000:
            return exception_reply(request, 0x03)
        values = [bit(request.address + i) for i in range(request.count)]
        if any(v is None for v in values):
            return exception_reply(request, ILLEGAL_ADDRESS)
        packed = bytearray((request.count + 7) // 8)
        for i, value in enumerate(values):
            if value:
                packed[i // 8] |= 1 << (i % 8)
        return with_crc(bytes((request.unit, request.function, len(packed))) + bytes(packed))
    if request.function in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
        if not 1 <= request.count <= 125:
            return exception_reply(request, 0x03)
        regs = [register(request.address + i) for i in range(request.count)]
        if any(r is None for r in regs):
            return exception_reply(request, ILLEGAL_ADDRESS)
        body = b"".join(int(r).to_bytes(2, "big") for r in regs if r is not None)
        return with_crc(bytes((request.unit, request.function, len(body))) + body)
    return exception_reply(request, ILLEGAL_FUNCTION)
