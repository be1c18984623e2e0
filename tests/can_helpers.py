"""Helpers for CAN tests: build mappings and frames without the driver's code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import can
import cantools

from busd.config import SignalMapping, load_config
from tests.conftest import FIXTURES, REPO

OWN_DBC = REPO / "config" / "busd.dbc"
TESLA_DBC = FIXTURES / "dbc" / "tesla_model3.dbc"


def can_database(db: object) -> cantools.database.can.Database:
    """``db`` as a CAN database: cantools's loaders are typed to return diagnostics ones too."""
    assert isinstance(db, cantools.database.can.Database), type(db)
    return db


def own_db() -> cantools.database.can.Database:
    return can_database(cantools.database.load_file(str(OWN_DBC)))


def decode_frame(db: cantools.database.can.Database, f: can.Message, *,
                 decode_choices: bool = True) -> dict[str, Any]:
    """cantools's values of one frame (its decode is typed for container messages too)."""
    decoded = db.decode_message(f.arbitration_id, bytes(f.data), decode_choices=decode_choices)
    assert isinstance(decoded, dict), decoded
    return decoded


def sim_mapping() -> list[SignalMapping]:
    """The mapping the shipped simulation config uses."""
    config = load_config(REPO / "config" / "sim.toml")
    assert config.can is not None
    return list(config.can.mapping)


# The simulated bus's lift comes from its Modbus unit; buses whose FMS gateway
# reports it use this entry instead (see config/busd.example.toml).
DC1_LIFT = SignalMapping(message="DC1", signal="RampWheelchairLiftPosition", target="lift.state",
                         choices={0: "stowed", 1: "deployed", 2: "fault"}, valid_max=2)


def frame(db: cantools.database.can.Database, name: str, **values: float) -> can.Message:
    """Encode a frame of the DBC, filling unspecified signals with 0."""
    message = db.get_message_by_name(name)
    full: dict[str, float] = {s.name: 0 for s in message.signals}
    full.update(values)
    return can.Message(
        arbitration_id=message.frame_id,
        is_extended_id=message.is_extended_frame,
        data=message.encode(full),
    )


def write_config(tmp: Path, body: str) -> Path:
    """A config file in ``tmp`` whose daemon keeps to ``tmp``: its data_dir there, no
    display, and a broker port nobody listens on (never the machine's own broker)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        unused = s.getsockname()[1]
    if "data_dir" not in body:
        body = f'data_dir = "{tmp / "data"}"\n' + body
    if "[display]" not in body:
        body += "\n[display]\nenabled = false\n"
    if "[mqtt]" not in body:
        body += f"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {unused}\n"
    path = tmp / "busd.toml"
    path.write_text(body, encoding="utf-8")
    return path
